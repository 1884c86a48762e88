"""The send journal of a worker: a row becomes ``committing`` durably just before its point of no return.

A channel that can hand a message over without being able to see later that
it did (SMTP: the server has the message once it has read the final ``.``
of DATA) awaits :meth:`OutboxJournal.committing` just before that point.
Once it returns, a crash of the worker leaves the row ``committing``, and
recovery records it as sent instead of sending it again.

Group commit: the keys of all connections that reach the point within a few
milliseconds are marked by one ``UPDATE`` on a connection the journal keeps
(on SQLite under ``BEGIN IMMEDIATE``; on PostgreSQL with
``synchronous_commit = off``, since only crashes of workers matter here). The
write runs on the event loop's own thread, not in a pool thread: the time
between the commit and the final ``.`` is the one moment where a crash
loses a message (recorded sent, never handed over), and a pool thread would
stretch it by however long it waits to get the interpreter back.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterable, Mapping

from sqlalchemy import Connection, Engine, bindparam, update

from engine.clock import utcnow
from engine.errors import DatabaseError
from engine.models import COMMITTING, OUTBOX, SENDING
from engine.sql import begin_write, relax_durability, restore_durability


class OutboxJournal:
    """Implements :class:`engine.channels.base.SendJournal` over the outbox of one worker."""

    def __init__(
        self,
        engine: Engine,
        worker_id: str,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        gather_for: float = 0.002,
    ) -> None:
        self.engine = engine
        self.worker_id = worker_id
        self.clock = clock
        self.gather_for = gather_for
        self.committed: set[str] = set()  # keys recorded as past their point of no return
        self._ids: dict[str, int] = {}
        self._waiting: dict[str, list[asyncio.Future[None]]] = {}
        self._flusher: asyncio.Task[None] | None = None
        self._open: Connection | None = None
        self._mark = (
            update(OUTBOX)
            .where(
                OUTBOX.c.id.in_(bindparam("ids", expanding=True)),
                OUTBOX.c.claimed_by == bindparam("worker"),
                OUTBOX.c.state.in_((SENDING, COMMITTING)),
            )
            .values(state=COMMITTING, updated_at=bindparam("now"))
            .returning(OUTBOX.c.id)
        )

    def track(self, ids_by_key: Mapping[str, int]) -> None:
        """Keys (and their outbox rows) this worker is about to send."""
        self._ids.update(ids_by_key)

    def forget(self, keys: Iterable[str]) -> None:
        """Keys whose send is over."""
        for key in keys:
            self._ids.pop(key, None)
            self.committed.discard(key)

    async def committing(self, key: str) -> None:
        """Return once ``key`` is recorded as committing; raise if it is not (then do not hand it over)."""
        if key not in self._ids:
            raise LookupError(f"{key} is not being sent by worker {self.worker_id}")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(future)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        await asyncio.sleep(self.gather_for)
        while self._waiting:
            waiting, self._waiting = self._waiting, {}
            try:
                marked = self._write({self._ids[key] for key in waiting if key in self._ids})
            except Exception as exc:
                failure: BaseException = DatabaseError(f"cannot record sends as committing: {exc}")
                for futures in waiting.values():
                    for future in futures:
                        if not future.done():
                            future.set_exception(failure)
                continue
            for key, futures in waiting.items():
                if self._ids.get(key) in marked:
                    self.committed.add(key)
                    error: BaseException | None = None
                else:
                    error = LookupError(f"{key} is no longer claimed by worker {self.worker_id}")
                for future in futures:
                    if future.done():
                        continue
                    if error is None:
                        future.set_result(None)
                    else:
                        future.set_exception(error)

    def _connection(self) -> Connection:
        """The journal's own connection, kept for the whole drain: nothing to hand back after a commit."""
        if self._open is None or self._open.invalidated or self._open.closed:
            self._open = self.engine.connect()
            relax_durability(self._open)
            self._open.commit()
        return self._open

    def _write(self, ids: set[int]) -> set[int]:
        if not ids:
            return set()
        connection = self._connection()
        try:
            with begin_write(connection):
                marked = set(
                    connection.execute(
                        self._mark, {"ids": list(ids), "worker": self.worker_id, "now": self.clock()}
                    ).scalars()
                )
        except BaseException:
            self.close()
            raise
        return marked

    def close(self) -> None:
        """Give the connection back (with the database's usual durability)."""
        connection, self._open = self._open, None
        if connection is None or connection.closed:
            return
        try:
            connection.rollback()
            if not connection.invalidated:
                restore_durability(connection)
                connection.commit()
        finally:
            connection.close()
