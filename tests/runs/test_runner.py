"""Runs: the audience materialised into the outbox with every state, on both databases."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, update

from engine.campaigns.control_group import CONTROL_HASH, control_size
from engine.campaigns.loading import load_campaigns
from engine.config.checked import Config, load_config
from engine.contact_policy.suppression import suppress
from engine.models import ContactResponse, OutboxMessage, Suppression
from engine.models import outbox as states
from engine.rules.bucket import bucket_of
from engine.runs.runner import advance, start_run
from engine.segments.membership import refresh_segments
from tests.factories import CUSTOMER, add_customer, add_purchase, utc

OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]
RESPONSE = ContactResponse.__table__  # type: ignore[attr-defined]
SUPPRESSION = Suppression.__table__  # type: ignore[attr-defined]

CONFIG = """
[engine]
timezone = "Europe/Moscow"

[channels.email]
unit_cost = 0.50

[channels.call]
unit_cost = 60
capacity_per_day = 2

[contact_policy]
quiet_hours = "21:00-09:00"
max_contacts = { email = "1/week" }

[segments.everyone]
rule = "true"
"""

EMAIL_STEP = """
[[steps]]
channel = "email"
template = "note.html.j2"
subject = "Hello {{ customer.first_name }}"
"""


def setup(
    write_config: Any, tmp_path: Path, campaigns: dict[str, str], extra: str = "", *, config: str = CONFIG
) -> Config:
    """config.toml (``config`` + ``extra``), the campaign files and their templates, checked."""
    path = write_config(text=config + extra)
    folder = tmp_path / "campaigns"
    (folder / "templates").mkdir(parents=True, exist_ok=True)
    (folder / "templates" / "note.html.j2").write_text(
        "<p>Hi {{ customer.first_name }}</p>", encoding="utf-8"
    )
    (folder / "templates" / "call.md").write_text("Call {{ customer.first_name }}", encoding="utf-8")
    for key, text in campaigns.items():
        (folder / f"{key}.toml").write_text(text, encoding="utf-8")
    return load_config(path)


def campaign(extra: str = "", steps: str = EMAIL_STEP, priority: int = 0) -> str:
    return (
        f'name = "Test"\nsegment = "everyone"\nstrategy = "stimulation"\npriority = {priority}\n'
        f"start = 2026-01-01\nat = 2026-03-02T12:00:00+03:00\n{extra}\n{steps}"
    )


def states_of(db: Engine, run_id: int) -> dict[int, str]:
    with db.connect() as connection:
        rows = connection.execute(
            select(OUTBOX.c.customer_id, OUTBOX.c.state).where(OUTBOX.c.run_id == run_id, OUTBOX.c.step == 0)
        ).all()
    return dict(rows)


NOON = utc(2026, 3, 2, 9)  # 12:00 in Moscow, a Monday


def lowest_hashes(customers: list[int], key: str, n: int) -> set[int]:
    """The ``n`` customers the control group of campaign ``key`` takes first."""
    return set(sorted(customers, key=lambda c: (bucket_of(c, CONTROL_HASH, f"control:{key}"), c))[:n])


@pytest.mark.parametrize(
    ("share", "reachable", "size"),
    [("0.10", 101, 10), ("0.10", 105, 11), ("0.10", 104, 10), ("0.25", 2, 1), ("0.5", 1, 1), ("0", 50, 0)],
)
def test_control_size_rounds_half_up(share: str, reachable: int, size: int) -> None:
    assert control_size(Decimal(share), reachable) == size
    assert control_size(Decimal(share), 0) == 0


def test_every_member_gets_one_recorded_state_and_a_rerun_changes_nothing(db, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = setup(write_config, tmp_path, {"hello": campaign("control_group = 0.10")})
    with db.begin() as connection:
        ids = [add_customer(connection, email=f"c{n}@example.com", consent_email=True) for n in range(101)]
        no_consent = add_customer(connection, email="nc@example.com", consent_email=False)
        no_address = add_customer(connection, consent_email=True)
        suppressed = add_customer(connection, email="gone@example.com", consent_email=True)
    suppress(db, "email", "GONE@example.com", "unsubscribe")
    refresh_segments(db, config, now=NOON)
    hello = load_campaigns(config)["hello"]
    unreachable = {
        no_consent: states.NO_CONSENT,
        no_address: states.NO_ADDRESS,
        suppressed: states.SUPPRESSED,
    }
    # the unreachable would be among the lowest hashes if they could be drawn: the draw must skip them
    assert lowest_hashes([*ids, *unreachable], "hello", 10) != lowest_hashes(ids, "hello", 10)

    first = start_run(db, config, hello, scheduled_for=NOON, now=NOON)
    found = states_of(db, first.run_id)
    # 10 % of 101 reachable customers: floor(10.1 + 0.5) = 10 in control, 91 queued
    control = {c for c, s in found.items() if s == states.CONTROL}
    assert len(control) == control_size(Decimal("0.10"), 101) == 10
    assert control == lowest_hashes(ids, "hello", 10)
    assert {c: found[c] for c in unreachable} == unreachable
    queued = {c for c, s in found.items() if s == states.QUEUED}
    assert queued == set(ids) - control and len(queued) == 91
    assert first.counts == {states.CONTROL: 10, states.QUEUED: 91, **{s: 1 for s in unreachable.values()}}
    assert first.cost == Decimal("0.50") * 91

    again = start_run(db, config, hello, scheduled_for=NOON, now=NOON + dt.timedelta(minutes=5))
    assert again.run_id == first.run_id and again.counts == first.counts
    assert states_of(db, first.run_id) == found


def test_the_control_group_is_drawn_among_the_reachable_and_stays_from_week_to_week(
    db, write_config, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    text = campaign("control_group = 0.25").replace(
        "at = 2026-03-02T12:00:00+03:00", 'schedule = "0 12 * * MON"'
    )
    config = setup(write_config, tmp_path, {"weekly": text})
    with db.begin() as connection:
        ids = [add_customer(connection, email=f"w{n}@example.com", consent_email=True) for n in range(30)]
    refresh_segments(db, config, now=NOON)
    weekly = load_campaigns(config)["weekly"]
    first = start_run(db, config, weekly, scheduled_for=NOON, now=NOON)
    drawn = {c for c, s in states_of(db, first.run_id).items() if s == states.CONTROL}
    assert drawn == lowest_hashes(ids, "weekly", 8)  # 25 % of 30 = 7.5: rounds up to 8
    # a week later two customers of the control group and two others withdrew their consent
    gone = sorted(drawn)[:2] + sorted(set(ids) - drawn)[:2]
    with db.begin() as connection:
        connection.execute(update(CUSTOMER).where(CUSTOMER.c.id.in_(gone)).values(consent_email=False))
    later = NOON + dt.timedelta(days=7)
    second = start_run(db, config, weekly, scheduled_for=later, now=later)
    found = states_of(db, second.run_id)
    reachable = [c for c in ids if c not in gone]
    again = {c for c, s in found.items() if s == states.CONTROL}
    assert len(again) == control_size(Decimal("0.25"), 26) == 7  # 6.5 rounds up
    assert again == lowest_hashes(reachable, "weekly", 7)
    assert drawn - set(gone) <= again  # who was in control and can still be reached stays in control
    assert {found[c] for c in gone} == {states.NO_CONSENT}


def test_a_firing_later_than_max_lateness_is_recorded_expired(db, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = setup(write_config, tmp_path, {"hello": campaign('max_lateness = "30m"')})
    with db.begin() as connection:
        add_customer(connection, email="a@example.com", consent_email=True)
    refresh_segments(db, config, now=NOON)
    hello = load_campaigns(config)["hello"]
    late = start_run(db, config, hello, scheduled_for=NOON, now=NOON + dt.timedelta(hours=2))
    assert late.state == states.RUN_EXPIRED and late.counts == {}
    assert "more than max_lateness 30m" in (late.detail or "")


def test_quiet_hours_and_local_send_time_in_each_customers_zone(db, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = setup(write_config, tmp_path, {"hello": campaign('send_at_local = "10:00:00"')})
    with db.begin() as connection:
        moscow = add_customer(connection, email="m@example.com", consent_email=True)
        vladivostok = add_customer(
            connection, email="v@example.com", consent_email=True, timezone="Asia/Vladivostok"
        )
        london = add_customer(connection, email="l@example.com", consent_email=True, timezone="Europe/London")
    refresh_segments(db, config, now=NOON)
    run = start_run(db, config, load_campaigns(config)["hello"], scheduled_for=NOON, now=NOON)
    with db.connect() as connection:
        at = dict(
            connection.execute(
                select(OUTBOX.c.customer_id, OUTBOX.c.scheduled_at).where(OUTBOX.c.run_id == run.run_id)
            ).all()
        )
    # 12:00 Moscow: 10:00 has passed in Moscow and Vladivostok (next day), is still ahead in London
    assert at[moscow] == utc(2026, 3, 3, 7)
    assert at[vladivostok] == utc(2026, 3, 3, 0)
    assert at[london] == utc(2026, 3, 2, 10)
    assert run.steps[0].later == 3  # plan and run say how many wait for their local time


def test_caps_count_in_local_weeks_and_the_higher_priority_wins(db, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    campaigns = {"low": campaign(priority=1), "high": campaign(priority=5)}
    config = setup(write_config, tmp_path, campaigns)
    with db.begin() as connection:
        customer = add_customer(connection, email="a@example.com", consent_email=True)
    refresh_segments(db, config, now=NOON)
    loaded = load_campaigns(config)
    low = start_run(db, config, loaded["low"], scheduled_for=NOON, now=NOON)
    assert states_of(db, low.run_id) == {customer: states.QUEUED}
    high = start_run(db, config, loaded["high"], scheduled_for=NOON, now=NOON)
    assert states_of(db, high.run_id) == {customer: states.QUEUED}
    assert states_of(db, low.run_id) == {customer: states.OVER_CAP}
    with db.connect() as connection:
        detail = connection.execute(select(OUTBOX.c.detail).where(OUTBOX.c.run_id == low.run_id)).scalar()
    assert detail == "pre-empted by campaign high (priority 5)"
    # a lower priority campaign firing later finds the cap used
    again = start_run(db, config, loaded["low"], scheduled_for=NOON + dt.timedelta(days=1), now=NOON)
    assert states_of(db, again.run_id) == {customer: states.OVER_CAP}
    # next local week: free again
    next_week = start_run(db, config, loaded["low"], scheduled_for=NOON + dt.timedelta(days=7), now=NOON)
    assert states_of(db, next_week.run_id) == {customer: states.QUEUED}


def test_the_budget_line_trims_the_lowest_ranked(db, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = setup(
        write_config,
        tmp_path,
        {"hello": campaign("budget = 3.00\npreparation_cost = 1.00\nrank_by = 'total_spent'")},
    )
    from engine.metrics.customer_metrics import refresh_metrics

    with db.begin() as connection:
        ids = [add_customer(connection, email=f"c{n}@example.com", consent_email=True) for n in range(6)]
        for n, customer in enumerate(ids):
            add_purchase(connection, customer, utc(2026, 2, 1), str(100 * (n + 1)))
    refresh_metrics(db, config, dt.date(2026, 3, 2), now=NOON)
    refresh_segments(db, config, now=NOON)
    run = start_run(db, config, load_campaigns(config)["hello"], scheduled_for=NOON, now=NOON)
    found = states_of(db, run.run_id)
    # 3.00 - 1.00 preparation leaves 2.00: four emails at 0.50, the four biggest spenders
    assert {c for c, s in found.items() if s == states.QUEUED} == set(ids[2:])
    assert {c for c, s in found.items() if s == states.OVER_BUDGET} == set(ids[:2])
    assert run.cost == Decimal("2.00")


def test_calls_beyond_daily_capacity_move_to_the_next_days(db, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    call = '[[steps]]\nchannel = "call"\nscript = "call.md"\n'
    config = setup(write_config, tmp_path, {"ring": campaign(steps=call)})
    with db.begin() as connection:
        ids = [add_customer(connection, phone=f"+7916000000{n}", consent_call=True) for n in range(5)]
    refresh_segments(db, config, now=NOON)
    run = start_run(db, config, load_campaigns(config)["ring"], scheduled_for=NOON, now=NOON)
    with db.connect() as connection:
        days = (
            connection.execute(
                select(OUTBOX.c.scheduled_at)
                .where(OUTBOX.c.run_id == run.run_id)
                .order_by(OUTBOX.c.scheduled_at)
            )
            .scalars()
            .all()
        )
    assert days == [NOON, NOON, utc(2026, 3, 2, 21), utc(2026, 3, 2, 21), utc(2026, 3, 3, 21)]
    assert run.counts == {states.QUEUED: 5} and len(ids) == 5


def test_later_steps_follow_the_wait_and_only_if(db, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    steps = (
        EMAIL_STEP
        + '[[steps]]\nchannel = "email"\ntemplate = "note.html.j2"\nsubject = "Again"\n'
        + 'wait = "7d"\nonly_if = "not responded"\n'
    )
    config = setup(write_config, tmp_path, {"hello": campaign(steps=steps)})
    with db.begin() as connection:
        quiet, answered = (
            add_customer(connection, email=f"{n}@example.com", consent_email=True) for n in "ab"
        )
    refresh_segments(db, config, now=NOON)
    run = start_run(db, config, load_campaigns(config)["hello"], scheduled_for=NOON, now=NOON)
    with db.begin() as connection:
        connection.execute(
            update(OUTBOX).where(OUTBOX.c.run_id == run.run_id).values(state=states.SENT, sent_at=NOON)
        )
        row = connection.execute(select(OUTBOX.c.id).where(OUTBOX.c.customer_id == answered)).scalar_one()
        connection.execute(
            insert(RESPONSE).values(outbox_id=row, customer_id=answered, kind="click", occurred_at=NOON)
        )
    early = advance(db, config, now=NOON + dt.timedelta(days=6))
    assert early.steps_materialised == [] and early.runs_done == []
    later = advance(db, config, now=NOON + dt.timedelta(days=7, hours=1))
    assert later.steps_materialised == [(run.run_id, 1, 2)]
    with db.connect() as connection:
        second = dict(
            connection.execute(
                select(OUTBOX.c.customer_id, OUTBOX.c.state).where(
                    OUTBOX.c.run_id == run.run_id, OUTBOX.c.step == 1
                )
            ).all()
        )
    assert second == {quiet: states.QUEUED, answered: states.CONDITION_NOT_MET}
    with db.begin() as connection:
        connection.execute(update(OUTBOX).where(OUTBOX.c.state == states.QUEUED).values(state=states.SENT))
    assert advance(db, config, now=NOON + dt.timedelta(days=8)).runs_done == [run.run_id]


@pytest.mark.parametrize(
    ("only_if", "kept"),
    [
        ("opened", {"opener", "clicker"}),
        ("clicked", {"clicker"}),
        ("not responded", {"opener", "quiet", "buyer"}),  # an open alone is not a response; a click is
        ("not converted", {"opener", "clicker", "quiet"}),
    ],
)
def test_response_conditions_of_later_steps(db, write_config, tmp_path, only_if: str, kept: set[str]) -> None:  # type: ignore[no-untyped-def]
    steps = (
        EMAIL_STEP
        + '[[steps]]\nchannel = "email"\ntemplate = "note.html.j2"\nsubject = "Again"\n'
        + f'wait = "7d"\nonly_if = "{only_if}"\n'
    )
    config = setup(write_config, tmp_path, {"hello": campaign(steps=steps)})
    names = ("quiet", "opener", "clicker", "buyer")
    with db.begin() as connection:
        ids = {
            name: add_customer(connection, email=f"{name}@example.com", consent_email=True) for name in names
        }
        add_purchase(connection, ids["buyer"], NOON + dt.timedelta(hours=5), "990")
        add_purchase(connection, ids["quiet"], NOON - dt.timedelta(days=5), "100")  # before the contact
    refresh_segments(db, config, now=NOON)
    run = start_run(db, config, load_campaigns(config)["hello"], scheduled_for=NOON, now=NOON)
    with db.begin() as connection:
        connection.execute(
            update(OUTBOX).where(OUTBOX.c.run_id == run.run_id).values(state=states.SENT, sent_at=NOON)
        )
        rows = dict(connection.execute(select(OUTBOX.c.customer_id, OUTBOX.c.id)).all())
        for name, kind in (("opener", "open"), ("clicker", "click")):
            connection.execute(
                insert(RESPONSE).values(
                    outbox_id=rows[ids[name]], customer_id=ids[name], kind=kind, occurred_at=NOON
                )
            )
    advance(db, config, now=NOON + dt.timedelta(days=7, hours=1))
    with db.connect() as connection:
        second = dict(
            connection.execute(
                select(OUTBOX.c.customer_id, OUTBOX.c.state).where(
                    OUTBOX.c.run_id == run.run_id, OUTBOX.c.step == 1
                )
            ).all()
        )
    assert {name for name in names if second[ids[name]] == states.QUEUED} == kept
    assert {second[ids[name]] for name in names if name not in kept} == {states.CONDITION_NOT_MET}


def test_suppressed_by_customer_or_by_address(db, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = setup(write_config, tmp_path, {"hello": campaign()})
    with db.begin() as connection:
        by_address = add_customer(connection, email="old@example.com", consent_email=True)
        by_customer = add_customer(connection, email="new@example.com", consent_email=True)
        free = add_customer(connection, email="free@example.com", consent_email=True)
        connection.execute(
            insert(SUPPRESSION).values(
                channel="email", address="previous@example.com", customer_id=by_customer, reason="complaint",
                source="test", created_at=NOON,
            )
        )  # fmt: skip
    suppress(db, "email", "old@example.com", "hard_bounce")
    refresh_segments(db, config, now=NOON)
    run = start_run(db, config, load_campaigns(config)["hello"], scheduled_for=NOON, now=NOON)
    assert states_of(db, run.run_id) == {
        by_address: states.SUPPRESSED,
        by_customer: states.SUPPRESSED,
        free: states.QUEUED,
    }


def test_calls_the_call_centre_cannot_make_before_the_end_are_outside_window(
    db, write_config, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    call = '[[steps]]\nchannel = "call"\nscript = "call.md"\n'
    config = setup(write_config, tmp_path, {"ring": campaign("end = 2026-03-03", steps=call)})
    with db.begin() as connection:
        for n in range(5):
            add_customer(connection, phone=f"+7916000001{n}", consent_call=True)
    refresh_segments(db, config, now=NOON)
    run = start_run(db, config, load_campaigns(config)["ring"], scheduled_for=NOON, now=NOON)
    assert run.counts == {states.QUEUED: 4, states.OUTSIDE_WINDOW: 1}
    with db.connect() as connection:
        detail = connection.execute(
            select(OUTBOX.c.detail).where(OUTBOX.c.state == states.OUTSIDE_WINDOW)
        ).scalar_one()
    assert detail == "the call centre's capacity is used up until the campaign ends"


def test_each_row_costs_the_price_of_the_runs_business_day(db, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    prices = (
        "\n[channels.sms]\nunit_cost = 2\nprices = [\n"
        "  { from = 2026-03-02, unit_cost = 3 },\n"
        '  { from = 2026-03-02, segment = "everyone", unit_cost = 4 },\n'
        '  { from = 2026-03-02, campaign = "own", unit_cost = 5 },\n]\n'
        '\n[segments.others]\nrule = "true"\n'
    )
    sms = '[[steps]]\nchannel = "sms"\ntemplate = "note.html.j2"\n'
    others = campaign(steps=sms).replace('segment = "everyone"', 'segment = "others"')
    campaigns = {"own": campaign(steps=sms), "member": campaign(steps=sms), "other": others}
    early = campaign(steps=sms).replace("at = 2026-03-02T12:00:00+03:00", "at = 2026-03-01T12:00:00+03:00")
    config = setup(write_config, tmp_path, {**campaigns, "early": early}, extra=prices)
    with db.begin() as connection:
        add_customer(connection, phone="+79161234567", consent_sms=True)
    refresh_segments(db, config, now=NOON - dt.timedelta(days=1))
    loaded = load_campaigns(config)
    costs = {}
    for key, fired in (
        ("own", NOON),
        ("member", NOON),
        ("other", NOON),
        ("early", NOON - dt.timedelta(days=1)),
    ):
        run = start_run(db, config, loaded[key], scheduled_for=fired, now=fired)
        with db.connect() as connection:
            costs[key] = connection.execute(
                select(OUTBOX.c.unit_cost).where(OUTBOX.c.run_id == run.run_id)
            ).scalar_one()
    # the campaign's price, the segment's, the channel's dated price, then unit_cost before 2 March
    assert costs == {"own": Decimal(5), "member": Decimal(4), "other": Decimal(3), "early": Decimal(2)}
