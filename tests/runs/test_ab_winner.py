"""A/B/n with ``test_share``: the rest is held, then gets the winner once (real runner and worker)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, select, update

from engine.campaigns.control_group import CONTROL_HASH, control_size
from engine.campaigns.definition import Campaign
from engine.campaigns.loading import load_campaigns
from engine.channels import MemoryChannel
from engine.config.checked import Config
from engine.contact_policy.suppression import suppress
from engine.errors import ConfigValueError, EngineError
from engine.models import outbox as states
from engine.outbox import drain
from engine.rules.bucket import bucket_of
from engine.runs.runner import advance, run_summary, start_run
from engine.runs.winner import send_winner
from engine.segments.membership import refresh_segments
from tests.cli.test_cli import crm
from tests.factories import add_purchase, utc
from tests.outbox.factories import (
    CAMPAIGN,
    CUSTOMER,
    OUTBOX,
    RUN,
    T0,
    Clock,
    add_customers,
    add_run,
    queue,
    workspace,
)

#: the example A/B campaign of tests/outbox with 10 % control and a test on a quarter of the rest
AB_CAMPAIGN = CAMPAIGN.replace(
    'max_lateness = "1h"', 'max_lateness = "1h"\ncontrol_group = 0.10\ntest_share = 0.25'
)
#: one email step only, a budget line of 6.00 and half the audience tested
ONE_STEP = AB_CAMPAIGN[: AB_CAMPAIGN.index('[[steps]]\nchannel = "call"')].replace(
    "control_group = 0.10\ntest_share = 0.25", "test_share = 0.5\nbudget = 6.00"
)
QUIET = '\n[contact_policy]\nquiet_hours = "21:00-09:00"\n'
CAPPED = '\n[contact_policy]\nmax_contacts = { email = "1/week" }\n'


def _prepare(db: Engine, write_config: Any, tmp_path: Path, campaign: str, extra: str, count: int) -> Config:
    config = workspace(write_config, tmp_path, campaign=campaign, extra=extra)
    with db.begin() as connection:
        add_customers(connection, count)
    refresh_segments(db, config, now=T0)
    return config


def _step0(db: Engine, run_id: int) -> dict[int, Any]:
    with db.connect() as connection:
        rows = connection.execute(select(OUTBOX).where(OUTBOX.c.run_id == run_id, OUTBOX.c.step == 0))
        return {row.customer_id: row for row in rows}


def _customers(db: Engine) -> list[int]:
    with db.connect() as connection:
        return list(connection.execute(select(CUSTOMER.c.id).order_by(CUSTOMER.c.id)).scalars())


def _by_test_hash(customers: list[int]) -> list[int]:
    return sorted(customers, key=lambda c: (bucket_of(c, CONTROL_HASH, "test:note"), c))


def test_test_share_needs_variants_and_a_share_between_0_and_1() -> None:
    base: dict[str, Any] = {
        "name": "Spring sale",
        "segment": "everyone",
        "strategy": "stimulation",
        "start": dt.date(2026, 3, 1),
        "at": dt.datetime(2026, 3, 2, 10, tzinfo=dt.UTC),
        "steps": [{"channel": "email", "template": "note.html.j2"}],
    }
    two = [{"name": "a"}, {"name": "b"}]
    assert Campaign(**base, variants=two, test_share=Decimal("0.2")).test_share == Decimal("0.2")
    with pytest.raises(
        ValidationError, match=r"test_share needs at least two \[\[variants\]\] to test \(found 1\)"
    ):
        Campaign(**base, variants=two[:1], test_share=Decimal("0.2"))
    for share in ("0", "1", "1.5"):
        with pytest.raises(ValidationError, match=f"test_share {share} must lie between 0 and 1"):
            Campaign(**base, variants=two, test_share=Decimal(share))


def test_the_rest_is_held_then_gets_the_winner_once(db, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = _prepare(db, write_config, tmp_path, AB_CAMPAIGN, QUIET, 60)
    with db.begin() as connection:
        connection.execute(
            update(CUSTOMER).where(CUSTOMER.c.id.in_(_customers(db)[:2])).values(consent_email=False)
        )
    note = load_campaigns(config)["note"]
    run = start_run(db, config, note, scheduled_for=T0, now=T0)

    # 58 reachable: 10 % control = 6; 25 % of the 52 left tested = 13; the other 39 are held
    rows = _step0(db, run.run_id)
    control = {c for c, r in rows.items() if r.state == states.CONTROL}
    assert len(control) == control_size(Decimal("0.10"), 58) == 6
    rest = [c for c, r in rows.items() if r.state != states.NO_CONSENT and c not in control]
    tested = set(_by_test_hash(rest)[: control_size(Decimal("0.25"), 52)])
    held = set(rest) - tested
    assert len(tested) == 13 and len(held) == 39
    assert run.counts == {states.NO_CONSENT: 2, states.CONTROL: 6, states.QUEUED: 13, states.HELD: 39}
    assert {c for c, r in rows.items() if r.state == states.QUEUED} == tested
    assert {rows[c].variant for c in tested} == {"a", "b"}
    assert {(rows[c].state, rows[c].variant) for c in held} == {(states.HELD, None)}
    assert (
        rows[min(held)].detail == "held for the A/B winner: the test takes 13 of 52 reachable customers (25%)"
    )
    assert run.cost == Decimal("0.40") * 13  # held rows cost nothing yet

    memory = MemoryChannel("email")
    clock = Clock(T0)
    assert drain(db, config, channels={"email": memory}, until_idle=True, clock=clock).sent == 13
    assert set(memory.sent) == {f"{run.run_id}:{c}:0" for c in tested}
    # a week on, the test's call step follows the tested customers only: the held are not contacted
    advance(db, config, now=T0 + dt.timedelta(days=7, minutes=1))
    with db.connect() as connection:
        called = set(
            connection.execute(
                select(OUTBOX.c.customer_id).where(OUTBOX.c.run_id == run.run_id, OUTBOX.c.step == 1)
            ).scalars()
        )
    assert called == tested

    # Tuesday 23:30 in Moscow: quiet hours, so the winner goes at 09:00 local the next morning
    late = utc(2026, 12, 8, 20, 30)
    sent = send_winner(db, config, "note", variant="b", now=late)
    assert (sent.run_id, sent.variant, sent.chosen_by) == (run.run_id, "b", "variant")
    assert sent.states == {states.QUEUED: 39} and sent.held == sent.queued == 39
    assert sent.describe() == f"run {run.run_id} of note: variant b (as asked) for 39 held: 39 queued"
    after = _step0(db, run.run_id)
    assert {c for c, r in after.items() if r.state == states.QUEUED} == held
    assert {(after[c].variant, after[c].scheduled_at) for c in held} == {("b", utc(2026, 12, 9, 6))}
    assert {c: (r.state, r.variant) for c, r in after.items() if c not in held} == {
        c: (r.state, r.variant) for c, r in rows.items() if c not in held
    } | {c: (states.SENT, rows[c].variant) for c in tested}

    clock.now = late
    assert (
        drain(db, config, channels={"email": memory}, until_idle=True, clock=clock).sent == 0
    )  # quiet hours
    clock.now = utc(2026, 12, 9, 6)
    assert drain(db, config, channels={"email": memory}, until_idle=True, clock=clock).sent == 39
    winners = {key: m for key, m in memory.sent.items() if int(key.split(":")[1]) in held}
    assert len(winners) == 39
    assert all(m.subject.startswith("Only for you, ") for m in winners.values())  # variant b's subject

    again = send_winner(db, config, "note", variant="b", now=clock.now)
    assert (again.run_id, again.states) == (None, {})
    assert again.describe() == "campaign note: no customer is held for an A/B winner: nothing to send"
    assert drain(db, config, channels={"email": memory}, until_idle=True, clock=clock).sent == 0
    # a week after the winner, its customers get the call step too, with their variant
    advance(db, config, now=utc(2026, 12, 16, 6, 1))
    with db.connect() as connection:
        step1 = dict(
            connection.execute(
                select(OUTBOX.c.customer_id, OUTBOX.c.variant).where(
                    OUTBOX.c.run_id == run.run_id, OUTBOX.c.step == 1
                )
            ).all()
        )
    assert set(step1) == tested | held
    assert {step1[c] for c in held} == {"b"}


def test_held_rows_are_checked_again_for_suppression_consent_caps_and_budget(  # type: ignore[no-untyped-def]
    db, write_config, tmp_path
) -> None:
    config = _prepare(db, write_config, tmp_path, ONE_STEP, CAPPED, 20)
    note = load_campaigns(config)["note"]
    run = start_run(db, config, note, scheduled_for=T0, now=T0)
    rows = _step0(db, run.run_id)
    tested = {c for c, r in rows.items() if r.state == states.QUEUED}
    held = sorted(c for c, r in rows.items() if r.state == states.HELD)
    assert (len(tested), len(held)) == (10, 10)
    assert drain(db, config, channels={"email": MemoryChannel()}, until_idle=True, clock=Clock(T0)).sent == 10
    advance(db, config, now=T0 + dt.timedelta(minutes=5))
    with db.connect() as connection:
        assert (
            connection.execute(select(RUN.c.state).where(RUN.c.id == run.run_id)).scalar() == states.RUN_DONE
        )

    # the next day, in the same week: one held customer unsubscribed, one withdrew consent, and one
    # got another campaign's email, which uses up the weekly cap
    winner_at = T0 + dt.timedelta(days=1, hours=1)
    suppressed, withdrawn, capped = held[0], held[1], held[2]
    suppress(db, "email", rows[suppressed].recipient.upper(), "unsubscribe")
    with db.begin() as connection:
        connection.execute(update(CUSTOMER).where(CUSTOMER.c.id == withdrawn).values(consent_email=False))
        queue(
            connection,
            add_run(connection, "other", scheduled_for=winner_at),
            [capped],
            scheduled_at=winner_at,
        )
    sent = send_winner(db, config, "note", variant="a", now=winner_at)

    # budget line 6.00: the test's 10 contacts at 0.40 leave 2.00, room for 5 of the 7 left
    assert sent.states == {
        states.SUPPRESSED: 1,
        states.NO_CONSENT: 1,
        states.OVER_CAP: 1,
        states.OVER_BUDGET: 2,
        states.QUEUED: 5,
    }
    after = _step0(db, run.run_id)
    assert after[suppressed].state == states.SUPPRESSED
    assert after[withdrawn].state == states.NO_CONSENT
    assert after[capped].state == states.OVER_CAP
    assert after[capped].detail == "over cap when the A/B winner a was sent"
    # all rank 0 (no purchases): ties go by customer id, so the two highest ids are over budget
    assert {c for c in held[3:] if after[c].state == states.OVER_BUDGET} == set(held[-2:])
    assert after[held[-1]].detail == "budget line 6.0 reached (with preparation 0)"
    assert {after[c].variant for c in held} == {"a"}
    queued = {c for c in held if after[c].state == states.QUEUED}
    assert queued == set(held[3:-2]) and {after[c].scheduled_at for c in queued} == {winner_at}
    with db.connect() as connection:
        summary = run_summary(connection, run.run_id)
    assert summary.state == states.RUN_QUEUED  # reopened: the worker and later steps see it again
    memory = MemoryChannel()
    assert drain(db, config, channels={"email": memory}, until_idle=True, clock=Clock(winner_at)).sent == 5
    assert set(memory.sent) == {f"{run.run_id}:{c}:0" for c in queued}


def test_without_a_variant_the_significant_winner_is_sent(db, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = _prepare(db, write_config, tmp_path, ONE_STEP.replace("budget = 6.00", ""), "", 60)
    run = start_run(db, config, load_campaigns(config)["note"], scheduled_for=T0, now=T0)
    rows = _step0(db, run.run_id)
    held = {c for c, r in rows.items() if r.state == states.HELD}
    arms = {v: {c for c, r in rows.items() if r.variant == v} for v in ("a", "b")}
    assert len(held) == 30 and len(arms["a"]) + len(arms["b"]) == 30
    assert drain(db, config, channels={"email": MemoryChannel()}, until_idle=True, clock=Clock(T0)).sent == 30
    later = T0 + dt.timedelta(days=2)
    with pytest.raises(EngineError, match="no variant is significantly best on conversion_rate"):
        send_winner(db, config, "note", now=later)  # nobody bought anything yet
    assert {c for c, r in _step0(db, run.run_id).items() if r.state == states.HELD} == held

    # every customer who got b buys within the goal window, nobody who got a
    with db.begin() as connection:
        for customer in arms["b"]:
            add_purchase(connection, customer, T0 + dt.timedelta(days=1), "100.00")
    sent = send_winner(db, config, "note", now=later)
    assert (sent.variant, sent.chosen_by, sent.states) == ("b", "test", {states.QUEUED: 30})
    assert sent.verdict is not None and sent.verdict.significant and sent.verdict.variant == "b"
    assert sent.describe().startswith(f"run {run.run_id} of note: variant b (the significant winner)")
    after = _step0(db, run.run_id)
    assert {c for c, r in after.items() if (r.state, r.variant) == (states.QUEUED, "b")} == held


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the SQL runs on both databases above
def test_crm_run_winner(db, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = _prepare(db, write_config, tmp_path, ONE_STEP.replace("budget = 6.00", ""), "", 8)
    run = start_run(db, config, load_campaigns(config)["note"], scheduled_for=T0, now=T0)
    held = {c for c, r in _step0(db, run.run_id).items() if r.state == states.HELD}
    assert len(held) == 4
    with pytest.raises(ConfigValueError, match=r"--variant variant: note has no variant 'c' \(known: a, b\)"):
        send_winner(db, config, "note", variant="c")
    refused = crm("run", "note", "--winner")
    assert refused.returncode == 1
    assert "no variant is significantly best" in refused.stderr + refused.stdout
    alone = crm("run", "note", "--variant", "a")
    assert alone.returncode == 1 and "goes with --winner" in alone.stderr + alone.stdout

    done = crm("run", "note", "--winner", "--variant", "a", "--no-send", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["run_id"], result["variant"], result["held"]) == (run.run_id, "a", {"queued": 4})
    assert result["run"]["counts"] == {"queued": 8}  # the test's 4 (not sent: --no-send) and the 4 held
    rows = _step0(db, run.run_id)
    assert {c for c, r in rows.items() if r.variant == "a" and r.state == states.QUEUED} >= held

    again = crm("run", "note", "--winner")
    assert again.returncode == 0, again.stderr
    assert "no customer is held for an A/B winner: nothing to send" in again.stdout
