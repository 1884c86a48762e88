"""`crm plan` shows what `crm run` does, writes nothing, diffs against git; events trigger runs."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.campaigns.loading import load_campaigns
from engine.config.checked import load_config
from engine.customers.events import record_event
from engine.errors import IdempotencyConflictError
from engine.models import CampaignRun, OutboxMessage
from engine.models import outbox as states
from engine.runs.planner import plan
from engine.runs.runner import start_run
from engine.segments.membership import refresh_segments
from tests.cli.test_cli import crm
from tests.factories import add_customer, utc
from tests.runs.test_runner import CONFIG, EMAIL_STEP, NOON, campaign, setup

RUN = CampaignRun.__table__  # type: ignore[attr-defined]
OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]

CALL_STEP = '[[steps]]\nchannel = "call"\nscript = "call.md"\nwait = "3d"\nonly_if = "not responded"\n'


def weekly(extra: str = "") -> str:
    return (
        'name = "Weekly"\nsegment = "everyone"\nstrategy = "loyalty"\nstart = 2026-01-01\n'
        f'schedule = "0 12 * * MON"\npreparation_cost = 100\n{extra}\n{EMAIL_STEP}{CALL_STEP}'
    )


def customers(db, n: int = 30) -> None:  # type: ignore[no-untyped-def]
    with db.begin() as connection:
        for k in range(n):
            add_customer(
                connection,
                email=f"c{k}@example.com",
                consent_email=k % 3 != 0,
                phone=f"+7916100{k:04d}",
                consent_call=k % 2 == 0,
            )


def test_plan_is_what_the_run_does_and_writes_nothing(db, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = setup(write_config, tmp_path, {"weekly": weekly("control_group = 0.2")})
    customers(db)
    refresh_segments(db, config, now=NOON)
    planned = plan(db, config, at=NOON - dt.timedelta(hours=1), days=14)
    assert [r.scheduled_for for r in planned.runs] == [NOON, NOON + dt.timedelta(days=7)]
    with db.connect() as connection:
        assert connection.execute(select(func.count()).select_from(RUN)).scalar_one() == 0
        assert connection.execute(select(func.count()).select_from(OUTBOX)).scalar_one() == 0
    first = planned.runs[0]
    ran = start_run(db, config, load_campaigns(config)["weekly"], scheduled_for=NOON, now=NOON)
    assert first.steps[0].states == ran.steps[0].states
    assert first.steps[0].cost == ran.steps[0].cost
    # the call step is projected on the emails as if sent, nobody having responded yet
    assert first.steps[1].channel == "call"
    assert first.steps[1].audience == ran.steps[0].states[states.QUEUED]
    assert set(first.steps[1].states) <= {states.QUEUED, states.NO_CONSENT}
    assert first.preparation_cost == Decimal(100) and planned.runs[1].preparation_cost == 0
    # the second week's email hits the 1/week cap? No: it is the next local week, so it is queued again
    assert planned.runs[1].steps[0].states.get(states.QUEUED) == first.steps[0].states[states.QUEUED]


def test_plan_cli_json_and_diff_against_git(db, db_url: str, write_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = setup(write_config, tmp_path, {"weekly": weekly()})
    customers(db)
    refresh_segments(db, config, now=NOON)
    env = {"CRM_CONFIG": str(config.path), "CRM_DATABASE_URL": db_url}
    shown = crm("plan", "--at", "2026-03-02T11:00", "--days", "1", "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert [r["campaign"] for r in data["runs"]] == ["weekly"]
    assert data["runs"][0]["steps"][0]["states"]["no_consent"] == 10

    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*git, "add", "config.toml", "campaigns"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "plan"], cwd=tmp_path, check=True)
    same = crm("plan", "--at", "2026-03-02T11:00", "--diff", env=env)
    assert same.returncode == 0 and "no change against HEAD" in same.stdout
    (tmp_path / "campaigns" / "weekly.toml").write_text(weekly("control_group = 0.5"), encoding="utf-8")
    changed = crm("plan", "--at", "2026-03-02T11:00", "--diff", "--json", env=env)
    assert changed.returncode == 0, changed.stderr
    diff = json.loads(changed.stdout)
    email = next(line for line in diff["lines"] if line["channel"] == "email")
    assert email["contacts_before"] == 20 and email["contacts_after"] < 20
    assert Decimal(diff["cost_after"]) < Decimal(diff["cost_before"])
    outside = crm("plan", "--diff", "--rev", "no-such-rev", env=env)
    assert outside.returncode == 1 and "no-such-rev" in outside.stderr


def test_event_campaign_contacts_each_event_once(db, db_url: str, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    text = (
        'name = "Cart"\nsegment = "everyone"\nstrategy = "stimulation"\nstart = 2026-01-01\n'
        f'on_event = "cart_abandoned"\nmax_lateness = "1d"\n{EMAIL_STEP}'
    )
    config = setup(write_config, tmp_path, {"cart": text})
    with db.begin() as connection:
        anna = add_customer(connection, email="anna@example.com", consent_email=True, external_id="A1")
        boris = add_customer(connection, email="boris@example.com", consent_email=True)
    refresh_segments(db, config, now=utc(2026, 1, 1))
    env = {"CRM_CONFIG": str(config.path), "CRM_DATABASE_URL": db_url}
    result = crm(
        "event", "cart_abandoned", "--customer", "A1", "--at", "2026-03-02T10:00", "--key", "k1", env=env
    )
    assert result.returncode == 0, result.stderr
    again = crm(
        "event", "cart_abandoned", "--customer", "A1", "--at", "2026-03-02T10:00", "--key", "k1", env=env
    )
    assert "already recorded" in again.stdout
    with pytest.raises(IdempotencyConflictError, match="recorded for a different event"):
        record_event(db, boris, "cart_abandoned", key="k1", source="cli")
    # older than max_lateness (1d) when the campaign first polls: stale, never acted on
    record_event(db, boris, "cart_abandoned", occurred_at=NOON - dt.timedelta(days=3))
    cart = load_campaigns(load_config(config.path))["cart"]
    first = start_run(db, config, cart, scheduled_for=NOON, now=NOON)
    assert first.counts == {states.QUEUED: 1}
    record_event(db, boris, "cart_abandoned", occurred_at=NOON + dt.timedelta(minutes=2))
    second = start_run(db, config, cart, scheduled_for=NOON + dt.timedelta(minutes=5), now=NOON)
    with db.connect() as connection:
        who = (
            connection.execute(select(OUTBOX.c.customer_id).where(OUTBOX.c.run_id == second.run_id))
            .scalars()
            .all()
        )
    assert who == [boris] and anna != boris
    bad = crm("event", "Cart Abandoned!", "--customer", "A1", env=env)
    assert bad.returncode == 1 and "is not an event name" in bad.stderr


def test_run_by_hand_fires_the_latest_due_firing_once(db, db_url: str, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = setup(write_config, tmp_path, {"hello": campaign(), "weekly": weekly()})
    customers(db, 4)
    refresh_segments(db, config, now=NOON)
    env = {"CRM_CONFIG": str(config.path), "CRM_DATABASE_URL": db_url}
    first = crm("run", "hello", "--no-send", "--json", env=env)
    assert first.returncode == 0, first.stderr
    ran = json.loads(first.stdout)
    # the one-off time has long passed: later than max_lateness, so it is recorded expired, not sent
    assert ran["state"] == states.RUN_EXPIRED
    now = crm("run", "weekly", "--now", "--no-send", "--json", env=env)
    assert json.loads(now.stdout)["counts"]["queued"] == 2
    twice = crm("run", "weekly", "--now", "--no-send", env=env)  # the same business day: refused
    assert twice.returncode == 1 and "weekly already ran today" in twice.stderr and "--again" in twice.stderr
    again = crm("run", "weekly", "--now", "--again", "--no-send", "--json", env=env)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["run_id"] != json.loads(now.stdout)["run_id"]
    unknown = crm("run", "weekyl", env=env)
    assert unknown.returncode == 1 and "unknown campaign 'weekyl'" in unknown.stderr
    assert CONFIG in config.path.read_text()
