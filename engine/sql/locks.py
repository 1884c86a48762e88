"""A lock one process holds for its whole life, spelled per database: one holder at a time, others wait.

* PostgreSQL: a session advisory lock (``pg_advisory_lock``) taken on a
  connection of its own. A second process, on any host, queues on the same
  lock as a hot standby; when the first process dies its connection closes,
  PostgreSQL releases the lock and the standby gets it at once. The lock
  connection sets TCP keepalives on both ends, so a holder whose host
  vanishes is noticed within a minute rather than hours.
* SQLite (one host by nature): an exclusive ``flock`` on a file beside the
  database (``crm.db.<purpose>-lock``); the kernel releases it when the
  process dies, however it dies.

Either way the holder writes who it is (host and pid) where a waiting
process can read it, and can check that it still holds the lock.
:func:`process_lock` picks the one for the database.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import time
from pathlib import Path

from sqlalchemy import URL, Connection, Engine, create_engine, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import NullPool

from engine.errors import DatabaseError
from engine.sql.dialect import spelling


class AdvisoryLock:
    """PostgreSQL: ``pg_advisory_lock`` on a dedicated connection."""

    def __init__(self, url: URL, keys: tuple[int, int], who: str, *, purpose: str) -> None:
        self.who = who
        self.keys = {"a": keys[0], "b": keys[1]}
        self.purpose = purpose
        self._engine: Engine = create_engine(
            url,
            poolclass=NullPool,
            connect_args={
                "application_name": f"crm {purpose} {who}"[:63],
                "keepalives": 1,
                "keepalives_idle": 10,
                "keepalives_interval": 5,
                "keepalives_count": 3,
            },
        )
        self._connection: Connection | None = None
        self._held = False

    def _connect(self) -> Connection:
        if self._connection is None:
            connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            # the server side too: a holder whose host vanished is dropped within ~25 s
            for setting in (
                "tcp_keepalives_idle = 10",
                "tcp_keepalives_interval = 5",
                "tcp_keepalives_count = 3",
            ):
                connection.exec_driver_sql(f"SET {setting}")
            self._connection = connection
        return self._connection

    def acquire(self, timeout: float) -> bool:
        try:
            return self._acquire(timeout)
        except DBAPIError as exc:
            raise DatabaseError(f"cannot take the {self.purpose} lock: {str(exc.orig).strip()}") from exc

    def _acquire(self, timeout: float) -> bool:
        connection = self._connect()
        keys = self.keys
        if timeout <= 0:
            self._held = bool(connection.execute(text("SELECT pg_try_advisory_lock(:a, :b)"), keys).scalar())
            return self._held
        connection.exec_driver_sql(f"SET lock_timeout = '{max(1, int(timeout * 1000))}ms'")
        try:
            connection.execute(text("SELECT pg_advisory_lock(:a, :b)"), keys)
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) != "55P03":  # lock_not_available: still held by another
                raise
            connection.rollback()
            return False
        finally:
            if not connection.invalidated:
                connection.exec_driver_sql("SET lock_timeout = 0")
        self._held = True
        return True

    def holder(self) -> str | None:
        try:
            return self._holder()
        except DBAPIError as exc:
            reason = str(exc.orig).strip()
            raise DatabaseError(f"cannot see who holds the {self.purpose} lock: {reason}") from exc

    def _holder(self) -> str | None:
        row = (
            self._connect()
            .execute(
                text(
                    "SELECT a.application_name, a.client_addr, a.backend_start FROM pg_locks l"
                    " JOIN pg_stat_activity a ON a.pid = l.pid"
                    " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :a AND l.objid = :b"
                    " AND l.objsubid = 2"
                    " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                ),
                self.keys,
            )
            .first()
        )
        if row is None:
            return None
        name = (row.application_name or "").removeprefix(f"crm {self.purpose} ") or "a session"
        where = f" from {row.client_addr}" if row.client_addr else ""
        since = (
            f", since {row.backend_start.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC"
            if row.backend_start
            else ""
        )
        return f"{name}{where}{since}"

    def check(self) -> None:
        if not self._held or self._connection is None:
            raise DatabaseError(f"the {self.purpose} lock is not held")
        try:
            held = self._connection.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND pid = pg_backend_pid() AND classid = :a AND objid = :b AND objsubid = 2"
                ),
                self.keys,
            ).scalar()
        except DBAPIError as exc:
            self._held = False
            reason = f"the lock connection failed ({exc.orig})"
            raise DatabaseError(f"lost the {self.purpose} lock: {reason}") from exc
        if not held:
            self._held = False
            raise DatabaseError(f"lost the {self.purpose} lock: PostgreSQL no longer lists it as held")

    def release(self) -> None:
        if self._connection is not None:
            try:
                if self._held and not self._connection.invalidated:
                    self._connection.execute(text("SELECT pg_advisory_unlock(:a, :b)"), self.keys)
                self._connection.close()
            except DBAPIError:
                pass  # the connection is gone, and the lock with it
            self._connection = None
        self._held = False
        self._engine.dispose()


class FileLock:
    """SQLite: an exclusive ``flock`` on a file beside the database."""

    def __init__(self, path: Path, who: str, *, purpose: str) -> None:
        self.path = path
        self.who = who
        self.purpose = purpose
        self._fd: int | None = None

    def _try(self) -> bool:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            reason = f"{self.path}: {exc.strerror}"
            raise DatabaseError(f"cannot open the {self.purpose} lock file {reason}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.fstat(fd).st_ino != os.stat(self.path).st_ino:  # the file was replaced meanwhile
                raise BlockingIOError
        except (BlockingIOError, FileNotFoundError):
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{self.who}, since {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC\n".encode())
        self._fd = fd
        return True

    def acquire(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self._try():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        return True

    def holder(self) -> str | None:
        try:
            text_ = self.path.read_text(encoding="utf-8").strip()
        except OSError:
            return None
        return text_ or None

    def check(self) -> None:
        if self._fd is None:
            raise DatabaseError(f"the {self.purpose} lock is not held")
        try:
            same = os.fstat(self._fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            raise DatabaseError(f"lost the {self.purpose} lock: {self.path} was removed or replaced")

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None


def process_lock(engine: Engine, keys: tuple[int, int], who: str, *, purpose: str) -> AdvisoryLock | FileLock:
    """The lock ``keys`` (PostgreSQL) or the file ``<database>.<purpose>-lock`` (SQLite) of ``engine``."""
    if spelling(engine, postgresql=True, sqlite=False):
        return AdvisoryLock(engine.url, keys, who, purpose=purpose)
    database = engine.url.database
    if not database or database == ":memory:":
        raise DatabaseError(f"the {purpose} needs a database that outlives it: a SQLite file or PostgreSQL")
    path = Path(database).expanduser().resolve()
    return FileLock(path.with_name(f"{path.name}.{purpose}-lock"), who, purpose=purpose)
