"""The budget plan and actual of a period, hand-computed, on both databases.

The customers (108 members of segment ``everyone``):

* 101 reachable by email (consent, address, not suppressed); 50 of them also by phone;
* 4 without email consent, 3 of them reachable by phone;
* 2 without an email address; 1 whose address is suppressed.

Campaign ``weekly``: Mondays 10:00 in Q1 2027 (13 runs), control 10 %, preparation 15000,
an email (0.40, 1 per client) then a call (60.00, 2 per client).

* email: members 108, unreachable 7, control floor(0.10 x 101 + 1/2) = 10, clients 91:
  13 x 91 x 1 x 0.40 = 473.20, + 15000 preparation = 15473.20;
* call: reachable 53, unreachable 55, control floor(0.10 x 50 + 1/2) = 5 (the control group's
  share of those reachable on both channels), clients 48: 13 x 48 x 2 x 60 = 74880.00.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event

from engine.budget.budget_files import load_budgets
from engine.budget.contact_matrix import budget_report, split
from engine.budget.what_if import apply_overrides
from engine.campaigns.loading import load_campaigns
from engine.config.checked import Config
from engine.contact_policy.suppression import suppress
from engine.customers.events import record_event
from engine.errors import ConfigErrors, ConfigValueError
from engine.models import OutboxMessage
from engine.models import outbox as states
from engine.outbox.worker import drain
from engine.reporting.periods import Period
from engine.runs.runner import start_run
from engine.segments.membership import refresh_segments
from tests.factories import add_customer, utc
from tests.runs.test_runner import setup as campaign_setup

OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]
Q1 = Period.parse("2027-Q1")
NOW = utc(2026, 12, 20, 9)

CONFIG = """
[engine]
timezone = "Europe/Moscow"

[links]
secret = "budget-tests"

[channels.email]
unit_cost = 0.40
maildir = "outbox/maildir"

[channels.call]
unit_cost = 60
capacity_per_day = 1000
folder = "outbox/calls"

[contact_policy]
quiet_hours = "21:00-09:00"

[segments.everyone]
rule = "true"
"""

STEPS = """
[[steps]]
channel = "email"
template = "note.html.j2"
subject = "Hello"

[[steps]]
channel = "call"
wait = "7d"
script = "call.md"
contacts_per_client = 2
"""


def weekly(extra: str = "") -> str:
    return (
        'name = "Weekly"\nsegment = "everyone"\nstrategy = "loyalty"\nstart = 2027-01-01\nend = 2027-03-31\n'
        f'schedule = "0 10 * * MON"\ncontrol_group = 0.10\npreparation_cost = 15000\n{extra}\n{STEPS}'
    )


def setup(write_config: Any, tmp_path: Path, campaigns: dict[str, str], extra: str = "") -> Config:
    return campaign_setup(write_config, tmp_path, campaigns, extra, config=CONFIG)


def customers(db: Engine) -> None:
    with db.begin() as connection:
        for n in range(101):
            phone = {"phone": f"+7916000{n:04d}", "consent_call": True} if n < 50 else {}
            add_customer(
                connection, first_name=f"C{n}", email=f"c{n}@example.com", consent_email=True, **phone
            )
        for n in range(4):
            phone = {"phone": f"+7926000{n:04d}", "consent_call": True} if n < 3 else {}
            add_customer(connection, email=f"nc{n}@example.com", consent_email=False, **phone)
        for _ in range(2):
            add_customer(connection, consent_email=True)
        add_customer(connection, email="gone@example.com", consent_email=True)
    suppress(db, "email", "gone@example.com", reason="unsubscribe")


def prepared(
    db: Engine, write_config: Any, tmp_path: Path, campaigns: dict[str, str], extra: str = ""
) -> Config:
    config = setup(write_config, tmp_path, campaigns, extra)
    customers(db)
    refresh_segments(db, config, now=NOW)
    return config


def test_plan_of_a_quarter_by_hand(db, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = prepared(db, write_config, tmp_path, {"weekly": weekly()})
    report = budget_report(db, config, period=Q1, now=NOW)
    email, call = report.lines
    assert (email.runs, email.members, email.unreachable, email.control, email.clients) == (
        13,
        108,
        7,
        10,
        91,
    )
    assert email.contacts == 1183 and email.cost == Decimal("15473.20")
    assert email.preparation == 15000 and call.preparation == 0
    assert (call.runs, call.unreachable, call.control, call.clients) == (13, 55, 5, 48)
    assert call.contacts == 13 * 48 * 2 and call.cost == Decimal("74880.00")
    assert report.plan_total == Decimal("90353.20")
    assert email.price_source == "channels.email.unit_cost"
    matrix = report.matrix()
    assert matrix.cell("everyone", "call").plan_cost == Decimal("74880.00")
    assert matrix.preparation["everyone"] == (Decimal(15000), Decimal(0))
    by_strategy = {t.key: t for t in report.totals("strategy")}
    assert by_strategy["loyalty"].plan == Decimal("90353.20") and by_strategy["loyalty"].actual == 0
    data = report.as_dict()
    assert data["schema"] == "crm-engine/budget/1"
    assert data["totals"]["plan"] == "90353.20" and data["lines"][1]["contacts"] == "1248"
    assert {"lines", "matrix", "totals", "approved", "actual", "variance"} <= set(data)


def test_price_change_mid_quarter_splits_the_runs(db, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    prices = """
[[channels.call.prices]]
from = 2027-02-15
unit_cost = 65
"""
    config = prepared(db, write_config, tmp_path, {"weekly": weekly()}, prices)
    report = budget_report(db, config, period=Q1, now=NOW)
    calls = [line for line in report.lines if line.channel == "call"]
    # Mondays before 15 February: 4, 11, 18, 25 January, 1 and 8 February
    assert [(c.runs, c.unit_cost, c.price_source) for c in calls] == [
        (6, Decimal(60), "channels.call.unit_cost"),
        (7, Decimal(65), "channels.call.prices[0]"),
    ]
    assert calls[0].price_until == dt.date(2027, 2, 14) and calls[1].price_from == dt.date(2027, 2, 15)
    assert sum(c.cost for c in calls) == 48 * 2 * (6 * 60 + 7 * 65) == 78240


def test_segment_and_campaign_prices_win_over_the_channel(db, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    prices = """
[[channels.email.prices]]
segment = "everyone"
unit_cost = 0.50

[[channels.email.prices]]
campaign = "weekly"
from = 2027-03-01
unit_cost = 0.30
"""
    config = prepared(db, write_config, tmp_path, {"weekly": weekly()}, prices)
    email = [line for line in budget_report(db, config, period=Q1).lines if line.channel == "email"]
    # Mondays from 1 March: 1, 8, 15, 22, 29
    assert [(line.runs, line.unit_cost) for line in email] == [(8, Decimal("0.50")), (5, Decimal("0.30"))]


def test_control_of_ten_percent_on_101_is_ten_and_the_runner_agrees(db, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    once = weekly().replace('schedule = "0 10 * * MON"', "at = 2027-01-11T12:00:00+03:00")
    config = prepared(db, write_config, tmp_path, {"once": once})
    report = budget_report(db, config, period=Q1)
    email = report.lines[0]
    assert (email.runs, email.control, email.clients) == (1, 10, 91)
    campaign = load_campaigns(config)["once"]
    summary = start_run(db, config, campaign, scheduled_for=utc(2027, 1, 11, 9), now=utc(2027, 1, 11, 9))
    counts = summary.steps[0].states
    assert counts[states.CONTROL] == email.control
    assert counts[states.QUEUED] == email.clients
    assert (
        counts[states.NO_CONSENT] + counts[states.NO_ADDRESS] + counts[states.SUPPRESSED] == email.unreachable
    )


def test_actual_is_contacts_at_the_price_when_sent_plus_preparation(db, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    once = weekly('max_lateness = "3d"').replace(
        'schedule = "0 10 * * MON"', "at = 2027-01-08T12:00:00+03:00"
    )
    prices = """
[[channels.email.prices]]
from = 2027-01-09
unit_cost = 0.45
"""
    config = prepared(db, write_config, tmp_path, {"once": once}, prices)
    campaign = load_campaigns(config)["once"]
    start_run(db, config, campaign, scheduled_for=utc(2027, 1, 8, 9), now=utc(2027, 1, 8, 9))
    sent = drain(db, config, only=["email"], until_idle=True, clock=lambda: utc(2027, 1, 9, 9))
    assert sent.sent == 91
    report = budget_report(db, config, period=Q1)
    (done,) = report.actual
    assert (done.campaign, done.step, done.clients, done.contacts) == ("once", 0, 91, 91)
    assert done.contact_cost == Decimal("40.95")  # 91 x 0.45: the price on the day of sending
    assert done.preparation == 15000 and report.actual_total == Decimal("15040.95")
    # the plan priced the same contacts at the materialising day's price: the variance says so
    assert report.total().against_plan == report.actual_total - report.plan_total
    assert budget_report(db, config, period=Period.parse("2027-Q2")).actual == []


def test_triggered_campaigns_are_planned_from_expected_or_observed(db, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    on_event = (
        'name = "Thanks"\nsegment = "everyone"\nstrategy = "stimulation"\nstart = 2026-10-01\n'
        'on_event = "order.delivered"\ncontrol_group = 0.10\n'
        '[[steps]]\nchannel = "email"\ntemplate = "note.html.j2"\nsubject = "Thanks"\n'
    )
    expected = on_event.replace('"Thanks"\n', '"Thanks"\nexpected_audience = 40\n', 1)
    config = prepared(db, write_config, tmp_path, {"expected": expected, "observed": on_event})
    report = budget_report(db, config, period=Q1)
    (line,) = [line for line in report.lines if line.campaign == "expected"]
    # 40 a month x 3 months = 120 members, control floor(12 + 1/2) = 12, 108 x 0.40
    assert (line.members, line.control, line.clients, line.runs) == (120, 12, 108, 1)
    assert line.cost == Decimal("43.20") and line.basis.startswith("expected_audience 40/month")
    assert any("observed" in note and "expected_audience" in note for note in report.notes)

    customer_ids = list(range(1, 21))
    for n, customer in enumerate(customer_ids):
        record_event(db, customer, "order.delivered", key=f"d{n}", occurred_at=utc(2026, 11, 2, 8, 30))
    campaign = load_campaigns(config)["observed"]
    start_run(db, config, campaign, scheduled_for=utc(2026, 11, 2, 9), now=utc(2026, 11, 2, 9))
    report = budget_report(db, config, period=Q1)
    (line,) = [line for line in report.lines if line.campaign == "observed"]
    # 20 seen in 2026-Q4, all reachable; Q1 has as many months: x 1
    assert (line.members, line.control, line.clients) == (20, 2, 18)
    assert line.basis.startswith("observed 2026-Q4: 20 in 1 runs")


def test_the_plan_is_one_grouped_query_whatever_the_number_of_campaigns(db, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    def statements(count: int) -> int:
        campaigns = {f"c{n}": weekly() for n in range(count)}
        config = setup(write_config, tmp_path, campaigns)
        for old in (tmp_path / "campaigns").glob("c*.toml"):
            if old.stem not in campaigns:
                old.unlink()
        seen: list[str] = []

        def count_statement(*args: Any) -> None:
            seen.append(args[2])

        event.listen(db, "before_cursor_execute", count_statement)
        try:
            report = budget_report(db, config, period=Q1)
        finally:
            event.remove(db, "before_cursor_execute", count_statement)
        assert len({line.campaign for line in report.lines}) == count
        return len(seen)

    customers(db)
    refresh_segments(db, setup(write_config, tmp_path, {}), now=NOW)
    assert statements(1) == statements(12)


def test_what_if_changes_nothing_on_disk(db, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = prepared(db, write_config, tmp_path, {"weekly": weekly()})
    campaigns = load_campaigns(config)
    before = (tmp_path / "campaigns" / "weekly.toml").read_text(encoding="utf-8")
    changed = apply_overrides(
        config,
        campaigns,
        load_budgets(config, campaigns),
        ["channels.call.unit_cost=55", "campaigns.weekly.contacts_per_client=2"],
    )
    report = budget_report(
        db,
        changed.config,
        period=Q1,
        campaigns=changed.campaigns,
        budgets=changed.budgets,
        overrides=changed.applied,
    )
    email, call = report.lines
    assert email.contacts_per_client == 2 and email.cost == Decimal(13 * 91 * 2) * Decimal("0.40") + 15000
    assert call.unit_cost == 55 and call.cost == 13 * 48 * 2 * 55
    assert report.overrides == ["channels.call.unit_cost=55", "campaigns.weekly.contacts_per_client=2"]
    assert report.fingerprint != budget_report(db, config, period=Q1).fingerprint
    assert (tmp_path / "campaigns" / "weekly.toml").read_text(encoding="utf-8") == before
    with pytest.raises(ConfigValueError, match=r"channels.call.unit_cost: .*greater than or equal to 0"):
        apply_overrides(config, campaigns, load_budgets(config), ["channels.call.unit_cost=-1"])
    with pytest.raises(ConfigValueError, match="only channels"):
        apply_overrides(config, campaigns, load_budgets(config), ["engine.timezone=UTC"])


BUDGET = """period = "2027-Q1"
approved = 100000
approved_by = "M. Ivanova, CFO"
approved_at = 2026-12-15

[allocations.strategy]
loyalty = 95000
stimulation = 5000

[allocations.campaign]
weekly = 92000
"""


def test_approved_against_plan_and_budget_file_errors(db, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = prepared(db, write_config, tmp_path, {"weekly": weekly()})
    budgets = tmp_path / "budgets"
    budgets.mkdir()
    (budgets / "2027-Q1.toml").write_text(BUDGET, encoding="utf-8")
    report = budget_report(db, config, period=Q1)
    loyalty = next(t for t in report.totals("strategy") if t.key == "loyalty")
    assert loyalty.approved == 95000 and loyalty.headroom == Decimal("4646.80")
    assert report.total().approved == 100000
    weekly_total = next(t for t in report.totals("campaign") if t.key == "weekly")
    assert weekly_total.approved == 92000 and weekly_total.headroom == Decimal("1646.80")
    assert report.as_dict()["approved"]["approved_by"] == "M. Ivanova, CFO"

    (budgets / "january.toml").write_text('period = "2027-01"\napproved = 1\n', encoding="utf-8")
    (budgets / "wrong.toml").write_text(
        'period = "2027-Q2"\napproved = 1000\n\n[allocations.strategy]\nloyalty = 2000\n\n'
        "[allocations.campaign]\nweekly = 500\nweakly = 10\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigErrors) as caught:
        load_budgets(config, load_campaigns(config))
    text = str(caught.value)
    assert "january.toml:1 period: 2027-01 (2027-01-01..2027-01-31) overlaps 2027-Q1" in text
    assert "wrong.toml:4 allocations.strategy: strategy allocations add up to 2000" in text
    assert (
        "wrong.toml:9 allocations.campaign.weakly: unknown campaign 'weakly' (did you mean weekly?)" in text
    )


def test_split_keeps_the_total() -> None:
    assert split(10, [1, 1, 1]) == [3, 4, 3]
    assert sum(split(7, [31, 28, 31])) == 7 and split(5, [0, 0]) == [0, 0]
