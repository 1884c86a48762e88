"""One scheduler at a time: a lock held for the life of the ``crm scheduler`` process.

The lock is :func:`engine.sql.locks.process_lock`: on PostgreSQL a session
advisory lock, so a second scheduler, on any host, queues on it as a hot
standby and gets it at once when the first process dies; on SQLite (one host
by nature) an exclusive ``flock`` on ``crm.db.scheduler-lock`` beside the
database, which the kernel releases however the process dies.

Either way the holder writes who it is (host and pid) where a waiting
scheduler can read it, and checks every few seconds that it still holds the
lock; a scheduler that lost it stops rather than fire beside another.
"""

from __future__ import annotations

import os
import socket
from typing import Protocol

from sqlalchemy import Engine

from engine.sql import process_lock

#: the advisory lock's two keys: "crm\0" and 1 for the scheduler
LOCK_KEYS = (0x63726D00, 1)


def identity() -> str:
    """This process as other schedulers read it: ``host pid 1234``."""
    return f"{socket.gethostname()} pid {os.getpid()}"


class SchedulerLock(Protocol):
    """The lock that makes one scheduler fire while others wait."""

    def acquire(self, timeout: float) -> bool:
        """Take the lock, waiting at most ``timeout`` seconds (0: do not wait); True when taken."""
        ...

    def holder(self) -> str | None:
        """Who holds the lock now, as they described themselves, if anyone is known to."""
        ...

    def check(self) -> None:
        """Raise :class:`DatabaseError` unless this process still holds the lock."""
        ...

    def release(self) -> None:
        """Give the lock up (also when it was never taken)."""
        ...


def scheduler_lock(engine: Engine, who: str | None = None) -> SchedulerLock:
    """The lock for the database of ``engine``: advisory on PostgreSQL, a file beside SQLite."""
    return process_lock(engine, LOCK_KEYS, who or identity(), purpose="scheduler")
