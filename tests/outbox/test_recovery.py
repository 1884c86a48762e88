"""Dead workers and the send journal: what a worker held is settled, never sent twice, never lost."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import subprocess
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert, update

from engine.channels import DeliveryResult, DeliveryStatus, OutgoingMessage, SendJournal, message_id
from engine.db import installation_id
from engine.models import OutboxWorker
from engine.models import outbox as states
from engine.outbox import drain, recover
from engine.outbox.journal import OutboxJournal
from engine.outbox.recovery import RECOVERED_SENT, REQUEUED, beat, this_host
from tests.factories import add_customer
from tests.outbox.factories import OUTBOX, T0, Clock, add_run, queue, rows_of, workspace

WORKER = OutboxWorker.__table__  # type: ignore[attr-defined]


def _worker(connection: Any, worker_id: str, *, host: str, pid: int, heartbeat_at: dt.datetime) -> None:
    connection.execute(
        insert(WORKER).values(id=worker_id, host=host, pid=pid, started_at=T0, heartbeat_at=heartbeat_at)
    )


def _hold(connection: Any, customers: list[int], worker_id: str, state: str) -> None:
    connection.execute(
        update(OUTBOX)
        .where(OUTBOX.c.customer_id.in_(customers))
        .values(state=state, claimed_by=worker_id, attempts=1, updated_at=T0)
    )


def _reaped() -> int:
    """The pid of a process that has ended (and was reaped)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_rows_of_dead_workers_are_settled_and_live_workers_are_left_alone(  # type: ignore[no-untyped-def]
    db, write_config, tmp_path: Path
) -> None:
    config = workspace(write_config, tmp_path)
    now = T0 + dt.timedelta(minutes=10)
    with db.begin() as connection:
        ids = [add_customer(connection, email=f"c{n}@example.ru", consent_email=True) for n in range(6)]
        run = add_run(connection)
        queue(connection, run)
        _worker(connection, "killed", host=this_host(), pid=_reaped(), heartbeat_at=now)
        _worker(connection, "silent", host="elsewhere", pid=1, heartbeat_at=now - dt.timedelta(minutes=3))
        _worker(connection, "busy", host="elsewhere", pid=1, heartbeat_at=now - dt.timedelta(seconds=20))
        _hold(connection, ids[0:1], "killed", states.SENDING)
        _hold(connection, ids[1:2], "killed", states.COMMITTING)
        _hold(connection, ids[2:3], "silent", states.SENDING)
        _hold(connection, ids[3:4], "silent", states.COMMITTING)
        _hold(connection, ids[4:5], "busy", states.SENDING)
        _hold(connection, ids[5:6], "busy", states.COMMITTING)

    summary = recover(db, config, now=now)

    assert sorted(summary.dead_workers) == ["killed", "silent"]
    assert (summary.requeued, summary.recovered_sent) == (2, 2)
    rows = rows_of(db, run)
    for customer in (ids[0], ids[2]):
        row = rows[(customer, 0)]
        assert (row.state, row.claimed_by, row.detail) == (states.QUEUED, None, REQUEUED)
    for customer in (ids[1], ids[3]):
        row = rows[(customer, 0)]
        assert (row.state, row.detail, row.sent_at) == (states.SENT, RECOVERED_SENT, T0)
        # the Message-ID the dead worker gave it: the same key, the same installation
        assert row.reference == message_id(
            f"{run}:{customer}:0", "shop.example", installation=installation_id(db)
        )
        assert row.unit_cost == Decimal("0.40")
    assert rows[(ids[4], 0)].state == states.SENDING and rows[(ids[5], 0)].state == states.COMMITTING
    assert beat(db, "silent", now) is False  # declared dead: its next heartbeat tells it to stop
    assert beat(db, "busy", now) is True


class JournalingChannel:
    """Marks every message committing before it 'hands it over', all at once; may fail after that."""

    name = "email"

    def __init__(self, fail_after_commit: bool = False) -> None:
        self.fail_after_commit = fail_after_commit
        self.handed_over: list[str] = []

    async def send(
        self, messages: Sequence[OutgoingMessage], *, journal: SendJournal | None = None
    ) -> list[DeliveryResult]:
        assert journal is not None
        half = messages[: len(messages) // 2]
        await asyncio.gather(*(journal.committing(m.key) for m in half))
        self.handed_over += [m.key for m in half]
        if self.fail_after_commit:
            raise ConnectionResetError("the connection broke after the point of no return")
        await asyncio.gather(*(journal.committing(m.key) for m in messages[len(half) :]))
        self.handed_over += [m.key for m in messages[len(half) :]]
        return [DeliveryResult(m.key, DeliveryStatus.SENT, reference=m.key) for m in messages]

    async def close(self) -> None:
        pass


def _journal_writes(db: Any) -> list[str]:
    statements: list[str] = []

    @event.listens_for(db, "before_cursor_execute")
    def seen(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        if statement.startswith("UPDATE outbox SET state") and re.search(
            r"RETURNING (outbox\.)?id$", statement
        ):
            statements.append(statement)

    return statements


def test_concurrent_commits_share_one_journal_write(db, write_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = workspace(write_config, tmp_path)
    with db.begin() as connection:
        for n in range(10):
            add_customer(connection, email=f"c{n}@example.ru", consent_email=True)
        run = add_run(connection)
        queue(connection, run)
    writes = _journal_writes(db)
    channel = JournalingChannel()
    summary = drain(db, config, channels={"email": channel}, until_idle=True, clock=Clock())
    assert summary.sent == 10 and len(channel.handed_over) == 10
    assert len(writes) == 2  # five keys per group commit, two groups
    assert {row.state for row in rows_of(db, run).values()} == {states.SENT}


def test_a_channel_failing_after_the_point_of_no_return_never_sends_those_again(  # type: ignore[no-untyped-def]
    db, write_config, tmp_path: Path
) -> None:
    config = workspace(write_config, tmp_path)
    with db.begin() as connection:
        ids = [add_customer(connection, email=f"c{n}@example.ru", consent_email=True) for n in range(4)]
        run = add_run(connection)
        queue(connection, run)
    channel = JournalingChannel(fail_after_commit=True)
    summary = drain(db, config, channels={"email": channel}, until_idle=True, clock=Clock())

    rows = rows_of(db, run)
    handed = {int(key.split(":")[1]) for key in channel.handed_over}
    assert (summary.sent, summary.retrying) == (2, 2) and len(handed) == 2
    for customer in ids:
        row = rows[(customer, 0)]
        if customer in handed:
            assert (row.state, row.detail) == (states.SENT, RECOVERED_SENT)
        else:
            assert row.state == states.QUEUED and "the connection broke" in row.detail


def test_the_journal_refuses_keys_its_worker_does_not_hold(db, write_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    workspace(write_config, tmp_path)
    with db.begin() as connection:
        mine = add_customer(connection, email="m@example.ru")
        theirs = add_customer(connection, email="t@example.ru")
        run = add_run(connection)
        queue(connection, run)
        _hold(connection, [mine], "me", states.SENDING)
        _hold(connection, [theirs], "someone else", states.SENDING)
    ids = {(r.customer_id): r.id for r in rows_of(db, run).values()}
    journal = OutboxJournal(db, "me", clock=Clock())
    journal.track({"mine": ids[mine], "theirs": ids[theirs]})

    async def commit_both() -> list[Any]:
        return await asyncio.gather(
            journal.committing("mine"), journal.committing("theirs"), return_exceptions=True
        )

    ok, refused = asyncio.run(commit_both())
    assert ok is None and isinstance(refused, LookupError)
    with pytest.raises(LookupError, match="not being sent"):
        asyncio.run(journal.committing("unknown"))
    rows = rows_of(db, run)
    assert rows[(mine, 0)].state == states.COMMITTING and rows[(theirs, 0)].state == states.SENDING
