"""A token bucket: at most ``rate`` sends a second per channel, in bursts of at most one second's worth."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class TokenBucket:
    """``rate`` tokens a second, holding at most ``capacity`` (default: one second's worth).

    :meth:`acquire` takes ``n`` tokens and waits while the bucket is in
    debt, so a batch larger than the bucket is allowed and paid for by the
    wait before it. ``clock`` and ``sleep`` can be replaced (tests).
    """

    def __init__(
        self,
        rate: float,
        capacity: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = rate
        self.capacity = capacity if capacity is not None else max(1.0, rate)
        self.clock = clock
        self.sleep = sleep
        self._tokens = self.capacity
        self._at = clock()
        self._lock = asyncio.Lock()

    async def acquire(self, n: int = 1) -> float:
        """Take ``n`` tokens; return how long it waited for them (seconds)."""
        async with self._lock:
            now = self.clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
            self._at = now
            self._tokens -= n
            if self._tokens >= 0:
                return 0.0
            wait = -self._tokens / self.rate
            await self.sleep(wait)
            return wait
