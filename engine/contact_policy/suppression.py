"""The suppression list: who must not be contacted on a channel (hard bounces, unsubscribes, complaints).

Addresses are kept normalised (emails lower-case, phones E.164), one row per
channel and address, linked to the customer when one has that address. The
runner leaves suppressed customers out of every audience and records them as
``suppressed``; hard bounces and unsubscribes add to the list.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import phonenumbers
from sqlalchemy import Connection, Engine, delete, func, insert, select

from engine.errors import ConfigValueError, NotFoundError
from engine.models import CUSTOMER, SUPPRESSION, SUPPRESSION_REASONS

SUPPRESSIBLE_CHANNELS: tuple[str, ...] = ("email", "sms", "call", "post")


@dataclass(frozen=True)
class SuppressionEntry:
    """One suppressed address."""

    channel: str
    address: str
    reason: str
    customer_id: int | None
    source: str
    detail: str | None
    created_at: dt.datetime


def normalise_address(channel: str, address: str, region: str = "RU") -> str:
    """``address`` as stored for ``channel``: email lower-case, phone E.164, postal address trimmed."""
    if channel not in SUPPRESSIBLE_CHANNELS:
        raise ConfigValueError(
            "suppression",
            "channel",
            f"unknown channel {channel!r} (known: {', '.join(SUPPRESSIBLE_CHANNELS)})",
        )
    text = address.strip()
    if channel == "email":
        if "@" not in text or text.startswith("@") or text.endswith("@"):
            raise ConfigValueError("suppression", "address", f"{address!r} is not an email address")
        return text.lower()
    if channel in ("sms", "call"):
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException as exc:
            raise ConfigValueError(
                "suppression", "address", f"{address!r} is not a phone number ({exc})"
            ) from exc
        if not phonenumbers.is_valid_number(number):
            raise ConfigValueError("suppression", "address", f"{address!r} is not a valid phone number")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return " ".join(text.split())


def _customer_of(connection: Connection, channel: str, address: str) -> int | None:
    column = (
        CUSTOMER.c.email if channel == "email" else CUSTOMER.c.phone if channel in ("sms", "call") else None
    )
    if column is None:
        return None
    return connection.execute(
        select(CUSTOMER.c.id).where(column == address).order_by(CUSTOMER.c.id).limit(1)
    ).scalar()


def suppress(
    engine: Engine,
    channel: str,
    address: str,
    reason: str,
    *,
    detail: str | None = None,
    source: str = "manual",
    region: str = "RU",
) -> bool:
    """Add ``address`` to the suppression list of ``channel``; False when it was there already."""
    if reason not in SUPPRESSION_REASONS:
        raise ConfigValueError(
            "suppression", "reason", f"unknown reason {reason!r} (known: {', '.join(SUPPRESSION_REASONS)})"
        )
    normalised = normalise_address(channel, address, region)
    with engine.begin() as connection:
        exists = connection.execute(
            select(SUPPRESSION.c.id).where(
                SUPPRESSION.c.channel == channel, SUPPRESSION.c.address == normalised
            )
        ).first()
        if exists:
            return False
        connection.execute(
            insert(SUPPRESSION).values(
                channel=channel,
                address=normalised,
                customer_id=_customer_of(connection, channel, normalised),
                reason=reason,
                detail=detail,
                source=source,
            )
        )
    return True


def unsuppress(engine: Engine, channel: str, address: str, *, region: str = "RU") -> None:
    """Take ``address`` off the suppression list of ``channel`` (it must be on it)."""
    normalised = normalise_address(channel, address, region)
    with engine.begin() as connection:
        removed = connection.execute(
            delete(SUPPRESSION).where(SUPPRESSION.c.channel == channel, SUPPRESSION.c.address == normalised)
        ).rowcount
    if not removed:
        raise NotFoundError(f"{channel} suppression", normalised)


def is_suppressed(connection: Connection, channel: str, address: str, *, region: str = "RU") -> bool:
    """Whether ``address`` is suppressed on ``channel``."""
    normalised = normalise_address(channel, address, region)
    found = connection.execute(
        select(SUPPRESSION.c.id).where(SUPPRESSION.c.channel == channel, SUPPRESSION.c.address == normalised)
    ).first()
    return found is not None


def list_suppressions(
    engine: Engine, channel: str | None = None, *, limit: int = 100
) -> tuple[int, list[SuppressionEntry]]:
    """How many addresses are suppressed (on ``channel``, or all) and the newest ``limit`` of them."""
    where = [SUPPRESSION.c.channel == channel] if channel else []
    with engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(SUPPRESSION).where(*where)).scalar_one()
        rows = connection.execute(
            select(SUPPRESSION)
            .where(*where)
            .order_by(SUPPRESSION.c.created_at.desc(), SUPPRESSION.c.id.desc())
            .limit(limit)
        ).all()
    return count, [
        SuppressionEntry(r.channel, r.address, r.reason, r.customer_id, r.source, r.detail, r.created_at)
        for r in rows
    ]
