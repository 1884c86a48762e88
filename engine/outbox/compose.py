"""Composing a claimed batch into messages: checked again at send time, then rendered.

For a batch, a fixed handful of set-based queries read what every row needs
(the customers with their metrics, their custom metrics and scores, the
suppressed addresses among the recipients and, for calls and meetings, the
last purchases), never one query per row. Then each row is checked again,
because time has passed since its run was planned:

* later than the campaign's ``max_lateness`` (``scheduled_at + max_lateness < now``,
  e.g. after an outage; a list file's row is due until the end of its
  business day): ``expired``;
* consent for the channel withdrawn: ``no_consent``;
* the customer or the address suppressed meanwhile (unsubscribed, bounced): ``suppressed``;
* no address at all: ``no_address``.

The rest are rendered as :func:`engine.campaigns.preview.template_context`
shows (the same context a preview sees, plus ``variant``): emails with their
variant's subject and template in the customer's language
(:func:`engine.campaigns.step_content`: ``[steps.languages.ru]``, else the
default), ``List-Id`` (the campaign's public name, ``<key.domain>``),
``List-Unsubscribe`` headers (with RFC 8058 one-click when the link is
https), their links tracked and an open pixel (:mod:`engine.responses.tracking`),
SMS as text, calls, letters and meetings with what their list files show.
Every message carries the installation id, read once, which its Message-ID
mixes in.
A template that fails for one customer fails that row, never the batch.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlsplit

from sqlalchemy import Connection, Engine, Numeric, and_, case, cast, func, literal, or_, select, union_all

from engine.campaigns import (
    Campaign,
    CampaignFile,
    ContentRenderer,
    campaigns_folder,
    load_campaigns,
    step_content,
    template_context,
)
from engine.channels import LIST_CHANNELS, OutgoingMessage
from engine.clock import local_instant
from engine.config import Config
from engine.contact_policy import SUPPRESSIBLE_CHANNELS, normalise_address, sign
from engine.customers import CustomerProfile
from engine.db import installation_id
from engine.errors import ConfigError
from engine.loyalty.ledger import available_points
from engine.models import (
    ACCOUNT,
    CONSENT_CHANNELS,
    CUSTOMER,
    EXPIRED,
    FAILED,
    METRIC_VALUE,
    METRICS,
    NO_ADDRESS,
    NO_CONSENT,
    PURCHASE,
    RUN,
    SCORE,
    SUPPRESSED,
    SUPPRESSION,
)
from engine.outbox.claim import ClaimedRow
from engine.outbox.record import Outcome
from engine.responses import track_email
from engine.settings import parse_duration

LAST_PURCHASES = 3  # purchases shown on a call card or meeting task


@dataclass(frozen=True)
class RunInfo:
    """What a row needs to know about its run."""

    campaign: str
    segment: str


@dataclass
class Batch:
    """A claimed batch, composed: messages to send, and rows settled without sending."""

    messages: list[OutgoingMessage] = field(default_factory=list)
    rows: dict[str, ClaimedRow] = field(default_factory=dict)  # by key, for the messages
    settled: list[Outcome] = field(default_factory=list)


def _recipient(channel: str, row: ClaimedRow, fields: Mapping[str, Any]) -> str | None:
    if row.recipient:
        return row.recipient
    if channel == "email":
        return fields.get("email")
    if channel in ("sms", "call"):
        return fields.get("phone")
    if channel == "post":
        return fields.get("address")
    return fields.get("phone") or fields.get("email") or fields.get("address")


def _normalised(channel: str, address: str, region: str) -> str:
    try:
        return normalise_address(channel, address, region)
    except ConfigError:
        return address


def full_name(fields: Mapping[str, Any]) -> str:
    """Last, first and middle name as a call card shows them; the company when there is no name."""
    parts = [fields.get(name) for name in ("last_name", "first_name", "middle_name")]
    return " ".join(p for p in parts if p) or (fields.get("company") or "")


def list_id(public_name: str, campaign: str, domain: str) -> str:
    """``List-Id`` of a campaign's emails (RFC 2919): ``Public name <campaign.domain>``.

    The label is the campaign's key with anything but letters, digits, ``-``
    and ``_`` turned into ``-``, so mail filters and receivers can tell one
    campaign's mailings from another's, whatever the file is called.
    """
    label = re.sub(r"[^A-Za-z0-9_-]+", "-", campaign).strip("-").lower() or "campaign"
    return f"{public_name} <{label}.{domain}>"


def offers_one_click(url: str) -> bool:
    """Whether an email may offer RFC 8058 one-click unsubscribe for ``url``: only for an https URI."""
    return urlsplit(url).scheme.lower() == "https"


def email_warnings(config: Config) -> list[str]:
    """What in ``config`` makes the emails it sends fall short of what receivers expect; empty when nothing.

    ``crm validate`` prints these; sending goes on regardless. Through SMTP
    with a ``[links].base_url`` that is not https, emails carry
    ``List-Unsubscribe`` but no one-click (``List-Unsubscribe-Post``, RFC 8058
    allows it for https only), which large mailbox providers require of bulk
    senders. A Maildir is read locally: no warning.
    """
    settings = config.settings
    base_url = settings.links.base_url
    if settings.channels.email.transport != "smtp" or offers_one_click(base_url):
        return []
    reason = (
        f"{base_url!r} is not https: emails sent through SMTP carry no RFC 8058 one-click unsubscribe "
        "(List-Unsubscribe-Post), which large mailbox providers require of bulk senders; "
        "set it to the https address at which customers reach `crm serve`"
    )
    return [str(settings.error("links.base_url", reason))]


class Composer:
    """Turns claimed rows into messages; reloads the campaign files for a campaign it does not know."""

    def __init__(self, engine: Engine, config: Config, *, installation: str | None = None) -> None:
        self.engine = engine
        self.config = config
        # mixed into every message's Message-ID; read once (the worker passes the one it read)
        self.installation = installation if installation is not None else installation_id(engine)
        self.renderer = ContentRenderer(campaigns_folder(config) / "templates")
        self.zone = zoneinfo.ZoneInfo(config.settings.engine.timezone)
        self._campaigns: dict[str, CampaignFile] | None = None
        self._load_error: str | None = None
        self._runs: dict[int, RunInfo] = {}

    # --- what the batch needs, read set-based -------------------------------------------------

    def _campaigns_for(self, keys: set[str]) -> dict[str, CampaignFile | str]:
        """Each campaign of ``keys``, or why it cannot be had; a key not seen yet reads the files again."""
        if self._campaigns is None or not keys <= self._campaigns.keys():
            try:
                self._campaigns = load_campaigns(self.config)
                self._load_error = None
            except ConfigError as exc:
                self._load_error = f"campaign files have errors: {exc}"
        loaded = self._campaigns or {}
        folder = campaigns_folder(self.config)
        return {
            key: loaded.get(key) or self._load_error or f"campaign {key!r} is no longer in {folder}"
            for key in keys
        }

    def _run_info(self, connection: Connection, run_ids: set[int]) -> dict[int, RunInfo]:
        missing = run_ids - self._runs.keys()
        if missing:
            for row in connection.execute(
                select(RUN.c.id, RUN.c.campaign, RUN.c.segment).where(RUN.c.id.in_(missing))
            ):
                self._runs[row.id] = RunInfo(row.campaign, row.segment)
        return {run_id: self._runs[run_id] for run_id in run_ids if run_id in self._runs}

    def _profiles(self, connection: Connection, ids: set[int]) -> dict[int, CustomerProfile]:
        metric_columns = [c.label(f"metric__{c.name}") for c in METRICS.c if c.name != "customer_id"]
        found = connection.execute(
            select(CUSTOMER, METRICS.c.customer_id.label("metrics_of"), *metric_columns)
            .select_from(CUSTOMER.outerjoin(METRICS, METRICS.c.customer_id == CUSTOMER.c.id))
            .where(CUSTOMER.c.id.in_(ids))
        )
        profiles: dict[int, CustomerProfile] = {}
        for row in found:
            values = dict(row._mapping)
            fields = {c.name: values[c.name] for c in CUSTOMER.c}
            fields["declared_stage"] = fields.pop("lifecycle_stage")
            metrics = (
                {key.removeprefix("metric__"): v for key, v in values.items() if key.startswith("metric__")}
                if values["metrics_of"] is not None
                else {}
            )
            profiles[row.id] = CustomerProfile(fields, metrics, {}, {}, [], [])
        extras = union_all(
            select(
                METRIC_VALUE.c.customer_id,
                literal("metric").label("kind"),
                METRIC_VALUE.c.name,
                cast(METRIC_VALUE.c.value, Numeric(18, 4)).label("value"),
            ).where(METRIC_VALUE.c.customer_id.in_(ids)),
            select(
                SCORE.c.customer_id,
                literal("score").label("kind"),
                SCORE.c.name,
                cast(SCORE.c.points, Numeric(18, 4)).label("value"),
            ).where(SCORE.c.customer_id.in_(ids)),
        )
        for row in connection.execute(extras):
            profile = profiles.get(row.customer_id)
            if profile is None:
                continue
            if row.kind == "score":
                profile.scores[row.name] = int(row.value)
            else:
                profile.custom_metrics[row.name] = None if row.value is None else Decimal(row.value)
        return profiles

    def _suppressed(
        self, connection: Connection, channel: str, customers: set[int], addresses: set[str]
    ) -> tuple[set[int], set[str]]:
        """Customers and addresses suppressed on ``channel`` among those of the batch."""
        if channel not in SUPPRESSIBLE_CHANNELS:
            return set(), set()
        found = connection.execute(
            select(SUPPRESSION.c.customer_id, SUPPRESSION.c.address).where(
                SUPPRESSION.c.channel == channel,
                or_(SUPPRESSION.c.customer_id.in_(customers), SUPPRESSION.c.address.in_(addresses)),
            )
        ).all()
        return {row.customer_id for row in found} & customers, {row.address for row in found}

    def _loyalty_points(self, ids: set[int], now: dt.datetime) -> dict[int, tuple[str, str]]:
        """What each customer can spend now in each loyalty programme and their tier there, for the agent
        to tell them: ``("1,240", "gold")`` (``("bonus 1,240; club 300", "bonus gold; club silver")`` with
        several programmes); non-members get nothing."""
        programmes = self.config.programmes
        found: dict[int, list[str]] = {}
        tiers: dict[int, list[str]] = {}
        for name, programme in programmes.items():
            for customer, available in available_points(self.engine, programme, ids, now=now).items():
                shown = f"{available:,}" if len(programmes) == 1 else f"{name} {available:,}"
                found.setdefault(customer, []).append(shown)
        if programmes:
            override = and_(ACCOUNT.c.tier_override.is_not(None), or_(
                ACCOUNT.c.override_until.is_(None), ACCOUNT.c.override_until > now
            ))  # fmt: skip
            tier = case((override, ACCOUNT.c.tier_override), else_=ACCOUNT.c.tier)
            query = (
                select(ACCOUNT.c.customer_id, ACCOUNT.c.programme, tier.label("tier"))
                .where(
                    ACCOUNT.c.customer_id.in_(sorted(ids)),
                    ACCOUNT.c.programme.in_(sorted(programmes)),
                    ACCOUNT.c.merged_into_id.is_(None),
                )
                .order_by(ACCOUNT.c.customer_id, ACCOUNT.c.programme)
            )
            with self.engine.connect() as connection:
                for row in connection.execute(query):
                    if row.tier:
                        shown = row.tier if len(programmes) == 1 else f"{row.programme} {row.tier}"
                        tiers.setdefault(row.customer_id, []).append(shown)
        return {
            customer: ("; ".join(found.get(customer, [])), "; ".join(tiers.get(customer, [])))
            for customer in found.keys() | tiers.keys()
        }

    def _last_purchases(self, connection: Connection, ids: set[int]) -> dict[int, str]:
        ranked = (
            select(
                PURCHASE.c.customer_id,
                PURCHASE.c.ordered_at,
                PURCHASE.c.category,
                PURCHASE.c.amount,
                PURCHASE.c.currency,
                func.row_number()
                .over(
                    partition_by=PURCHASE.c.customer_id,
                    order_by=(PURCHASE.c.ordered_at.desc(), PURCHASE.c.id.desc()),
                )
                .label("n"),
            )
            .where(PURCHASE.c.customer_id.in_(ids), PURCHASE.c.refund_of_id.is_(None))
            .subquery()
        )
        shown: dict[int, list[str]] = {}
        for row in connection.execute(
            select(ranked).where(ranked.c.n <= LAST_PURCHASES).order_by(ranked.c.customer_id, ranked.c.n)
        ):
            day = row.ordered_at.astimezone(self.zone).date().isoformat()
            what = f"{row.category} " if row.category else ""
            shown.setdefault(row.customer_id, []).append(f"{day} {what}{row.amount} {row.currency}")
        return {customer: "; ".join(items) for customer, items in shown.items()}

    # --- per row --------------------------------------------------------------------------------

    def compose(self, channel: str, rows: Sequence[ClaimedRow], now: dt.datetime) -> Batch:
        """Check and render every row of a batch of ``channel``."""
        batch = Batch()
        if not rows:
            return batch
        region = self.config.settings.engine.default_region
        ids = {row.customer_id for row in rows}
        points = self._loyalty_points(ids, now) if channel == "call" else {}
        with self.engine.connect() as connection:
            runs = self._run_info(connection, {row.run_id for row in rows})
            profiles = self._profiles(connection, ids)
            addresses = {
                row.id: address
                for row in rows
                if row.customer_id in profiles
                and (address := _recipient(channel, row, profiles[row.customer_id].fields))
            }
            suppressed_customers, suppressed_addresses = self._suppressed(
                connection, channel, ids, {_normalised(channel, a, region) for a in addresses.values()}
            )
            purchases = self._last_purchases(connection, ids) if channel in ("call", "meeting") else {}
        campaigns = self._campaigns_for({run.campaign for run in runs.values()})
        for row in rows:
            run = runs.get(row.run_id)
            campaign = campaigns[run.campaign] if run is not None else f"run {row.run_id} does not exist"
            profile = profiles.get(row.customer_id)
            if profile is None:
                batch.settled.append(Outcome(row, FAILED, f"customer {row.customer_id} does not exist"))
                continue
            if isinstance(campaign, str):
                batch.settled.append(Outcome(row, FAILED, campaign))
                continue
            assert run is not None
            address = addresses.get(row.id)
            suppressed = row.customer_id in suppressed_customers or (
                address is not None and _normalised(channel, address, region) in suppressed_addresses
            )
            refused = self._refusal(channel, row, campaign.campaign, profile, address, suppressed, now)
            if refused is not None:
                batch.settled.append(refused)
                continue
            assert address is not None
            try:
                message = self._render(channel, row, address, campaign, run, profile, purchases, points, now)
            except Exception as exc:  # one customer's content fails that row only
                batch.settled.append(Outcome(row, FAILED, f"{type(exc).__name__}: {exc}"[:2000]))
                continue
            batch.messages.append(message)
            batch.rows[message.key] = row
        return batch

    def _refusal(
        self,
        channel: str,
        row: ClaimedRow,
        definition: Campaign,
        profile: CustomerProfile,
        address: str | None,
        suppressed: bool,
        now: dt.datetime,
    ) -> Outcome | None:
        """Why ``row`` must not be sent now, or None: the checks of send time, in order."""
        if not 0 <= row.step < len(definition.steps):
            return Outcome(row, FAILED, f"the campaign has no step {row.step} any more")
        if self._deadline(channel, row, definition) < now:
            detail = (
                f"not sent within max_lateness {definition.max_lateness} of "
                f"{row.scheduled_at:%Y-%m-%d %H:%M} UTC"
            )
            return Outcome(row, EXPIRED, detail)
        if channel in CONSENT_CHANNELS and not profile.fields.get(f"consent_{channel}"):
            return Outcome(row, NO_CONSENT, f"no consent for {channel} at send time")
        if not address:
            return Outcome(row, NO_ADDRESS, f"no address for {channel}")
        if suppressed:
            return Outcome(row, SUPPRESSED, f"{address} is on the {channel} suppression list")
        return None

    def _deadline(self, channel: str, row: ClaimedRow, definition: Campaign) -> dt.datetime:
        """When the row is too late to send: ``max_lateness`` after it was due.

        A list file is worked through during its day, so a call, letter or
        meeting is due until the end of its business day.
        """
        due = row.scheduled_at
        if channel in LIST_CHANNELS:
            day = due.astimezone(self.zone).date()
            due = local_instant(day + dt.timedelta(days=1), dt.time(0), self.zone)
        return due + parse_duration(definition.max_lateness)

    def _context(
        self, campaign: CampaignFile, profile: CustomerProfile, variant: str | None
    ) -> dict[str, Any]:
        context = template_context(self.config, campaign, profile)
        context["variant"] = variant
        if not self.config.settings.links.secret:
            # never a link signed with the preview secret: a template that needs one fails instead
            context["links"].pop("unsubscribe", None)
        return context

    def _unsubscribe_headers(self, url: str, customer_id: int, campaign: str) -> dict[str, str]:
        """List-Unsubscribe: the signed link (the one the template sees) and a mailto; one-click when https.

        RFC 8058 allows one-click (``List-Unsubscribe-Post``) for an https URI
        only, so an http link (the default ``[links].base_url``) is offered
        without it: the link still unsubscribes, through its page.
        """
        secret = self.config.settings.links.secret
        if not secret:
            raise ConfigError("[links].secret is not set: unsubscribe links cannot be signed")
        payload = f"u.{customer_id}.{campaign}"
        subject = quote(f"unsubscribe {payload} {sign(payload, secret)}", safe="")
        mailbox = f"unsubscribe@{self.config.settings.channels.email.domain}"
        headers = {"List-Unsubscribe": f"<{url}>, <mailto:{mailbox}?subject={subject}>"}
        if offers_one_click(url):
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        return headers

    def _render(
        self,
        channel: str,
        row: ClaimedRow,
        address: str,
        campaign: CampaignFile,
        run: RunInfo,
        profile: CustomerProfile,
        purchases: Mapping[int, str],
        points: Mapping[int, tuple[str, str]],
        now: dt.datetime,
    ) -> OutgoingMessage:
        definition = campaign.campaign
        step = definition.steps[row.step]
        context = self._context(campaign, profile, row.variant)
        key = row.key
        content = step_content(definition, step, row.variant, profile.fields.get("language"))
        if channel == "email":
            if content.template is None:
                raise ConfigError("the step has no template")
            email = self.renderer.render_email(content.template, content.subject or "", context)
            unsubscribe = context["links"].get("unsubscribe", "")
            headers = self._unsubscribe_headers(unsubscribe, row.customer_id, campaign.key)
            headers["List-Id"] = list_id(
                definition.shown_name, campaign.key, self.config.settings.channels.email.domain
            )
            links = self.config.settings.links
            html = track_email(
                email.html, row.id, base_url=links.base_url, secret=links.secret or "", keep={unsubscribe}
            )
            return OutgoingMessage(
                key,
                row.customer_id,
                address,
                subject=email.subject,
                html=html,
                text=email.text,
                headers=headers,
                details={"campaign": definition.name, "variant": row.variant or ""},
                installation=self.installation,
            )
        if channel == "sms":
            if content.template is None:
                raise ConfigError("the step has no template")
            text = self.renderer.render_text(content.template, context).strip()
            return OutgoingMessage(key, row.customer_id, address, text=text, installation=self.installation)
        fields = profile.fields
        source = content.script or content.letter or content.template
        rendered = self.renderer.render_text(source, context).strip() if source else definition.name
        details: dict[str, Any] = {
            "name": full_name(fields),
            "company": fields.get("company") or "",
            "segment": run.segment,
            "campaign": definition.name,
            "curator": fields.get("curator") or "",
        }
        if channel == "call":
            details |= self._call_details(campaign, row, source, context, purchases, points, now, fields)
        elif channel == "post":
            details |= {"letter": rendered, "country": fields.get("country") or ""}
        else:
            details |= {
                "agenda": rendered,
                "phone": fields.get("phone") or "",
                "address": fields.get("address") or "",
                "last_purchases": purchases.get(row.customer_id, ""),
            }
        return OutgoingMessage(key, row.customer_id, address, details=details, installation=self.installation)

    def _zone_of(self, fields: Mapping[str, Any]) -> zoneinfo.ZoneInfo:
        name = fields.get("timezone")
        if name:
            try:
                return zoneinfo.ZoneInfo(name)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                pass
        return self.zone

    def _calling_window(self, zone: zoneinfo.ZoneInfo, now: dt.datetime) -> tuple[str, str]:
        """The calling window in the customer's time (``10:00-19:00``) and in the centre's (business) time."""
        window = self.config.settings.channels.call.calling_window
        text = f"{window.start:%H:%M}-{window.end:%H:%M}"
        if zone.key == self.zone.key:
            return text, text
        day = now.astimezone(zone).date()
        start = local_instant(day, window.start, zone).astimezone(self.zone)
        end = local_instant(day, window.end, zone).astimezone(self.zone)
        return text, f"{start:%H:%M}-{end:%H:%M}"

    def _call_details(
        self,
        campaign: CampaignFile,
        row: ClaimedRow,
        source: str | None,
        context: dict[str, Any],
        purchases: Mapping[int, str],
        points: Mapping[int, tuple[str, str]],
        now: dt.datetime,
        fields: Mapping[str, Any],
    ) -> dict[str, Any]:
        """What a call list row shows (:class:`engine.channels.CallListChannel`).

        The customer as the business knows them (external id, else email or
        phone); the calling window in their time and in the centre's; the
        campaign's key (what ``crm import responses`` reads back) and name;
        its priority; points and tier. The script is the list's, not the
        row's: rendered once with the customer's values as ``[first name]``
        placeholders (the row beside it shows them), so the list prints it
        once per campaign; a template that needs real values falls back to
        its source.
        """
        zone = self._zone_of(fields)
        local, centre = self._calling_window(zone, now)
        balance, tier = points.get(row.customer_id, ("", ""))
        definition = campaign.campaign
        return {
            "customer": fields.get("external_id") or fields.get("email") or fields.get("phone") or "",
            "script": self._list_script(campaign, source, context) if source else definition.name,
            "calling_window": local,
            "centre_window": centre,
            "timezone": zone.key,
            "priority": definition.priority,
            "last_purchases": purchases.get(row.customer_id, ""),
            "loyalty_balance": balance,
            "tier": tier,
            "campaign": campaign.key,
            "campaign_name": definition.name,
        }

    def _list_script(self, campaign: CampaignFile, source: str, context: dict[str, Any]) -> str:
        """The call script as the list shows it once for everyone: customer values as placeholders."""
        customer = _Placeholders(id=context["customer"]["id"])
        profile = CustomerProfile(customer, _Placeholders(), _Placeholders(), _Placeholders(), [], [])
        try:
            return self.renderer.render_text(source, template_context(self.config, campaign, profile)).strip()
        except Exception:  # a filter over a number, a loop over purchases: show what the marketer wrote
            return (campaigns_folder(self.config) / "templates" / source).read_text(encoding="utf-8").strip()


class _Placeholders(dict[str, Any]):
    """A customer's values as a call script shown once per list names them: ``[first name]``."""

    def __missing__(self, key: str) -> str:
        return f"[{key.replace('_', ' ')}]"
