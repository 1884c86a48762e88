"""The token bucket paces sends to ``rate_per_second``; the worker claims no more than a second's worth."""

from __future__ import annotations

import asyncio
from pathlib import Path

from engine.channels import MemoryChannel
from engine.outbox import drain
from engine.outbox.rate_limit import TokenBucket
from tests.factories import add_customer
from tests.outbox.factories import Clock, add_run, queue, workspace


class FakeTime:
    """A monotonic clock that only moves when someone sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_full_bucket_gives_a_burst_then_paces_to_the_rate() -> None:
    time = FakeTime()
    bucket = TokenBucket(10, clock=time.clock, sleep=time.sleep)

    async def take() -> list[float]:
        return [await bucket.acquire(n) for n in (10, 5, 5, 1)]

    assert asyncio.run(take()) == [0.0, 0.5, 0.5, 0.1]
    time.now += 10  # idle: the bucket refills, but never beyond one second's worth
    assert asyncio.run(take()) == [0.0, 0.5, 0.5, 0.1]


def test_a_batch_larger_than_the_bucket_waits_for_its_debt() -> None:
    time = FakeTime()
    bucket = TokenBucket(0.5, clock=time.clock, sleep=time.sleep)  # one message every two seconds

    async def take() -> list[float]:
        return [await bucket.acquire(1) for _ in range(3)]

    assert asyncio.run(take()) == [0.0, 2.0, 2.0]


def test_the_worker_claims_at_most_a_seconds_worth_at_a_time(db, write_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = workspace(write_config, tmp_path, email="rate_per_second = 2")
    with db.begin() as connection:
        for n in range(5):
            add_customer(connection, email=f"c{n}@example.ru", consent_email=True)
        queue(connection, add_run(connection))
    summary = drain(db, config, channels={"email": MemoryChannel()}, until_idle=True, clock=Clock())
    assert (summary.sent, summary.batches) == (5, 3)
