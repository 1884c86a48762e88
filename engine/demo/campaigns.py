"""The demo's campaign day: the example campaigns fired and sent end to end, into Maildir and call lists.

The example campaigns (``engine/defaults/campaigns``) are copied into the
workspace with their dates moved so they are active on the demo's day. Both
fire at 10:00 business time; the day is then simulated: each time contacts
become due (quiet hours end in a customer's zone, a call day begins) a worker
drains the outbox as it would at that moment, until the end of the business
day. Calls beyond the call centre's daily capacity stay queued for the
following days, as they would.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import zoneinfo
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, func, literal, select

from engine.campaigns import load_campaigns
from engine.clock import local_instant
from engine.config import Config, load_config
from engine.models import OUTBOX
from engine.models import outbox as states
from engine.outbox import drain
from engine.runs import RunSummary, advance, run_summary, start_run
from engine.sql import UtcDateTime

EXAMPLES = Path(__file__).parents[1] / "defaults" / "campaigns"
DEMO_CAMPAIGNS = ("winback", "churn_call")
FIRE_AT = dt.time(10, 0)


@dataclass(frozen=True)
class DemoCampaigns:
    """What the demo's campaign day did."""

    fired_at: dt.datetime
    runs: list[RunSummary]
    maildir: Path
    emails: int
    call_lists: list[Path]


def copy_examples(folder: Path, day: dt.date) -> Path:
    """The example campaigns into ``folder/campaigns``, active on ``day``."""
    target = folder / "campaigns"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(EXAMPLES, target)
    for path in target.glob("*.toml"):
        text = path.read_text(encoding="utf-8")
        found = re.search(r"^start = (\d{4}-\d{2}-\d{2})", text, flags=re.M)
        if found and dt.date.fromisoformat(found.group(1)) > day:
            text = text.replace(found.group(0), f"start = {day.replace(day=1)}", 1)
        ending = re.search(r"^end = (\d{4}-\d{2}-\d{2})", text, flags=re.M)
        if ending and dt.date.fromisoformat(ending.group(1)) < day + dt.timedelta(days=90):
            text = text.replace(ending.group(0), f"end = {day + dt.timedelta(days=90)}", 1)
        path.write_text(text, encoding="utf-8")
    return target


def _next_due(engine: Engine, before: dt.datetime) -> dt.datetime | None:
    with engine.connect() as connection:
        found: dt.datetime | None = connection.execute(
            select(func.min(OUTBOX.c.scheduled_at)).where(
                OUTBOX.c.state == states.QUEUED, OUTBOX.c.scheduled_at < literal(before, UtcDateTime())
            )
        ).scalar()
    return found


def simulate_sending_day(engine: Engine, config: Config, day: dt.date) -> None:
    """Send what falls due on ``day``, each batch at the moment it falls due, then advance the runs.

    Later steps whose wait is over are queued by ``advance`` at the start of
    the day, so a follow-up call goes on that day's call list.
    """
    zone = zoneinfo.ZoneInfo(config.settings.engine.timezone)
    advance(engine, config, now=local_instant(day, dt.time(0), zone))
    end_of_day = local_instant(day + dt.timedelta(days=1), dt.time(0), zone)
    while (due := _next_due(engine, end_of_day)) is not None:
        moment = due

        def clock(moment: dt.datetime = moment) -> dt.datetime:
            return moment

        drain(engine, config, until_idle=True, clock=clock)
        if _next_due(engine, end_of_day) == due:
            break  # nothing moved: whatever waits is not for today
    advance(engine, config, now=end_of_day)


def run_campaign_day(engine: Engine, config: Config, day: dt.date) -> DemoCampaigns:
    """Fire the demo campaigns at 10:00 business time on ``day`` and simulate the day's sending."""
    copy_examples(config.path.parent, day)
    config = load_config(config.path)
    campaigns = load_campaigns(config)
    zone = zoneinfo.ZoneInfo(config.settings.engine.timezone)
    fired = local_instant(day, FIRE_AT, zone)
    run_ids = [
        start_run(engine, config, campaigns[key], scheduled_for=fired, now=fired).run_id
        for key in DEMO_CAMPAIGNS
    ]
    simulate_sending_day(engine, config, day)
    with engine.connect() as connection:
        runs = [run_summary(connection, run_id) for run_id in run_ids]
    email = config.settings.channels.email
    maildir = (config.path.parent / email.maildir).resolve()
    emails = sum(1 for _ in (maildir / "new").iterdir()) if (maildir / "new").is_dir() else 0
    calls = (config.path.parent / config.settings.channels.call.folder).resolve()
    lists = sorted(calls.glob("*.csv")) if calls.is_dir() else []
    return DemoCampaigns(fired, runs, maildir, emails, lists)
