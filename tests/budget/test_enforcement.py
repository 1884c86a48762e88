"""The runner never spends past a budget: campaign allocation, strategy allocation, approved total.

Every figure is computed by hand: emails cost 10.00, the campaigns of
strategy loyalty prepare for 150.00, and ten customers are ranked by what
they spent (customer n spent n x 100).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from engine.campaigns.loading import load_campaigns
from engine.config.checked import Config, load_config
from engine.errors import ConfigErrors
from engine.metrics.customer_metrics import refresh_metrics
from engine.models import CampaignRun, OutboxMessage
from engine.models import outbox as states
from engine.runs.planner import plan
from engine.runs.runner import start_run
from engine.segments.membership import refresh_segments
from tests.factories import add_customer, add_purchase, utc

OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]
RUN = CampaignRun.__table__  # type: ignore[attr-defined]

CONFIG = """
[engine]
timezone = "Europe/Moscow"

[channels.email]
unit_cost = 10

[segments.everyone]
rule = "true"
"""

JANUARY = utc(2027, 1, 11, 9)  # Monday 11 January 2027, 12:00 in Moscow
FEBRUARY = utc(2027, 2, 15, 9)  # Monday 15 February 2027, 12:00 in Moscow
APRIL = utc(2027, 4, 5, 9)  # Monday 5 April 2027: the second quarter, which has no budget file


def campaign(at: dt.datetime, *, preparation: int = 150, strategy: str = "loyalty", extra: str = "") -> str:
    return (
        f'name = "Test"\nsegment = "everyone"\nstrategy = "{strategy}"\nstart = 2027-01-01\n'
        f'at = {at.isoformat()}\npreparation_cost = {preparation}\nrank_by = "total_spent"\n{extra}\n'
        '[[steps]]\nchannel = "email"\ntemplate = "note.html.j2"\nsubject = "Hello"\n'
    )


def budget(approved: int, strategy: str = "", campaign: str = "") -> str:
    text = f'period = "2027-Q1"\napproved = {approved}\n'
    if strategy:
        text += f"\n[allocations.strategy]\n{strategy}\n"
    if campaign:
        text += f"\n[allocations.campaign]\n{campaign}\n"
    return text


def setup(
    db: Engine,
    write_config: Any,
    tmp_path: Path,
    campaigns: dict[str, str],
    budgets: dict[str, str],
    config_text: str = CONFIG,
) -> tuple[Config, list[int]]:
    """config.toml, campaigns, budgets/, and ten customers: customer n spent n x 100 (the last first)."""
    config = load_config(write_config(text=config_text))
    folder = tmp_path / "campaigns"
    (folder / "templates").mkdir(parents=True, exist_ok=True)
    (folder / "templates" / "note.html.j2").write_text("<p>Hi</p>", encoding="utf-8")
    for key, text in campaigns.items():
        (folder / f"{key}.toml").write_text(text, encoding="utf-8")
    (tmp_path / "budgets").mkdir(exist_ok=True)
    for name, text in budgets.items():
        (tmp_path / "budgets" / f"{name}.toml").write_text(text, encoding="utf-8")
    with db.begin() as connection:
        ids = [add_customer(connection, email=f"c{n}@example.com", consent_email=True) for n in range(10)]
        for n, customer in enumerate(ids):
            add_purchase(connection, customer, utc(2026, 12, 1), str(100 * (n + 1)))
    refresh_metrics(db, config, dt.date(2027, 1, 10), now=JANUARY)
    refresh_segments(db, config, now=JANUARY)
    return config, ids


def outcome(db: Engine, run_id: int) -> dict[int, tuple[str, str | None]]:
    with db.connect() as connection:
        rows = connection.execute(
            select(OUTBOX.c.customer_id, OUTBOX.c.state, OUTBOX.c.detail).where(OUTBOX.c.run_id == run_id)
        ).all()
    return {customer: (state, detail) for customer, state, detail in rows}


@pytest.mark.parametrize(
    ("budget_text", "queued", "reason"),
    [
        # 200 for the strategy - 150 preparation = 50: five emails at 10
        (
            budget(10_000, strategy="loyalty = 200"),
            5,
            "strategy loyalty allocation 200.00 for 2027-Q1 reached (committed 150.00)",
        ),
        # the campaign's 180 binds before the strategy's 500: 30 left, three emails
        (
            budget(10_000, strategy="loyalty = 500", campaign="first = 180"),
            3,
            "campaign first allocation 180.00 for 2027-Q1 reached (committed 150.00)",
        ),
        # no allocation: the approved total of 170 leaves 20, two emails
        (budget(170), 2, "approved total 170.00 for 2027-Q1 reached (committed 150.00)"),
    ],
)
def test_the_tightest_limit_of_the_period_keeps_the_highest_ranked(  # type: ignore[no-untyped-def]
    db, write_config, tmp_path, budget_text: str, queued: int, reason: str
) -> None:
    config, ids = setup(db, write_config, tmp_path, {"first": campaign(JANUARY)}, {"2027-Q1": budget_text})
    run = start_run(db, config, load_campaigns(config)["first"], scheduled_for=JANUARY, now=JANUARY)
    found = outcome(db, run.run_id)
    best = ids[-queued:]
    assert {c for c, (state, _) in found.items() if state == states.QUEUED} == set(best)
    assert {found[c] for c in ids if c not in best} == {(states.OVER_BUDGET, reason)}
    assert run.counts == {states.QUEUED: queued, states.OVER_BUDGET: 10 - queued}
    assert run.cost == Decimal(10 * queued) and run.detail is None


def test_a_later_campaign_of_the_strategy_finds_the_allocation_spent(db, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    campaigns = {"first": campaign(JANUARY), "second": campaign(FEBRUARY, preparation=0)}
    config, _ = setup(db, write_config, tmp_path, campaigns, {"2027-Q1": budget(10_000, "loyalty = 200")})
    loaded = load_campaigns(config)
    first = start_run(db, config, loaded["first"], scheduled_for=JANUARY, now=JANUARY)
    assert first.counts == {states.QUEUED: 5, states.OVER_BUDGET: 5}
    # 150 preparation of the first + its five queued emails (50) = 200: nothing left for the second
    second = start_run(db, config, loaded["second"], scheduled_for=FEBRUARY, now=FEBRUARY)
    reason = "strategy loyalty allocation 200.00 for 2027-Q1 reached (committed 200.00)"
    assert set(outcome(db, second.run_id).values()) == {(states.OVER_BUDGET, reason)}
    assert second.counts == {states.OVER_BUDGET: 10} and second.cost == 0
    assert second.detail == f"skipped: {reason}"
    # another strategy has its own allocation (none here): only the approved total limits it
    (tmp_path / "campaigns" / "third.toml").write_text(
        campaign(FEBRUARY, strategy="stimulation"), encoding="utf-8"
    )
    third = start_run(db, config, load_campaigns(config)["third"], scheduled_for=FEBRUARY, now=FEBRUARY)
    assert third.counts == {states.QUEUED: 10}


def test_a_day_outside_every_budget_period_is_not_limited(db, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config, _ = setup(
        db, write_config, tmp_path, {"spring": campaign(APRIL)}, {"2027-Q1": budget(0, "loyalty = 0")}
    )
    run = start_run(db, config, load_campaigns(config)["spring"], scheduled_for=APRIL, now=APRIL)
    assert run.counts == {states.QUEUED: 10} and run.cost == Decimal(100)


def test_the_plan_shows_the_same_trims_and_writes_nothing(db, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    campaigns = {"first": campaign(JANUARY), "second": campaign(FEBRUARY, preparation=0)}
    config, _ = setup(db, write_config, tmp_path, campaigns, {"2027-Q1": budget(10_000, "loyalty = 200")})
    planned = plan(db, config, at=JANUARY - dt.timedelta(hours=1), days=40)
    assert [(r.campaign, r.steps[0].states) for r in planned.runs] == [
        ("first", {states.QUEUED: 5, states.OVER_BUDGET: 5}),
        ("second", {states.OVER_BUDGET: 10}),
    ]
    assert planned.runs[1].detail is not None and planned.runs[1].detail.startswith(
        "skipped: strategy loyalty"
    )
    assert planned.cost == Decimal(150 + 50)
    with db.connect() as connection:
        assert connection.execute(select(func.count()).select_from(RUN)).scalar_one() == 0
        assert connection.execute(select(func.count()).select_from(OUTBOX)).scalar_one() == 0
    loaded = load_campaigns(config)
    ran = [start_run(db, config, loaded[key], scheduled_for=at, now=at) for key, at in
           (("first", JANUARY), ("second", FEBRUARY))]  # fmt: skip
    assert [r.steps[0].states for r in ran] == [r.steps[0].states for r in planned.runs]


def test_an_invalid_budget_file_fails_the_run_rather_than_spend_unchecked(db, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config, _ = setup(
        db, write_config, tmp_path, {"first": campaign(JANUARY)}, {"2027-Q1": "approved = -1\n"}
    )
    with pytest.raises(ConfigErrors, match=r"2027-Q1\.toml"):
        start_run(db, config, load_campaigns(config)["first"], scheduled_for=JANUARY, now=JANUARY)
    with db.connect() as connection:
        assert connection.execute(select(func.count()).select_from(RUN)).scalar_one() == 0
        assert connection.execute(select(func.count()).select_from(OUTBOX)).scalar_one() == 0


def test_the_scheduler_job_logs_a_broken_budget_file_and_fires_nothing(
    db, write_config, tmp_path, caplog
) -> None:  # type: ignore[no-untyped-def]
    from engine.scheduler.campaign_jobs import fire_campaign

    config, _ = setup(
        db, write_config, tmp_path, {"first": campaign(JANUARY)}, {"2027-Q1": 'period = "2027-Q1"\n'}
    )
    caplog.set_level("ERROR", logger="engine.scheduler")
    fire_campaign(str(config.path), "first")
    assert "campaign first not run: the configuration has errors" in caplog.text
    assert "2027-Q1.toml" in caplog.text and "approved: required field is missing" in caplog.text
    with db.connect() as connection:
        assert connection.execute(select(func.count()).select_from(RUN)).scalar_one() == 0


def test_cents_add_up_exactly_on_both_databases(db, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # 0.10 + 0.10 + 0.10 is 0.30000000000000004 in binary floating point (SQLite's sums)
    text = campaign(JANUARY, preparation=0, extra="budget = 0.30")
    cheap = CONFIG.replace("unit_cost = 10", "unit_cost = 0.10")
    config, ids = setup(db, write_config, tmp_path, {"first": text}, {}, config_text=cheap)
    run = start_run(db, config, load_campaigns(config)["first"], scheduled_for=JANUARY, now=JANUARY)
    assert {c for c, (state, _) in outcome(db, run.run_id).items() if state == states.QUEUED} == set(ids[-3:])
    assert run.counts == {states.QUEUED: 3, states.OVER_BUDGET: 7} and run.cost == Decimal("0.30")
