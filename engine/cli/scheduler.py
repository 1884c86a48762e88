"""``crm scheduler`` and ``crm scheduler --reload``."""

from __future__ import annotations

import datetime as dt
import logging
import sys
from zoneinfo import ZoneInfo

import typer

from engine.cli.common import console, print_json, state
from engine.errors import ConfigValueError
from engine.scheduler import SchedulerOptions, reload_scheduler, run_scheduler
from engine.settings import parse_duration


def _options(trigger_every: str | None, anniversary_at: str | None) -> SchedulerOptions:
    """The options given, else ``[scheduler]`` of config.toml."""
    section = state.config().settings.scheduler
    every, at = section.trigger_interval, section.anniversary_at
    if trigger_every is not None:
        try:
            every = parse_duration(trigger_every)
        except ValueError as exc:
            raise ConfigValueError("--trigger-every", "", str(exc)) from exc
    if anniversary_at is not None:
        try:
            at = dt.time.fromisoformat(anniversary_at)
        except ValueError as exc:
            raise ConfigValueError(
                "--anniversary-at", "", f"{anniversary_at!r} is not a time (e.g. 06:00)"
            ) from exc
    return SchedulerOptions(trigger_every=every, anniversary_at=at)


def _log_to_stderr(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    for name, level in (
        ("engine", logging.INFO),
        ("apscheduler", logging.INFO if verbose else logging.WARNING),
    ):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(level)


def scheduler(
    reload: bool = typer.Option(
        False,
        "--reload",
        help="reconcile the jobs with the campaign files, let the running scheduler apply it, exit",
    ),
    once: bool = typer.Option(False, "--once", help="fire what is due now (or expire it), then exit"),
    trigger_every: str | None = typer.Option(
        None,
        "--trigger-every",
        help="how often segment-entry and event campaigns look for news (default: [scheduler] in config)",
    ),
    anniversary_at: str | None = typer.Option(
        None,
        "--anniversary-at",
        help="when anniversary campaigns run each day, business time (default: [scheduler] in config)",
    ),
    wait: str = typer.Option(
        "1m", "--wait", help="with --reload: how long to wait for the running scheduler"
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="also log each job APScheduler runs"),
    as_json: bool = typer.Option(False, "--json", help="with --reload: print the changes as JSON"),
) -> None:
    """Fire campaigns on their schedules: a long-running process; a second one waits as a hot standby.

    Jobs live in the database and are reconciled with campaigns/*.toml at start
    and on --reload (added, changed, removed). After an outage a firing later
    than the campaign's max_lateness is recorded as expired, not sent.
    SIGTERM or Ctrl-C stops it once running jobs finish.

    Example: crm scheduler
    Example: crm scheduler --reload
    Example: crm scheduler --once
    """
    options = _options(trigger_every, anniversary_at)
    if reload:
        config = state.config()
        outcome = reload_scheduler(config.path, options=options, wait=parse_duration(wait).total_seconds())
        if as_json:
            print_json(outcome)
            return
        who = (
            f"applied by the running scheduler ({outcome.applied_by})"
            if outcome.running
            else "applied to the job store (no scheduler is running)"
        )
        if outcome.superseded_by is not None:
            who += f"; a newer reload ({outcome.superseded_by}) was applied in its place"
        console.print(f"reload {outcome.request} {who}", soft_wrap=True)
        if outcome.note:
            console.print(outcome.note, soft_wrap=True)
        zone = ZoneInfo(config.settings.engine.timezone)
        for line in outcome.result.lines(zone):
            console.print(line, soft_wrap=True, markup=False)
        return
    _log_to_stderr(verbose)
    run_scheduler(state.config_path, options=options, once=once)


def register(app: typer.Typer) -> None:
    """Add ``crm scheduler`` to ``app``."""
    app.command("scheduler")(scheduler)
