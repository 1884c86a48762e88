"""Concurrent redemptions from several processes never overdraw an account.

On PostgreSQL, 1,000 redemptions of 70 points by 4 processes x 8 threads
(each process with its own engine) hit 20 accounts of 1,000 points, 50
requests each: every account affords exactly floor(1000 / 70) = 14, so exactly
14 succeed per account, the other 36 are refused with
InsufficientPointsError, and each success saw a different balance (the row
lock serialises them). Beside them, 24 keys are sent twice at the same
moment from two processes: the same request posts once and replays once; the
same key for two different members (16 of them) posts once and is refused
once as a conflict: the second insert of the key meets the first's unique
index, which ``run_command`` retries, so no IntegrityError escapes. On SQLite
a smaller run with 2 processes shows BEGIN IMMEDIATE serialises writers the
same way.

All workers start together on an event, after their connections are open.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from engine.config.checked import load_config
from engine.db.engines import make_engine
from engine.errors import IdempotencyConflictError, InsufficientPointsError
from engine.loyalty.ledger.audit import audit
from engine.loyalty.ledger.member_moves import adjust
from engine.loyalty.ledger.redemption import redeem
from engine.models.tables import ENTRY, OPERATION
from tests.factories import utc
from tests.loyalty.ledger_setup import buckets, customers, shop_programme

GIVEN = 1000  # points each account starts with
PRICE = 70  # points every redemption asks
AFFORDABLE = GIVEN // PRICE  # 14
SEEDED_AT = utc(2027, 3, 1, 9)
SPENT_AT = utc(2027, 3, 1, 10)


@dataclass(frozen=True)
class Plan:
    processes: int
    threads: int  # per process
    accounts: int  # contended accounts
    requests: int  # redemptions per contended account
    same_key_pairs: int  # a key sent twice with the same request, from two processes at once
    conflict_pairs: int  # a key sent for two different members, from two processes at once


POSTGRES = Plan(processes=4, threads=8, accounts=20, requests=50, same_key_pairs=8, conflict_pairs=16)
SQLITE = Plan(processes=2, threads=4, accounts=4, requests=20, same_key_pairs=2, conflict_pairs=2)

Job = tuple[str, str]  # (key, customer)


def _run_jobs(
    url: str,
    config_path: str,
    slices: list[list[Job]],
    ready: Any,
    go: Any,
    results: Any,
) -> None:
    """One process: its own engine, one thread per slice, all waiting for ``go``."""
    shop = load_config(Path(config_path)).programmes["shop"]
    engine = make_engine(url, pool_size=len(slices), max_overflow=0)
    warm = [engine.connect() for _ in slices]  # every thread finds an open connection
    for connection in warm:
        connection.close()
    outcomes: list[tuple[Any, ...]] = []

    def work(jobs: list[Job]) -> None:
        go.wait()
        for key, customer in jobs:
            started = time.monotonic()
            try:
                receipt = redeem(engine, shop, key=key, customer=customer, points=PRICE, now=SPENT_AT)
                outcome: tuple[Any, ...] = ("ok", receipt.available, receipt.replayed)
            except InsufficientPointsError as exc:
                outcome = ("insufficient", exc.available, False)
            except IdempotencyConflictError:
                outcome = ("conflict", None, False)
            except Exception as exc:  # anything else is a failure of the test
                outcome = ("error", f"{type(exc).__name__}: {exc}", False)
            outcomes.append((key, customer, *outcome, started, time.monotonic(), os.getpid()))

    threads = [threading.Thread(target=work, args=(jobs,)) for jobs in slices]
    for thread in threads:
        thread.start()
    ready.wait(timeout=120)
    for thread in threads:
        thread.join()
    engine.dispose()
    results.put(outcomes)


def _deal(plan: Plan) -> tuple[list[list[list[Job]]], dict[str, int], dict[str, list[str]]]:
    """Who sends what: contended redemptions shuffled over every thread, duplicates first in two processes.

    Returns the slices per process and thread, how many requests each contended
    account gets, and the customers each duplicated key is sent for.
    """
    rng = random.Random(5)
    contended = [(f"R-{a}-{n}", f"acct-{a}") for a in range(plan.accounts) for n in range(plan.requests)]
    rng.shuffle(contended)
    threads = plan.processes * plan.threads
    slices: list[list[list[Job]]] = [[[] for _ in range(plan.threads)] for _ in range(plan.processes)]
    duplicated: dict[str, list[str]] = {}
    for k in range(plan.same_key_pairs):
        duplicated[f"SAME-{k}"] = [f"dup-{k % 4}", f"dup-{k % 4}"]
    for k in range(plan.conflict_pairs):
        duplicated[f"CONFLICT-{k}"] = [f"dup-{k % 4}", f"dup-{(k + 1) % 4}"]
    for k, (key, whom) in enumerate(duplicated.items()):
        first, thread = k % plan.processes, (k // plan.processes) % plan.threads
        second = (first + 1) % plan.processes  # another process, at the same moment
        slices[first][thread].append((key, whom[0]))
        slices[second][thread].append((key, whom[1]))
    for n, job in enumerate(contended):
        slices[(n // plan.threads) % plan.processes][n % plan.threads].append(job)
    assert sum(len(s) for p in slices for s in p) == len(contended) + 2 * len(duplicated)
    assert threads == sum(len(p) for p in slices)
    return slices, {f"acct-{a}": plan.requests for a in range(plan.accounts)}, duplicated


def _race(url: str, config_path: str, plan: Plan) -> tuple[list[tuple[Any, ...]], float]:
    """Run every slice at once; returns the outcomes and the seconds from start to the last answer."""
    slices, _, _ = _deal(plan)
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(plan.processes + 1)
    go = context.Event()
    results = context.Queue()
    processes = [
        context.Process(target=_run_jobs, args=(url, config_path, slices[p], ready, go, results))
        for p in range(plan.processes)
    ]
    for process in processes:
        process.start()
    try:
        ready.wait(timeout=120)  # every process has its threads waiting on open connections
        go.set()
        outcomes = [row for _ in processes for row in results.get(timeout=300)]
    finally:
        for process in processes:
            process.join(timeout=60)
            if process.is_alive():  # pragma: no cover - a hung worker
                process.kill()
    assert all(process.exitcode == 0 for process in processes)
    elapsed = max(row[-2] for row in outcomes) - min(row[-3] for row in outcomes)
    return outcomes, elapsed


def _prepare(db: Engine, plan: Plan, write_config) -> str:  # type: ignore[no-untyped-def]
    shop_programme(write_config, pending_days="0")
    config_path = os.environ["CRM_CONFIG"]  # the file write_config wrote; each process loads it
    shop = load_config(Path(config_path)).programmes["shop"]
    members = [f"acct-{a}" for a in range(plan.accounts)] + [f"dup-{k}" for k in range(4)]
    customers(db, *members)
    for member in members:
        adjust(db, shop, key=f"seed-{member}", customer=member, points=GIVEN, reason="test", actor="ops",
               now=SEEDED_AT)  # fmt: skip
    return config_path


def _check(db: Engine, plan: Plan, outcomes: list[tuple[Any, ...]]) -> None:
    _, requests, duplicated = _deal(plan)
    errors = [row for row in outcomes if row[2] == "error"]
    assert not errors, errors[:5]
    assert len(outcomes) == sum(requests.values()) + 2 * len(duplicated)

    # contended accounts: exactly the affordable redemptions succeed, each on a different balance
    by_account: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for row in outcomes:
        if row[0].startswith("R-"):
            by_account[row[1]].append(row)
    for account, rows in by_account.items():
        kinds = Counter(row[2] for row in rows)
        expected = min(requests[account], AFFORDABLE)
        assert kinds == {"ok": expected, "insufficient": requests[account] - expected}, (account, kinds)
        balances = sorted((row[3] for row in rows if row[2] == "ok"), reverse=True)
        assert balances == [GIVEN - PRICE * n for n in range(1, expected + 1)], (account, balances)
        assert all(row[3] < PRICE for row in rows if row[2] == "insufficient"), account
        assert not any(row[4] for row in rows), "a fresh key was replayed"
        left = GIVEN - PRICE * expected
        assert buckets(db, account) == {"available": left, "pending": 0, "held": 0, "debt": 0}, account

    # duplicated keys: one posts; the same request replays, another member's is refused
    posted: Counter[str] = Counter()
    for key, whom in duplicated.items():
        rows = [row for row in outcomes if row[0] == key]
        assert len(rows) == 2, rows
        fresh = [row for row in rows if row[2] == "ok" and not row[4]]
        assert len(fresh) == 1, rows
        posted[fresh[0][1]] += 1
        other = next(row for row in rows if row is not fresh[0])
        if whom[0] == whom[1]:
            assert other[2] == "ok" and other[4] and other[3] == fresh[0][3], rows  # the stored receipt
        else:
            assert other[2] == "conflict", rows
    for k in range(4):
        member = f"dup-{k}"
        assert buckets(db, member)["available"] == GIVEN - PRICE * posted[member], member

    # the ledger: one operation per posted key, one entry each, and the audit finds nothing
    successes = sum(min(n, AFFORDABLE) for n in requests.values()) + len(duplicated)
    with db.connect() as connection:
        operations = connection.execute(
            select(func.count()).select_from(OPERATION).where(OPERATION.c.command == "redeem")
        ).scalar_one()
        entries = connection.execute(
            select(func.count(), func.sum(ENTRY.c.points)).where(ENTRY.c.kind == "redeem")
        ).one()
        keys = connection.execute(select(func.count(OPERATION.c.key.distinct()))).scalar_one()
        total = connection.execute(select(func.count()).select_from(OPERATION)).scalar_one()
    assert operations == successes
    assert tuple(entries) == (successes, -PRICE * successes)  # one lot per account: one entry per spend
    assert keys == total
    report = audit(db)
    assert report.ok, report.problems


def test_a_thousand_concurrent_redemptions_never_overdraw(db_url: str, db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    if db.dialect.name != "postgresql":
        pytest.skip("the 1,000-request race needs PostgreSQL's row locks; SQLite runs the small race below")
    config_path = _prepare(db, POSTGRES, write_config)
    outcomes, elapsed = _race(db_url, config_path, POSTGRES)
    _check(db, POSTGRES, outcomes)
    print(
        f"\n{len(outcomes)} redemptions by {POSTGRES.processes} x {POSTGRES.threads} threads: {elapsed:.2f} s"
    )


def test_sqlite_serialises_concurrent_redemptions(db_url: str, db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    if db.dialect.name != "sqlite":
        pytest.skip("the small race is for SQLite; PostgreSQL runs the 1,000-request race")
    config_path = _prepare(db, SQLITE, write_config)
    outcomes, elapsed = _race(db_url, config_path, SQLITE)
    _check(db, SQLITE, outcomes)
    print(f"\n{len(outcomes)} redemptions by {SQLITE.processes} x {SQLITE.threads} threads: {elapsed:.2f} s")
