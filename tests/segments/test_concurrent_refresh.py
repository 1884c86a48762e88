"""Two refreshes at once wait for each other: on PostgreSQL they used to write the same metrics side by side.

Without the lock, two ``refresh_metrics`` started together on PostgreSQL
fail with a unique violation on ``customer_metrics`` (both delete the old
rows, then both insert the new ones); ``refresh_all`` holds a transaction
advisory lock for the whole refresh (:func:`engine.db.serialised`).
"""

from __future__ import annotations

import datetime as dt
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from engine.config.checked import load_config
from engine.models.tables import METRICS
from engine.segments.refresh import refresh_all
from tests.cli.test_cli import CRM, ROOT
from tests.factories import add_customer, add_purchase, utc

CUSTOMERS = 300
AS_OF = dt.date(2026, 3, 1)


def _shop(db: Engine) -> None:
    with db.begin() as connection:
        for n in range(CUSTOMERS):
            customer = add_customer(connection, email=f"c{n}@example.ru")
            add_purchase(connection, customer, utc(2026, 1, 1 + n % 28), "100")


def _together(work: Callable[[], object], times: int = 2) -> list[str]:
    """Run ``work`` on ``times`` threads released at once; the errors they met."""
    errors: list[str] = []
    start = threading.Barrier(times)

    def run() -> None:
        start.wait()
        try:
            work()
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=run) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return errors


def _metrics(db: Engine) -> int:
    with db.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(METRICS)).scalar_one())


def test_refreshes_at_once_wait_for_each_other(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    config = load_config(write_config())
    _shop(db)
    for _ in range(3):
        assert _together(lambda: refresh_all(db, config, as_of=AS_OF)) == []
    assert _metrics(db) == CUSTOMERS


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_crm_refresh_processes_at_once(db: Engine, write_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The command as users ran it: two at once, one used to crash with a unique violation."""
    write_config()
    _shop(db)
    for _ in range(2):
        processes = [
            subprocess.Popen(
                [str(CRM), "refresh", "--as-of", AS_OF.isoformat()],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        for process in processes:
            _out, err = process.communicate(timeout=300)
            assert process.returncode == 0, err
    assert _metrics(db) == CUSTOMERS
