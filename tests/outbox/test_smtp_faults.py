"""The worker against real SMTP servers that misbehave: retries with backoff, bounces, give-ups."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from engine.channels import message_id
from engine.contact_policy.suppression import list_suppressions
from engine.db import installation_id
from engine.models import outbox as states
from engine.outbox import drain, resend_failed
from tests.channels.smtp_servers import Recorder, free_port, smtp_server
from tests.factories import add_customer
from tests.outbox.factories import T0, Clock, add_run, queue, rows_of, workspace


def smtp(port: int) -> str:
    """``[channels.email]`` lines for an SMTP server on loopback."""
    return f'transport = "smtp"\n\n[channels.email.smtp]\nhost = "127.0.0.1"\nport = {port}\ntimeout = 5\n'


def _one_row(db, tmp_path: Path) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    with db.begin() as connection:
        customer = add_customer(connection, first_name="Анна", email="anna@example.ru", consent_email=True)
        run = add_run(connection)
        queue(connection, run)
    return run, customer


def test_451_is_retried_after_the_backoff_and_then_sent_once(db, write_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    recorder = Recorder(data_answers=["451 4.3.0 try again later"])
    with smtp_server(recorder) as port:
        config = workspace(write_config, tmp_path, email=smtp(port))
        run, customer = _one_row(db, tmp_path)
        clock = Clock()
        first = drain(db, config, until_idle=True, clock=clock)
        row = rows_of(db, run)[(customer, 0)]
        assert first.retrying == 1 and row.state == states.QUEUED and row.attempts == 1
        assert row.scheduled_at == T0 + dt.timedelta(minutes=1) and row.detail.startswith("451")

        assert drain(db, config, until_idle=True, clock=clock).processed == 0  # not due yet
        clock.advance(minutes=1)
        second = drain(db, config, until_idle=True, clock=clock)
    row = rows_of(db, run)[(customer, 0)]
    expected = message_id(f"{run}:{customer}:0", "shop.example", installation=installation_id(db))
    assert second.sent == 1 and (row.state, row.attempts) == (states.SENT, 2)
    assert row.reference == expected and row.sent_at == clock.now
    assert recorder.message_ids == [expected]


def test_550_for_a_missing_mailbox_bounces_and_suppresses_but_a_policy_refusal_only_fails(  # type: ignore[no-untyped-def]
    db, write_config, tmp_path: Path
) -> None:
    recorder = Recorder(
        rcpt_answers={
            "gone@example.ru": "550 5.1.1 <gone@example.ru>: no such user",
            "spam@example.ru": "550 5.7.1 refused by policy",
        }
    )
    with db.begin() as connection:
        gone = add_customer(connection, email="gone@example.ru", consent_email=True)
        refused = add_customer(connection, email="spam@example.ru", consent_email=True)
        fine = add_customer(connection, email="fine@example.ru", consent_email=True)
        run = add_run(connection)
        queue(connection, run)
    with smtp_server(recorder) as port:
        config = workspace(write_config, tmp_path, email=smtp(port))
        summary = drain(db, config, until_idle=True, clock=Clock())
    rows = rows_of(db, run)
    assert (summary.sent, summary.bounced, summary.failed) == (1, 1, 1)
    assert rows[(gone, 0)].state == states.BOUNCED and "no such user" in rows[(gone, 0)].detail
    assert (
        rows[(refused, 0)].state == states.FAILED
        and rows[(refused, 0)].detail == "550 5.7.1 refused by policy"
    )
    assert rows[(fine, 0)].state == states.SENT
    count, entries = list_suppressions(db, "email")
    assert count == 1 and (entries[0].address, entries[0].reason) == ("gone@example.ru", "hard_bounce")
    assert entries[0].customer_id == gone and entries[0].source == "worker"
    assert resend_failed(db, run) == 1  # the refused one; the bounced one stays bounced
    assert rows_of(db, run)[(gone, 0)].state == states.BOUNCED


def test_a_connection_dropped_mid_data_is_retried(db, write_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    recorder = Recorder(data_answers=["drop"])
    with smtp_server(recorder) as port:
        config = workspace(write_config, tmp_path, email=smtp(port))
        run, customer = _one_row(db, tmp_path)
        clock = Clock()
        first = drain(db, config, until_idle=True, clock=clock)
        assert first.retrying == 1 and recorder.message_ids == []
        clock.advance(minutes=1)
        second = drain(db, config, until_idle=True, clock=clock)
    assert second.sent == 1 and rows_of(db, run)[(customer, 0)].state == states.SENT
    assert recorder.message_ids == [
        message_id(f"{run}:{customer}:0", "shop.example", installation=installation_id(db))
    ]


def test_nothing_listening_retries_with_doubling_backoff_then_fails_and_can_be_resent(  # type: ignore[no-untyped-def]
    db, write_config, tmp_path: Path
) -> None:
    config = workspace(write_config, tmp_path, email=smtp(free_port()))  # max_attempts = 3, retry_after = 1m
    run, customer = _one_row(db, tmp_path)
    clock = Clock()
    due_times = []
    for _ in range(2):
        assert drain(db, config, until_idle=True, clock=clock).retrying == 1
        row = rows_of(db, run)[(customer, 0)]
        assert row.state == states.QUEUED
        due_times.append(row.scheduled_at - clock.now)
        clock.now = row.scheduled_at
    assert due_times == [dt.timedelta(minutes=1), dt.timedelta(minutes=2)]
    last = drain(db, config, until_idle=True, clock=clock)
    row = rows_of(db, run)[(customer, 0)]
    assert last.failed == 1 and (row.state, row.attempts) == (states.FAILED, 3)
    assert row.detail.startswith("gave up after 3 attempts: ")

    assert resend_failed(db, run, now=clock.now) == 1
    row = rows_of(db, run)[(customer, 0)]
    assert (row.state, row.attempts, row.scheduled_at) == (states.QUEUED, 0, clock.now)
