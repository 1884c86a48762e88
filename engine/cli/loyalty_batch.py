"""``crm loyalty expire`` and ``crm loyalty tiers``: the daily batch's jobs by hand, and manual tiers."""

from __future__ import annotations

import datetime as dt
import getpass

import typer
from rich import box
from rich.table import Table

from engine.cli.common import console, parse_instant, print_json, state
from engine.clock import utcnow
from engine.customers import find_customer_id
from engine.errors import ConfigValueError
from engine.loyalty.batch import (
    activate_due,
    expire_due,
    preview_expiry,
    recompute_tiers,
    set_tier_override,
    tier_report,
)
from engine.loyalty.programme import Programme, programme_named
from engine.settings import MAX_COUNT

PROGRAMME = typer.Option(
    None, "--programme", "-p", help="the programme (default: the only one in config.toml)"
)
AS_OF = typer.Option(
    None, "--as-of", help="run as of this day's close (2027-01-01) or instant (default: now)"
)
AS_JSON = typer.Option(False, "--json", help="print as JSON")


def _local(instant: dt.datetime | None, programme: Programme) -> str:
    return f"{instant.astimezone(programme.zone):%Y-%m-%d %H:%M}" if instant is not None else "-"


def expire_command(
    programme: str | None = PROGRAMME,
    as_of: str | None = AS_OF,
    dry_run: bool = typer.Option(False, "--dry-run", help="show what would expire; post nothing"),
    as_json: bool = AS_JSON,
) -> None:
    """Activate points out of the return window, then expire points past their date (the batch's first jobs).

    Expired holds are voided first; held points are left to their hold.
    Running it again posts nothing new.

    Example: crm loyalty expire --dry-run
    Example: crm loyalty expire --as-of 2026-12-31
    """
    config = state.config()
    chosen = programme_named(config.programmes, programme)
    engine = state.engine(config)
    now = parse_instant(as_of, chosen.zone, "--as-of", day_closes=True) if as_of else utcnow()
    if dry_run:
        preview = preview_expiry(engine, chosen, now=now)
        if as_json:
            print_json(preview)
            return
        console.print(
            f"{chosen.name} as of {_local(now, chosen)}: {preview.points:,} points of {preview.lots:,} lots"
            f" on {preview.accounts:,} accounts would expire (dry run: nothing posted)"
        )
        if preview.shown:
            table = Table(box=box.SIMPLE)
            for column in ("customer", "lot", "points", "expires", "why"):
                table.add_column(column, justify="right" if column in ("lot", "points") else "left")
            for lot in preview.shown:
                table.add_row(
                    lot.customer, str(lot.lot), f"{lot.points:,}", _local(lot.expires_at, chosen), lot.reason
                )
            console.print(table)
            if preview.lots > len(preview.shown):
                console.print(f"... and {preview.lots - len(preview.shown):,} more lots")
        return
    activated = activate_due(engine, chosen, now=now)
    expired = expire_due(engine, chosen, now=now)
    if as_json:
        print_json({"programme": chosen.name, "as_of": now, "activated": activated, "expired": expired})
        return
    console.print(f"{chosen.name} as of {_local(now, chosen)}:")
    console.print(
        f"  activated {activated.points:,} points of {activated.lots:,} lots"
        f" on {activated.accounts:,} accounts"
        + (f"; {activated.repaid:,} points repaid debts" if activated.repaid else "")
    )
    if expired.voided_holds:
        console.print(f"  voided {expired.voided_holds:,} holds past their timeout")
    idle = f" ({expired.inactivity_lots:,} lots of idle accounts)" if expired.inactivity_lots else ""
    console.print(
        f"  expired {expired.points:,} points of {expired.lots:,} lots on {expired.accounts:,} accounts{idle}"
    )


def tiers_command(
    programme: str | None = PROGRAMME,
    customer: str | None = typer.Option(
        None, "--customer", help="one customer: #id, external id, email or phone"
    ),
    recompute: bool = typer.Option(False, "--recompute", help="recompute every account's tier now"),
    set_tier: tuple[str, str] | None = typer.Option(
        None, "--set", metavar="CUSTOMER TIER", help="hold CUSTOMER at TIER until --until (needs --reason)"
    ),
    until: str | None = typer.Option(None, "--until", help="last day of a manual tier (or an instant)"),
    reason: str | None = typer.Option(None, "--reason", help="why the tier is set by hand"),
    as_of: str | None = AS_OF,
    limit: int = typer.Option(
        20, "--limit", min=0, max=MAX_COUNT, help="accounts listed (0: only the counts per tier)"
    ),
    as_json: bool = AS_JSON,
) -> None:
    """Accounts' tiers with their qualifying activity; recompute them, or set one by hand until a date.

    A tier set by hand holds until the end of --until's day (programme time);
    the daily recompute then puts the account where its activity reaches.

    Example: crm loyalty tiers --customer C-1001
    Example: crm loyalty tiers --recompute
    Example: crm loyalty tiers --set C-1001 gold --until 2027-03-31 --reason "status match"
    """
    config = state.config()
    chosen = programme_named(config.programmes, programme)
    engine = state.engine(config)
    now = parse_instant(as_of, chosen.zone, "--as-of", day_closes=True) if as_of else utcnow()
    if set_tier is not None:
        if until is None or reason is None:
            raise ConfigValueError("--set", "--set", "a manual tier needs --until DATE and --reason TEXT")
        who, tier = set_tier
        change = set_tier_override(
            engine,
            chosen,
            find_customer_id(engine, who),
            tier,
            until=parse_instant(until, chosen.zone, "--until", day_closes=True),
            reason=reason,
            actor=getpass.getuser(),
            now=now,
        )
        if as_json:
            print_json(change)
            return
        console.print(
            f"{change.customer}: {change.from_tier or '-'} -> {change.to_tier} until"
            f" {_local(change.until, chosen)} ({change.reason}, by {change.actor})"
        )
        return
    if until is not None or reason is not None:
        raise ConfigValueError("--until", "--until", "--until and --reason go with --set CUSTOMER TIER")
    customer_id = find_customer_id(engine, customer) if customer is not None else None  # before any work
    if recompute:
        result = recompute_tiers(engine, chosen, now=now)
        if as_json:
            print_json(result)
            return
        console.print(
            f"{chosen.name}: {result.accounts:,} accounts recomputed: {result.upgraded:,} up,"
            f" {result.downgraded:,} down, {result.grace_started:,} into grace,"
            f" {result.overrides_ended:,} manual tiers ended"
        )
    report = tier_report(engine, chosen, now=now, customer_id=customer_id, limit=None if customer else limit)
    if as_json:
        print_json(report)
        return
    unit = "spend" if report.qualify == "spend" else "points"
    counts = ", ".join(f"{tier} {n:,}" for tier, n in report.counts.items()) or "no accounts"
    console.print(f"{chosen.name}: tiers on {unit} over {report.window}: {counts}")
    if not report.accounts:
        return
    table = Table(box=box.SIMPLE)
    for column in ("customer", "tier", "since", unit, "reaches", "manual until", "grace until"):
        table.add_column(column, justify="right" if column == unit else "left")
    for row in report.accounts:
        table.add_row(
            row.customer,
            row.tier or "-",
            _local(row.tier_since, chosen),
            f"{row.qualifying:,}",
            row.target or "-",
            _local(row.override_until, chosen),
            _local(row.grace_until, chosen),
        )
    console.print(table)


def register(group: typer.Typer) -> None:
    """Add ``crm loyalty expire`` and ``crm loyalty tiers`` to the ``crm loyalty`` group."""
    group.command("expire")(expire_command)
    group.command("tiers")(tiers_command)
