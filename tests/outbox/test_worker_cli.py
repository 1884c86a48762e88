"""``crm worker`` and ``crm resend-failed`` through the real entry point: summary, SIGTERM, user errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from sqlalchemy import select, update

from engine.models import OutboxWorker
from engine.models import outbox as states
from tests.cli.test_cli import crm
from tests.factories import add_customer
from tests.outbox.factories import OUTBOX, add_run, queue, rows_of, workspace
from tests.outbox.sending import CRM, ROOT, just_now

WORKER = OutboxWorker.__table__  # type: ignore[attr-defined]


def test_worker_until_idle_sends_and_prints_a_summary(db, write_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    workspace(write_config, tmp_path)
    now = just_now()
    with db.begin() as connection:
        for n in range(3):
            add_customer(connection, first_name=f"Анна{n}", email=f"a{n}@example.ru", consent_email=True)
        add_customer(connection, email="quiet@example.ru", consent_email=False)
        run = add_run(connection, scheduled_for=now)
        queue(connection, run, scheduled_at=now)
    result = crm("worker", "--until-idle")
    assert result.returncode == 0, result.stderr
    assert "sent" in result.stdout and "stopped: nothing left to send" in result.stdout
    assert len(list((tmp_path / "maildir" / "new").iterdir())) == 3
    again = crm("worker", "--until-idle", "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["sent"] == 0
    assert {row.state for row in rows_of(db, run).values()} == {states.DELIVERED, states.NO_CONSENT}


def test_sigterm_stops_a_worker_cleanly_with_exit_code_0(db, write_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    workspace(write_config, tmp_path)
    worker = subprocess.Popen(
        [str(CRM), "worker"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while True:  # wait until it has registered: then it is draining
        with db.connect() as connection:
            if connection.execute(select(WORKER.c.id).where(WORKER.c.pid == worker.pid)).first():
                break
        assert worker.poll() is None and time.monotonic() < deadline, worker.communicate()
        time.sleep(0.05)
    os.kill(worker.pid, signal.SIGTERM)
    out, err = worker.communicate(timeout=120)
    assert worker.returncode == 0, err
    assert "stopped: asked to stop" in out
    with db.connect() as connection:
        stopped = connection.execute(select(WORKER.c.stopped_at).where(WORKER.c.pid == worker.pid)).scalar()
    assert stopped is not None


def test_resend_failed_queues_a_runs_failures_and_names_unknown_runs(
    db, write_config, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    workspace(write_config, tmp_path)
    with db.begin() as connection:
        add_customer(connection, email="f@example.ru")
        run = add_run(connection)
        queue(connection, run)
        connection.execute(update(OUTBOX).values(state=states.FAILED, attempts=3))
    result = crm("resend-failed", str(run))
    assert result.returncode == 0, result.stderr
    assert f"1 failed messages of run {run} queued again" in result.stdout
    [row] = rows_of(db, run).values()
    assert (row.state, row.attempts) == (states.QUEUED, 0)
    unknown = crm("resend-failed", "4242")
    assert unknown.returncode == 1 and "unknown run '4242'" in unknown.stderr
