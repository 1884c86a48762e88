"""``crm customers show REF``."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from engine.cli.common import console, print_json, state
from engine.config import Config
from engine.customers import CustomerProfile, customer_profile
from engine.errors import NotFoundError

CONSENT_CHANNELS = ("email", "sms", "call", "post")

group = typer.Typer(
    help="Look at customers.\n\nExample: crm customers show C000123",
    no_args_is_help=True,
)


def show(
    ref: str = typer.Argument(..., help="external id, email, phone (+7...) or #id"),
    as_json: bool = typer.Option(False, "--json", help="print the profile as JSON"),
) -> None:
    """Show one customer: fields, consents, loyalty, metrics, scores, segments, sources and timeline.

    The timeline lists the latest contacts (campaign, channel, state) and responses.

    Example: crm customers show C000123
    Example: crm customers show anna@example.ru --json
    """
    config = state.config()
    engine = state.engine(config)
    profile = customer_profile(engine, ref)
    loyalty = _loyalty(engine, config, profile)
    if as_json:
        print_json({**_as_dict(profile), "loyalty": loyalty})
        return
    zone = zoneinfo.ZoneInfo(config.settings.engine.timezone)
    table = Table(show_header=False, title=f"customer {escape(ref)}")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for name, value in {**profile.fields, **profile.metrics, **profile.custom_metrics}.items():
        if value is not None and value != {}:
            table.add_row(name, str(value))
    for name, points in profile.scores.items():
        table.add_row(f"score.{name}", str(points))
    console.print(table)
    console.print(f"consents: {_consents(profile, zone)}", markup=False, soft_wrap=True)
    for line in loyalty:
        tier = f", tier {line['tier']}" if line["tier"] else ""
        spend, pending = f"{line['available']:,}", f"{line['pending']:,}"
        console.print(
            f"loyalty {line['programme']}: {spend} points to spend, {pending} pending{tier}", markup=False
        )
    for stay in profile.segments:
        until = stay.left_at.strftime("%Y-%m-%d %H:%M") if stay.left_at else "now"
        console.print(f"segment {stay.segment}: {stay.entered_at:%Y-%m-%d %H:%M} .. {until}")
    for record in profile.sources:
        console.print(
            f"source {record.source} ({record.source_key}), last seen {record.last_seen_at:%Y-%m-%d}"
        )
    if profile.timeline:
        console.print(f"latest contacts and responses ({zone.key}):", markup=False)
    for event in profile.timeline:
        where = " ".join(part for part in (event.campaign, event.channel) if part)
        detail = f" ({event.detail})" if event.detail else ""
        local = event.at.astimezone(zone)
        console.print(f"  {local:%Y-%m-%d %H:%M} {event.what} {where}: {event.state}{detail}", markup=False)


def _consents(profile: CustomerProfile, zone: zoneinfo.ZoneInfo) -> str:
    parts = []
    for channel in CONSENT_CHANNELS:
        given = profile.fields.get(f"consent_{channel}")
        at = profile.fields.get(f"consent_{channel}_at")
        since = f" since {at.astimezone(zone):%Y-%m-%d}" if isinstance(at, dt.datetime) else ""
        parts.append(f"{channel} {'yes' if given else 'no'}{since}")
    return ", ".join(parts)


def _loyalty(engine: Any, config: Config, profile: CustomerProfile) -> list[dict[str, Any]]:
    """The customer's balance and tier in each programme they belong to (brought up to date as read)."""
    if not config.programmes:
        return []
    from engine.loyalty.ledger import balance

    found = []
    for programme in config.programmes.values():
        try:
            held = balance(engine, programme, profile.customer_id)
        except NotFoundError:  # not a member of this programme
            continue
        found.append(
            {
                "programme": programme.name,
                "available": held.available,
                "pending": held.pending,
                "tier": held.tier,
            }
        )
    return found


def _as_dict(profile: CustomerProfile) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(profile)


def register(app: typer.Typer) -> None:
    """Add ``crm customers`` to ``app``."""
    group.command("show")(show)
    app.add_typer(group, name="customers")
