"""``crm scheduler`` as real processes on both databases: signals, the lock and its hot standby, reloads
applied by the running scheduler, one-offs fired or expired. No timing assertions: each wait polls the
log or the database until a generous deadline."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from engine.models import CampaignRun
from engine.models import outbox as states
from tests.cli.test_cli import CRM, crm
from tests.scheduler.test_scheduler import WEEKLY, campaign_text, workspace, write_campaigns

RUN = CampaignRun.__table__  # type: ignore[attr-defined]
DEADLINE = 90.0  # seconds: generous, only reached when something is broken


class SchedulerProcess:
    """A ``crm scheduler`` process whose log (stderr) goes to a file."""

    def __init__(self, log: Path, *args: str) -> None:
        self.log = log
        with log.open("wb") as stderr:
            self.process = subprocess.Popen(
                [str(CRM), "scheduler", *args], stdout=subprocess.DEVNULL, stderr=stderr, env=dict(os.environ)
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, pattern: str) -> str:
        """The first log line matching ``pattern``, once it is there."""
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            found = re.search(f".*{pattern}.*", self.text())
            if found:
                return found.group(0)
            if self.process.poll() is not None:
                code = self.process.returncode
                pytest.fail(f"scheduler {self.pid} exited ({code}) before {pattern!r}:\n{self.text()}")
            time.sleep(0.1)
        pytest.fail(f"no {pattern!r} in the log of scheduler {self.pid}:\n{self.text()}")

    def stop(self, signum: int = signal.SIGTERM) -> int:
        self.process.send_signal(signum)
        return self.process.wait(timeout=DEADLINE)


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Any]:
    """Start ``crm scheduler`` processes; any still running at the end is killed."""
    started: list[SchedulerProcess] = []

    def start(*args: str) -> SchedulerProcess:
        process = SchedulerProcess(tmp_path / f"scheduler-{len(started)}.log", *args)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.process.poll() is None:
            process.process.kill()
            process.process.wait()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_stop_the_scheduler_cleanly(
    db, write_config, tmp_path, spawn, signum: int
) -> None:  # type: ignore[no-untyped-def]
    workspace(write_config, tmp_path, WEEKLY)
    scheduler = spawn()
    scheduler.wait_for("scheduler started")
    assert scheduler.stop(signum) == 0
    log = scheduler.text()
    assert f"{signal.Signals(signum).name}: stopping" in log and "scheduler stopped" in log
    assert "Traceback" not in log
    again = crm("scheduler", "--once")  # the lock was given back
    assert again.returncode == 0, again.stderr


def test_a_second_scheduler_waits_as_hot_standby_and_takes_over_when_the_first_dies(
    db, write_config, tmp_path, spawn
) -> None:  # type: ignore[no-untyped-def]
    workspace(write_config, tmp_path, WEEKLY)
    first = spawn()
    first.wait_for("scheduler started")
    second = spawn()
    second.wait_for(f"waiting for the lock held by .*pid {first.pid}")
    assert "scheduler started" not in second.text()

    busy = crm("scheduler", "--once")
    assert busy.returncode == 1 and "a scheduler is running" in busy.stderr

    # a reload is applied by the scheduler that holds the lock
    write_campaigns(tmp_path / "campaigns", {"weekly": campaign_text('schedule = "0 11 * * MON"')})
    reload = crm("scheduler", "--reload")
    assert reload.returncode == 0, reload.stderr
    assert "applied by the running scheduler" in reload.stdout and f"pid {first.pid})" in reload.stdout
    assert "changed   campaign:weekly: cron '0 11 * * MON'" in reload.stdout
    first.wait_for("changed   campaign:weekly")

    first.process.kill()  # kill -9: no goodbye, the lock goes with the process (its connection)
    first.process.wait()
    second.wait_for(f"took over: .*pid {first.pid}")
    second.wait_for("scheduler started")

    write_campaigns(tmp_path / "campaigns", {"daily": campaign_text('schedule = "0 9 * * *"')})
    reload = crm("scheduler", "--reload")
    assert reload.returncode == 0, reload.stderr
    assert f"pid {second.pid})" in reload.stdout and "added     campaign:daily" in reload.stdout

    third = spawn()  # a standby stopped while it waits exits cleanly too
    third.wait_for(f"waiting for the lock held by .*pid {second.pid}")
    assert third.stop() == 0 and "stopped while waiting for the lock" in third.text()
    assert second.stop() == 0


def _runs(db: Engine) -> dict[str, tuple[dt.datetime, str]]:
    with db.connect() as connection:
        rows = connection.execute(select(RUN.c.campaign, RUN.c.scheduled_for, RUN.c.state)).all()
    return {key: (when, state) for key, when, state in rows}


def test_a_one_off_due_minutes_ago_fires_and_one_due_hours_ago_is_expired(db, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    recent, old = now - dt.timedelta(minutes=10), now - dt.timedelta(hours=3)
    workspace(
        write_config,
        tmp_path,
        {
            "recent": campaign_text(f"at = {recent.isoformat()}"),
            "old": campaign_text(f"at = {old.isoformat()}"),
        },
    )
    fired = crm("scheduler", "--once")
    assert fired.returncode == 0, fired.stderr
    assert _runs(db) == {"recent": (recent, states.RUN_QUEUED), "old": (old, states.RUN_EXPIRED)}
    assert "campaign old due" in fired.stderr and "max_lateness 1h" in fired.stderr

    again = crm("scheduler", "--once")  # both one-offs are done: nothing is added or fired again
    assert again.returncode == 0, again.stderr
    assert "finished  campaign:old" in again.stderr and "finished  campaign:recent" in again.stderr
    assert len(_runs(db)) == 2
