"""``crm worker`` with a Maildir or call-list folder it cannot write: it stops with exit 1, nothing is lost.

The batch goes back to ``queued`` as it was (the attempt not counted),
nothing is recorded as sent that was not written, and the message names the
setting, the folder and what to fix. Once the folder is fixed, the next
worker sends every message. The faults are real (tests/cli/faults.py): a
file where the folder should be, and a folder that refuses new files
(chmod, or chattr +i for root).
"""

from __future__ import annotations

import csv
from pathlib import Path

from engine.models import outbox as states
from tests.cli.faults import refusing_writes
from tests.cli.test_cli import crm
from tests.factories import add_customer
from tests.outbox.factories import add_run, queue, rows_of, workspace
from tests.outbox.sending import just_now

ALL_DAY = {"CRM_CHANNELS__CALL__WINDOW": "00:00-23:59"}  # calls are due whatever the hour of the test


def _stopped(result, setting: str, folder: Path, reason: str) -> None:  # type: ignore[no-untyped-def]
    message = " ".join(result.stderr.split())
    assert result.returncode == 1, result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    assert f"error: {setting} {folder}: {reason}" in message, message
    assert "stay queued and none was recorded as sent" in message


def _all_waiting(db, run: int, count: int) -> None:  # type: ignore[no-untyped-def]
    rows = list(rows_of(db, run).values())
    assert len(rows) == count
    for row in rows:
        assert (row.state, row.attempts, row.claimed_by, row.sent_at) == (states.QUEUED, 0, None, None)
        assert row.detail.startswith("not sent: ")


def test_a_maildir_that_cannot_be_written_keeps_every_message(db, write_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    workspace(write_config, tmp_path)
    now = just_now()
    with db.begin() as connection:
        for n in range(3):
            add_customer(connection, email=f"a{n}@example.ru", consent_email=True)
        run = add_run(connection, scheduled_for=now)
        queue(connection, run, scheduled_at=now)
    maildir = tmp_path / "maildir"

    maildir.write_text("a file where the Maildir should be", encoding="utf-8")
    _stopped(crm("worker", "--until-idle"), "channels.email.maildir", maildir, f"{maildir} is a file")
    _all_waiting(db, run, 3)
    maildir.unlink()

    for folder in ("tmp", "new", "cur"):
        (maildir / folder).mkdir(parents=True)
    with refusing_writes(maildir / "tmp"):
        _stopped(crm("worker", "--until-idle"), "channels.email.maildir", maildir, "permission denied")
    _all_waiting(db, run, 3)
    assert list((maildir / "new").iterdir()) == [] and list((maildir / "tmp").iterdir()) == []

    fixed = crm("worker", "--until-idle")
    assert fixed.returncode == 0, fixed.stderr
    assert len(list((maildir / "new").iterdir())) == 3
    assert {row.state for row in rows_of(db, run).values()} == {states.DELIVERED}
    assert {row.attempts for row in rows_of(db, run).values()} == {1}


def test_a_call_folder_that_cannot_be_written_keeps_every_call(db, write_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    workspace(write_config, tmp_path)
    now = just_now()
    with db.begin() as connection:
        for n in range(2):
            add_customer(connection, phone=f"+7916123000{n}", consent_call=True)
        run = add_run(connection, scheduled_for=now)
        queue(connection, run, channel="call", step=1, scheduled_at=now)
    calls = tmp_path / "calls"
    calls.write_text("a file where the call lists should be", encoding="utf-8")
    stopped = crm("worker", "--until-idle", "--channel", "call", env=ALL_DAY)
    _stopped(stopped, "channels.call.folder", calls, f"{calls} is a file")
    _all_waiting(db, run, 2)

    calls.unlink()
    fixed = crm("worker", "--until-idle", "--channel", "call", env=ALL_DAY)
    assert fixed.returncode == 0, fixed.stderr
    assert {row.state for row in rows_of(db, run).values()} == {states.SENT}
    [listed] = list(calls.glob("calls-*.csv"))
    with listed.open(encoding="utf-8-sig", newline="") as handle:
        keys = [row["key"] for row in csv.DictReader(handle, delimiter=";")]
    assert sorted(keys) == sorted(f"{run}:{customer}:1" for customer, _step in rows_of(db, run))
