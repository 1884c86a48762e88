"""``[channels.*]`` and ``[contact_policy]`` of config.toml: how each channel is reached and what it costs.

Every channel has a ``unit_cost`` (money per contact, Decimal), a sending
rate and concurrency, and how many attempts a temporary failure gets
(exponential backoff from ``retry_after``). Email goes to a Maildir (the
embedded default) or an SMTP server; calls, letters and meetings are written
as list files for people to work through; SMS goes to an HTTP gateway.

``[contact_policy]`` holds quiet hours (local time of each customer) and the
frequency caps per channel (``"2/week"``), counted in the customer's zone.
"""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engine.contact_policy import Cap, DailyWindow
from engine.settings.durations import parse_duration
from engine.settings.limits import MAX_COUNT, Count, Day, Money

CHANNEL_NAMES: tuple[str, ...] = ("call", "email", "meeting", "post", "sms")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PriceChange(_Strict):
    """One entry of ``prices``: a unit cost valid from a date, optionally for one segment or campaign.

    Within one scope (the channel, one segment, or one campaign) an entry holds
    from its ``from`` date until the day before the next entry's ``from`` (or
    its own ``until``): a price change is a new entry, so history is kept.
    """

    unit_cost: Money = Field(description="money per contact")
    valid_from: Day | None = Field(None, alias="from", description="first day (business time zone)")
    until: Day | None = Field(None, description="last day, inclusive")
    segment: str | None = None
    campaign: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _coherent(self) -> PriceChange:
        if self.segment is not None and self.campaign is not None:
            raise ValueError("a price applies to one segment or one campaign, not both")
        if self.valid_from is not None and self.until is not None and self.until < self.valid_from:
            raise ValueError(f"until {self.until} is before from {self.valid_from}")
        return self

    @property
    def scope(self) -> tuple[str, str] | None:
        """``("campaign", key)``, ``("segment", name)`` or None for the whole channel."""
        if self.campaign is not None:
            return ("campaign", self.campaign)
        if self.segment is not None:
            return ("segment", self.segment)
        return None


class _Channel(_Strict):
    unit_cost: Money = Field(Decimal(0), description="money per contact where no price entry applies")
    prices: list[PriceChange] = Field(
        default_factory=list,
        description="dated unit costs, per channel, segment or campaign: "
        "[{ from = 2027-01-01, unit_cost = 65 }, { segment = 'large', unit_cost = 80 }]",
    )
    rate_per_second: float | None = Field(
        None, gt=0, le=100_000, description="at most this many sends a second"
    )
    concurrency: int = Field(4, ge=1, le=256)
    batch_size: int = Field(200, ge=1, le=10_000)
    max_attempts: int = Field(5, ge=1, le=50, description="attempts before a temporary failure is final")
    retry_after: str = Field("1m", description="first backoff; doubled after each attempt")

    @field_validator("retry_after")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("prices")
    @classmethod
    def _no_overlap(cls, value: list[PriceChange]) -> list[PriceChange]:
        by_scope: dict[tuple[str, str] | None, list[tuple[int, PriceChange]]] = {}
        for n, price in enumerate(value):
            by_scope.setdefault(price.scope, []).append((n, price))
        for entries in by_scope.values():
            ordered = sorted(entries, key=lambda e: (e[1].valid_from or dt.date.min, e[0]))
            for (n, earlier), (m, later) in itertools.pairwise(ordered):
                if earlier.valid_from == later.valid_from:
                    when = f"from {later.valid_from}" if later.valid_from else "without a from date"
                    raise ValueError(f"prices[{n}] and prices[{m}] both apply {when} to the same scope")
                assert later.valid_from is not None
                if earlier.until is not None and earlier.until >= later.valid_from:
                    raise ValueError(
                        f"prices[{n}] runs until {earlier.until}, past prices[{m}] from {later.valid_from}"
                    )
        return value


class SmtpSection(_Strict):
    """``[channels.email.smtp]``: the server (set the password with CRM_CHANNELS__EMAIL__SMTP__PASSWORD)."""

    host: str = "localhost"
    port: int = Field(587, ge=1, le=65535)
    starttls: bool = False
    tls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = Field(30.0, gt=0, le=3600, description="seconds")


#: the headers a DKIM signature covers (RFC 8058 asks for both List-Unsubscribe headers); one that a
#: message lacks is signed as absent, so nobody can add it on the way
DKIM_HEADERS: tuple[str, ...] = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "List-Id",
    "MIME-Version",
    "Content-Type",
)


class DkimSection(_Strict):
    """``[channels.email.dkim]``: sign every email (rsa-sha256, relaxed/relaxed) with the domain's key.

    The private key is a PEM file without a passphrase (``key_file``, relative
    to config.toml), or the PEM itself in the environment
    (``CRM_CHANNELS__EMAIL__DKIM__PRIVATE_KEY``), which wins over the file.
    The public key is published as the TXT record ``SELECTOR._domainkey.DOMAIN``.
    """

    selector: str = Field(
        pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$",
        description="the DNS selector: the public key is the TXT record SELECTOR._domainkey.DOMAIN",
    )
    domain: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$",
        description="the signing domain (d=); default: the domain of from",
    )
    key_file: str | None = Field(
        None, description="PEM private key without a passphrase, relative to config.toml"
    )
    private_key: str | None = Field(
        None,
        description="the PEM itself: set CRM_CHANNELS__EMAIL__DKIM__PRIVATE_KEY rather than writing it here",
    )

    @model_validator(mode="after")
    def _a_key(self) -> DkimSection:
        if self.key_file is None and self.private_key is None:
            raise ValueError(
                "a DKIM key is needed: key_file = 'dkim.pem' (relative to config.toml) "
                "or the PEM in CRM_CHANNELS__EMAIL__DKIM__PRIVATE_KEY"
            )
        return self

    def key_path(self, config_folder: Path) -> Path | None:
        """The key file, relative paths taken from config.toml's folder; None when the PEM is given itself."""
        if self.private_key is not None or self.key_file is None:
            return None
        path = Path(self.key_file).expanduser()
        return path if path.is_absolute() else config_folder / path

    def read_key(self, config_folder: Path) -> bytes:
        """The PEM private key, checked to be an RSA key dkimpy can sign with.

        Raises :class:`ValueError` saying what is wrong (no such file, not
        readable, not a PEM RSA private key, encrypted); the caller names the setting.
        """
        path = self.key_path(config_folder)
        if path is None:
            data = (self.private_key or "").encode("utf-8")
            where = "CRM_CHANNELS__EMAIL__DKIM__PRIVATE_KEY"
        else:
            where = str(path)
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                raise ValueError(f"no key file {path}") from None
            except IsADirectoryError:
                raise ValueError(f"{path} is a folder, not a key file") from None
            except OSError as exc:
                raise ValueError(f"cannot read the key file {path}: {exc.strerror or exc}") from None
        if b"ENCRYPTED" in data:
            raise ValueError(
                f"{where}: the key has a passphrase; give it without one (openssl rsa -in K -out K2)"
            )
        from dkim.crypto import UnparsableKeyError, parse_pem_private_key

        try:
            parse_pem_private_key(data)
        except (UnparsableKeyError, ValueError, IndexError, TypeError) as exc:
            raise ValueError(f"{where}: not a PEM RSA private key ({exc})") from None
        return data


class EmailChannel(_Channel):
    """``[channels.email]``."""

    transport: Literal["maildir", "smtp"] = "maildir"
    sender: str = Field("Shop <news@shop.example>", alias="from")
    maildir: str = Field("outbox/maildir", description="Maildir folder, relative to config.toml")
    smtp: SmtpSection = Field(default_factory=SmtpSection)
    dkim: DkimSection | None = Field(None, description="DKIM signing; none: emails go unsigned")
    concurrency: int = Field(8, ge=1, le=256)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @property
    def domain(self) -> str:
        """The sender's domain: Message-IDs and List-Ids end with it."""
        address = self.sender.rsplit("<", 1)[-1].rstrip(">").strip()
        return address.rsplit("@", 1)[-1] if "@" in address else "localhost"

    @property
    def dkim_domain(self) -> str:
        """The DKIM signing domain (d=): ``dkim.domain``, else the sender's."""
        return (self.dkim.domain if self.dkim is not None else None) or self.domain


class ListChannel(_Channel):
    """``[channels.post]`` / ``[channels.meeting]``: list files in ``folder``."""

    folder: str = Field("outbox/lists", description="relative to config.toml")
    format: Literal["csv", "xlsx"] = "xlsx"


class CallChannel(ListChannel):
    """``[channels.call]``: daily call lists, agents' capacity, the calling window in local time."""

    folder: str = Field("outbox/calls", description="relative to config.toml")
    capacity_per_day: Annotated[Count, Field(ge=1)] = 400
    window: str = "10:00-19:00"

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        DailyWindow.parse(value)
        return value

    @property
    def calling_window(self) -> DailyWindow:
        """The window in which calls are made, in the customer's time."""
        return DailyWindow.parse(self.window)


class SmsChannel(_Channel):
    """``[channels.sms]``: a generic HTTP gateway (JSON POST)."""

    url: str | None = None
    sender: str = "SHOP"
    token: str | None = Field(None, description="bearer token: set CRM_CHANNELS__SMS__TOKEN")


class ChannelsSection(_Strict):
    """``[channels]``: one table per channel."""

    email: EmailChannel = Field(default_factory=EmailChannel)
    call: CallChannel = Field(default_factory=CallChannel)
    sms: SmsChannel = Field(default_factory=SmsChannel)
    post: ListChannel = Field(default_factory=lambda: ListChannel(folder="outbox/post"))
    meeting: ListChannel = Field(default_factory=lambda: ListChannel(folder="outbox/meetings"))

    def get(self, name: str) -> _Channel:
        """The settings of channel ``name``."""
        if name not in CHANNEL_NAMES:
            raise KeyError(f"unknown channel {name!r} (known: {', '.join(CHANNEL_NAMES)})")
        channel: _Channel = getattr(self, name)
        return channel


class ContactPolicySection(_Strict):
    """``[contact_policy]``: quiet hours and frequency caps, in each customer's own time."""

    quiet_hours: str | None = "21:00-09:00"
    max_contacts: dict[str, str] = Field(default_factory=dict, description='e.g. { email = "2/week" }')

    @field_validator("quiet_hours")
    @classmethod
    def _quiet(cls, value: str | None) -> str | None:
        if value is not None:
            DailyWindow.parse(value)
        return value

    @field_validator("max_contacts")
    @classmethod
    def _caps(cls, value: dict[str, str]) -> dict[str, str]:
        for channel, cap in value.items():
            if channel not in CHANNEL_NAMES:
                raise ValueError(f"unknown channel {channel!r} (known: {', '.join(CHANNEL_NAMES)})")
            if Cap.parse(cap).count > MAX_COUNT:
                raise ValueError(f"{channel}: {cap!r} allows more than {MAX_COUNT:,} contacts")
        return value

    @property
    def quiet(self) -> DailyWindow | None:
        """Quiet hours as a window, or None."""
        return DailyWindow.parse(self.quiet_hours) if self.quiet_hours else None

    def cap(self, channel: str) -> Cap | None:
        """The frequency cap of ``channel``, or None."""
        text = self.max_contacts.get(channel)
        return Cap.parse(text) if text else None
