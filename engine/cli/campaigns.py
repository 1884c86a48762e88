"""``crm plan``, ``crm run`` and ``crm event``: campaigns planned, fired by hand, triggered."""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from typing import Any

import typer
from rich.table import Table
from sqlalchemy import Engine

from engine.budget import load_budgets
from engine.campaigns import last_firing, load_campaigns
from engine.cli.common import console, print_json, state
from engine.clock import utcnow
from engine.config import Config
from engine.customers import find_customer_id, record_event
from engine.errors import ConfigValueError, NotFoundError
from engine.models import outbox as states
from engine.runs import (
    Plan,
    PlanDiff,
    RunLine,
    RunSummary,
    StepCounts,
    list_runs,
    plan,
    plan_diff,
    run_summary,
    send_winner,
    start_run,
)

#: the order reasons are shown in: waiting and made first, then why others were left out
STATE_ORDER = (
    *states.WAITING_STATES,
    *states.CONTACTED_STATES,
    states.HELD,
    states.FAILED,
    states.EXPIRED,
    *states.EXCLUDED_STATES,
)


def parse_time(text: str | None, zone: str) -> dt.datetime | None:
    """``2026-12-01``, ``2026-12-01T10:00`` (business zone) or with an offset, as aware UTC."""
    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise ConfigValueError("--at", "at", f"{text!r} is not a time (e.g. 2026-12-01T10:00)") from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=zoneinfo.ZoneInfo(zone))
    return value.astimezone(dt.UTC)


def _states_text(counts: dict[str, int], later: int = 0) -> str:
    ordered = sorted(
        counts.items(), key=lambda item: STATE_ORDER.index(item[0]) if item[0] in STATE_ORDER else 99
    )
    parts = []
    for name, n in ordered:
        text = f"{name.replace('_', ' ')} {n:,}"
        if name == states.QUEUED and later:
            text += f" ({later:,} later: quiet hours, local send time or call capacity)"
        if name == states.HELD:
            text += " (wait for the A/B winner: crm run KEY --winner)"
        parts.append(text)
    return ", ".join(parts)


def steps_table(title: str, steps: list[StepCounts], currency: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("step", "channel", "audience", "contacts", "cost", "states (why others are left out)"):
        table.add_column(column, justify="right" if column in ("audience", "contacts", "cost") else "left")
    for s in steps:
        table.add_row(
            str(s.step),
            s.channel,
            f"{s.audience:,}",
            f"{s.contacted:,}",
            f"{s.cost:,} {currency}",
            _states_text(s.states, s.later),
        )
    return table


def _print_plan(result: Plan, currency: str, zone: zoneinfo.ZoneInfo) -> None:
    if not result.runs:
        console.print(
            f"nothing fires between {result.start:%Y-%m-%d %H:%M} and {result.end:%Y-%m-%d %H:%M} UTC"
        )
        return
    for run in result.runs:
        local = run.scheduled_for.astimezone(zone)
        title = f"{run.campaign} ({run.strategy}, priority {run.priority}) at {local:%Y-%m-%d %H:%M %Z}"
        if run.already_ran:
            title += " [already ran]"
        if run.state != states.RUN_QUEUED:
            console.print(f"{title}: {run.state} ({run.detail})")
            continue
        console.print(steps_table(title, run.steps, currency))
        if run.preparation_cost:
            console.print(
                f"  preparation {run.preparation_cost:,} {currency}; run total {run.cost:,} {currency}"
            )
    console.print(f"planned cost: {result.cost:,} {currency}")


def _print_diff(diff: PlanDiff, currency: str) -> None:
    if not diff.lines:
        console.print(f"no change against {diff.rev}")
        return
    table = Table(title=f"plan: {diff.rev} -> working tree", title_justify="left")
    for column in ("campaign", "when", "step", "channel", "contacts", "cost"):
        table.add_column(column)
    for line in diff.lines:
        table.add_row(
            line.campaign,
            f"{line.scheduled_for:%Y-%m-%d %H:%M}",
            str(line.step),
            line.channel,
            f"{line.contacts_before:,} -> {line.contacts_after:,}",
            f"{line.cost_before:,} -> {line.cost_after:,} {currency}",
        )
    console.print(table)
    change = diff.cost_after - diff.cost_before
    console.print(f"planned cost: {diff.cost_before:,} -> {diff.cost_after:,} {currency} ({change:+,})")


def plan_command(
    at: str | None = typer.Option(None, "--at", help="start of the window (default now; business time zone)"),
    days: int = typer.Option(1, "--days", min=1, max=366, help="length of the window in days"),
    campaign: str | None = typer.Option(None, "--campaign", help="only this campaign"),
    diff: bool = typer.Option(False, "--diff", help="compare with the plan of the config at --rev"),
    rev: str = typer.Option("HEAD", "--rev", help="git revision --diff compares with"),
    as_json: bool = typer.Option(False, "--json", help="print as JSON"),
) -> None:
    """Show what `crm run` would do, and what it would cost, without doing it.

    Per campaign firing, step and channel: the audience, the contacts after control group,
    consent, suppression, caps, quiet hours and budget, with a count per reason for everyone
    left out, and the cost. --diff shows what your uncommitted change does to the plan.

    Example: crm plan --days 7
    Example: crm plan --at 2026-12-01T09:00 --campaign winback --json
    Example: crm plan --days 30 --diff
    """
    config = state.config()
    engine = state.engine(config)
    start = parse_time(at, config.settings.engine.timezone)
    currency = config.settings.engine.currency
    if diff:
        result = plan_diff(engine, config, rev=rev, at=start, days=days, campaign=campaign)
        if as_json:
            print_json(result.as_dict())
        else:
            _print_diff(result, currency)
        return
    planned = plan(engine, config, at=start, days=days, campaign=campaign)
    if as_json:
        print_json(planned.as_dict())
        return
    _print_plan(planned, currency, zoneinfo.ZoneInfo(config.settings.engine.timezone))


def _print_run(summary: RunSummary, currency: str) -> None:
    title = f"run {summary.run_id} of {summary.campaign}: {summary.state}"
    if summary.detail:
        title += f" ({summary.detail})"
    console.print(steps_table(title, summary.steps, currency) if summary.steps else title)


def _drain_run(engine: Engine, config: Config, run_id: int) -> RunSummary:
    """Send what run ``run_id`` has due, advance later steps, and summarise the run."""
    from engine.outbox import drain
    from engine.runs import advance, run_summary

    drain(engine, config, until_idle=True, run_id=run_id)
    advance(engine, config)
    with engine.connect() as connection:
        return run_summary(connection, run_id)


def _run_json(summary: RunSummary) -> dict[str, Any]:
    return {
        "run_id": summary.run_id,
        "campaign": summary.campaign,
        "state": summary.state,
        "detail": summary.detail,
        "counts": summary.counts,
        "cost": str(summary.cost),
    }


def _winner_command(
    engine: Engine, config: Config, campaign: str, variant: str | None, send: bool, as_json: bool
) -> None:
    """``crm run KEY --winner``: the held customers of the latest A/B run get the winning variant."""
    result = send_winner(engine, config, campaign, variant=variant)
    summary = None
    if result.run_id is not None:
        if send:
            summary = _drain_run(engine, config, result.run_id)
        else:
            with engine.connect() as connection:
                summary = run_summary(connection, result.run_id)
    if as_json:
        payload: dict[str, Any] = {
            "campaign": result.campaign,
            "run_id": result.run_id,
            "variant": result.variant,
            "chosen_by": result.chosen_by or None,
            "held": result.states,
            "message": result.describe(),
        }
        if summary is not None:
            payload["run"] = _run_json(summary)
        print_json(payload)
        return
    console.print(result.describe())
    if summary is not None:
        _print_run(summary, config.settings.engine.currency)


def run_command(
    campaign: str = typer.Argument(..., help="the campaign (its file name without .toml)"),
    now: bool = typer.Option(False, "--now", help="fire now, whatever the campaign's schedule says"),
    again: bool = typer.Option(
        False, "--again", help="with --now: fire even if the campaign already ran today (a second contact)"
    ),
    send: bool = typer.Option(True, "--send/--no-send", help="drain this run's outbox right away"),
    winner: bool = typer.Option(
        False, "--winner", help="A/B test: send the winning variant to the customers held for it"
    ),
    variant: str | None = typer.Option(
        None, "--variant", help="with --winner: send this variant, whatever the test says"
    ),
    as_json: bool = typer.Option(False, "--json", help="print as JSON"),
) -> None:
    """Run one campaign by hand: queue its audience, then send what is due.

    Without --now it fires the campaign's latest due firing (a rerun of one that
    already ran changes nothing: every customer gets each step once).
    With --now it refuses when the campaign already ran on this business day,
    unless --again says a second firing is meant (its customers are contacted again).
    With --winner it fires nothing: the customers of the latest run held back by
    the campaign's test_share get the A/B winner (the significant one, or --variant),
    once; without a significant winner and without --variant it refuses.

    Example: crm run winback
    Example: crm run winback --now --no-send
    Example: crm run winback --now --again
    Example: crm run spring_sale --winner
    Example: crm run spring_sale --winner --variant b
    """
    config = state.config()
    engine = state.engine(config)
    if variant is not None and not winner:
        raise ConfigValueError(
            "--variant", "variant", "goes with --winner: crm run KEY --winner --variant NAME"
        )
    if winner and now:
        raise ConfigValueError(
            "--now", "now", "--winner fires nothing: it sends the held customers the winner"
        )
    if winner:
        _winner_command(engine, config, campaign, variant, send, as_json)
        return
    campaigns = load_campaigns(config)
    load_budgets(config, campaigns)  # a budget file validate refuses is refused here too
    if campaign not in campaigns:
        raise NotFoundError("campaign", campaign, list(campaigns))
    chosen = campaigns[campaign]
    moment = utcnow().replace(microsecond=0)
    zone = zoneinfo.ZoneInfo(config.settings.engine.timezone)
    if again and not now:
        raise ConfigValueError("--again", "again", "goes with --now: crm run KEY --now --again")
    if now and not again:
        latest = list_runs(engine, campaign, limit=1)
        if latest and latest[0].scheduled_for.astimezone(zone).date() == moment.astimezone(zone).date():
            ran = latest[0].scheduled_for.astimezone(zone)
            raise ConfigValueError(
                "--now",
                "now",
                f"{campaign} already ran today (run {latest[0].run_id} at {ran:%H:%M} {zone.key}): "
                "a second firing contacts its customers again; pass --again if that is meant",
            )
    if not now:
        due = last_firing(
            chosen.campaign, zone, moment, anniversary_at=config.settings.scheduler.anniversary_at
        )
        if due is None:
            raise ConfigValueError(
                str(chosen.path),
                "schedule",
                "the campaign has not been due yet: pass --now to fire it anyway",
            )
        moment = due
    summary = start_run(engine, config, chosen, scheduled_for=moment, now=utcnow())
    if send and summary.state == states.RUN_QUEUED:
        summary = _drain_run(engine, config, summary.run_id)
    if as_json:
        print_json(_run_json(summary))
        return
    _print_run(summary, config.settings.engine.currency)


def event_command(
    name: str = typer.Argument(..., help="the event's name, e.g. cart_abandoned"),
    customer: str = typer.Option(..., "--customer", help="#id, external id, email or phone"),
    at: str | None = typer.Option(None, "--at", help="when it happened (default now)"),
    data: str | None = typer.Option(None, "--data", help="JSON object, e.g. '{\"cart\": 4200}'"),
    key: str | None = typer.Option(None, "--key", help="idempotency key: the same key is recorded once"),
    source: str = typer.Option("cli", "--source", help="who reports it"),
) -> None:
    """Record a custom event that campaigns with on_event fire on.

    Example: crm event cart_abandoned --customer anna@example.ru --data '{"cart": 4200}'
    """
    config = state.config()
    engine = state.engine(config)
    payload = {}
    if data is not None:
        try:
            payload = json.loads(data)
        except json.JSONDecodeError as exc:
            raise ConfigValueError("--data", "data", f"not JSON: {exc.msg}") from exc
        if not isinstance(payload, dict):
            raise ConfigValueError("--data", "data", "must be a JSON object ({...})")
    recorded = record_event(
        engine,
        find_customer_id(engine, customer),
        name,
        occurred_at=parse_time(at, config.settings.engine.timezone),
        data=payload,
        source=source,
        key=key,
    )
    verb = "recorded" if recorded.created else "already recorded"
    console.print(f"{verb}: event {recorded.id} {recorded.name} for customer {recorded.customer_id}")


def runs_command(
    campaign: str | None = typer.Argument(None, help="one campaign's runs (default: every campaign's)"),
    limit: int = typer.Option(20, "--limit", min=1, max=10_000, help="how many runs, newest first"),
    as_json: bool = typer.Option(False, "--json", help="print as JSON"),
) -> None:
    """List campaign runs, newest first: id, campaign, when due, state and rows per state.

    The ids are what crm resend-failed RUN and crm worker --run RUN take.

    Example: crm runs
    Example: crm runs winback --limit 5
    """
    config = state.config()
    if campaign is not None:
        known = load_campaigns(config)
        if campaign not in known:
            raise NotFoundError("campaign", campaign, sorted(known))
    lines = list_runs(state.engine(config), campaign, limit=limit)
    if as_json:
        print_json(lines)
        return
    if not lines:
        console.print("no runs yet: crm plan shows what crm run would do", markup=False)
        return
    zone = zoneinfo.ZoneInfo(config.settings.engine.timezone)
    table = Table(title=f"runs ({zone.key})")
    for column in ("run", "campaign", "due", "state", "rows"):
        table.add_column(column, justify="right" if column in ("run",) else "left", overflow="fold")
    for line in lines:
        table.add_row(str(line.run_id), line.campaign, _due(line, zone), line.state, _rows(line))
    console.print(table)


def _due(line: RunLine, zone: zoneinfo.ZoneInfo) -> str:
    return f"{line.scheduled_for.astimezone(zone):%Y-%m-%d %H:%M} ({line.trigger})"


def _rows(line: RunLine) -> str:
    if not line.rows:
        return "-"
    parts = ", ".join(f"{state} {count:,}" for state, count in sorted(line.rows.items(), key=lambda i: -i[1]))
    return f"{line.total:,}: {parts}"


def register(app: typer.Typer) -> None:
    """Add ``crm plan``, ``crm run``, ``crm runs`` and ``crm event`` to ``app``."""
    app.command("plan")(plan_command)
    app.command("run")(run_command)
    app.command("runs")(runs_command)
    app.command("event")(event_command)
