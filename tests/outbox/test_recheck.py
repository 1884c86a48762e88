"""Checked again at send time: suppression, consent, lateness, addresses; one bad row never fails a batch."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import update

from engine.channels import MemoryChannel
from engine.contact_policy.suppression import suppress
from engine.errors import NotFoundError
from engine.models import outbox as states
from engine.outbox import drain, resend_failed
from tests.factories import add_customer
from tests.outbox.factories import CAMPAIGN, CUSTOMER, OUTBOX, T0, Clock, add_run, queue, rows_of, workspace


def test_customers_suppressed_or_without_consent_since_the_run_are_not_contacted(  # type: ignore[no-untyped-def]
    db, write_config, tmp_path: Path
) -> None:
    config = workspace(write_config, tmp_path)
    with db.begin() as connection:
        kept = add_customer(connection, email="kept@example.ru", consent_email=True)
        unsubscribed = add_customer(connection, email="gone@example.ru", consent_email=True)
        withdrawn = add_customer(connection, email="quiet@example.ru", consent_email=True)
        run = add_run(connection)
        queue(connection, run)
        connection.execute(update(CUSTOMER).where(CUSTOMER.c.id == withdrawn).values(consent_email=False))
    suppress(db, "email", "GONE@example.ru", "unsubscribe")
    memory = MemoryChannel("email")
    summary = drain(db, config, channels={"email": memory}, until_idle=True, clock=Clock())

    rows = rows_of(db, run)
    assert (summary.sent, summary.suppressed, summary.no_consent) == (1, 1, 1)
    assert rows[(kept, 0)].state == states.SENT
    assert rows[(unsubscribed, 0)].state == states.SUPPRESSED
    assert rows[(withdrawn, 0)].state == states.NO_CONSENT
    assert list(memory.sent) == [f"{run}:{kept}:0"]


def test_rows_later_than_max_lateness_expire_and_list_files_have_their_whole_day(  # type: ignore[no-untyped-def]
    db, write_config, tmp_path: Path
) -> None:
    config = workspace(write_config, tmp_path)  # max_lateness = "1h"
    with db.begin() as connection:
        on_time = add_customer(
            connection, email="a@example.ru", phone="+79160000001", consent_email=True, consent_call=True
        )
        late = add_customer(connection, email="b@example.ru", phone="+79160000002", consent_call=True)
        run = add_run(connection)
        queue(connection, run, [on_time], scheduled_at=T0)
        queue(connection, run, [late], scheduled_at=T0 - dt.timedelta(hours=2))  # an outage in between
        queue(connection, run, [on_time], channel="call", step=1, scheduled_at=T0 - dt.timedelta(hours=3))
        queue(connection, run, [late], channel="call", step=1, scheduled_at=T0 - dt.timedelta(days=1))
    clock = Clock(T0 + dt.timedelta(minutes=30))
    summary = drain(
        db,
        config,
        channels={"email": MemoryChannel(), "call": MemoryChannel("call")},
        until_idle=True,
        clock=clock,
    )

    rows = rows_of(db, run)
    assert (summary.sent, summary.expired) == (2, 2)
    assert rows[(on_time, 0)].state == states.SENT
    assert rows[(late, 0)].state == states.EXPIRED
    assert rows[(late, 0)].detail == "not sent within max_lateness 1h of 2026-12-01 07:00 UTC"
    assert rows[(on_time, 1)].state == states.SENT  # today's call list: three hours late is fine
    assert rows[(late, 1)].state == states.EXPIRED  # yesterday's call


def test_a_template_failing_for_one_customer_fails_that_row_only(db, write_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    campaign = CAMPAIGN.replace(
        'subject = "{{ customer.first_name }}, a note for you"',
        'subject = "{{ customer.first_name.upper() }}, a note for you"',
    )
    config = workspace(write_config, tmp_path, campaign=campaign)
    with db.begin() as connection:
        named = add_customer(connection, first_name="Анна", email="a@example.ru", consent_email=True)
        nameless = add_customer(connection, email="b@example.ru", consent_email=True)
        run = add_run(connection)
        queue(connection, run)
    memory = MemoryChannel("email")
    summary = drain(db, config, channels={"email": memory}, until_idle=True, clock=Clock())

    rows = rows_of(db, run)
    assert (summary.sent, summary.failed) == (1, 1)
    assert memory.sent[f"{run}:{named}:0"].subject == "АННА, a note for you"
    assert rows[(nameless, 0)].state == states.FAILED and "upper" in rows[(nameless, 0)].detail
    assert "note.html.j2" in rows[(nameless, 0)].detail or "TemplateRenderError" in rows[(nameless, 0)].detail


def test_rows_without_address_or_whose_campaign_is_gone_are_recorded_with_why(  # type: ignore[no-untyped-def]
    db, write_config, tmp_path: Path
) -> None:
    config = workspace(write_config, tmp_path)
    with db.begin() as connection:
        addressless = add_customer(connection, consent_email=True)
        orphan = add_customer(connection, email="o@example.ru", consent_email=True)
        run = add_run(connection)
        gone_run = add_run(connection, "retired")
        queue(connection, run, [addressless])
        queue(connection, gone_run, [orphan])
    summary = drain(db, config, channels={"email": MemoryChannel()}, until_idle=True, clock=Clock())

    assert (summary.no_address, summary.failed) == (1, 1)
    assert rows_of(db, run)[(addressless, 0)].state == states.NO_ADDRESS
    gone = rows_of(db, gone_run)[(orphan, 0)]
    assert gone.state == states.FAILED and "campaign 'retired' is no longer in" in gone.detail


def test_resend_failed_requeues_failed_rows_now_and_knows_its_runs(db, write_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    workspace(write_config, tmp_path)
    with db.begin() as connection:
        failed = add_customer(connection, email="f@example.ru")
        sent = add_customer(connection, email="s@example.ru")
        run = add_run(connection)
        queue(connection, run)
        connection.execute(
            update(OUTBOX)
            .where(OUTBOX.c.customer_id == failed)
            .values(state=states.FAILED, attempts=5, detail="gave up")
        )
        connection.execute(update(OUTBOX).where(OUTBOX.c.customer_id == sent).values(state=states.SENT))
    later = T0 + dt.timedelta(days=2)
    assert resend_failed(db, run, now=later) == 1
    rows = rows_of(db, run)
    assert (rows[(failed, 0)].state, rows[(failed, 0)].attempts) == (states.QUEUED, 0)
    assert rows[(failed, 0)].scheduled_at == later and rows[(sent, 0)].state == states.SENT
    with pytest.raises(NotFoundError, match="unknown run '999'"):
        resend_failed(db, 999)
