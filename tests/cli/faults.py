"""Faults of the environment, made for real: databases and folders that refuse writes.

How each fault is made (the tests may run as root, and root ignores file
permissions, so ``chmod`` alone proves nothing there):

* a read-only SQLite database: the URL ``sqlite:///file:PATH?mode=ro&uri=true``
  opens the file read only (SQLite's own ``mode=ro``: every write fails with
  ``SQLITE_READONLY``, for root too); a SQLite *file* without write
  permission: ``chmod 0444`` for a normal user, the immutable attribute
  (``chattr +i``) for root;
* a read-only PostgreSQL database: a login role made for the test with
  ``ALTER ROLE ... SET default_transaction_read_only = on`` and every
  privilege on the tables, so only the read-only transactions refuse the
  writes (``25006``); a role with ``SELECT`` only lacks the privilege (``42501``);
* a folder that refuses new files: ``chmod 0555`` for a normal user,
  ``chattr +i`` for root (both probed: the test is skipped only where neither
  makes a write fail); a file in the way of a folder needs no privilege at all.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from engine.sql import sqlite_file

PASSWORD = "crm-test-role"


def _writes_fail(folder: Path) -> bool:
    probe = folder / f".probe-{secrets.token_hex(4)}"
    try:
        probe.write_bytes(b"x")
    except OSError:
        return True
    probe.unlink()
    return False


def _immutable(path: Path, on: bool) -> bool:
    chattr = shutil.which("chattr")
    if chattr is None:
        return False
    done = subprocess.run([chattr, "+i" if on else "-i", str(path)], capture_output=True, check=False)
    return done.returncode == 0


@contextmanager
def refusing_writes(path: Path) -> Iterator[None]:
    """While inside, no file can be created in the folder ``path`` (or the file ``path`` cannot be written).

    ``chmod`` for a normal user, ``chattr +i`` for root; skips the test where neither works.
    """
    mode = stat.S_IMODE(path.stat().st_mode)
    made = ""
    if os.geteuid() != 0:
        path.chmod(0o555 if path.is_dir() else 0o444)
        made = "chmod"
    elif _immutable(path, True):
        made = "chattr"
    try:
        folder = path if path.is_dir() else path.parent
        if not made or (path.is_dir() and not _writes_fail(folder)):
            pytest.skip(f"cannot make {path} refuse writes here (root without chattr +i)")
        yield
    finally:
        if made == "chattr":
            _immutable(path, False)
        elif made == "chmod":
            path.chmod(mode)


def read_only_sqlite(url: str) -> str:
    """The URL opening the SQLite file of ``url`` read only (SQLite's ``mode=ro``, refused even for root)."""
    path = sqlite_file(url)
    assert path is not None
    return f"sqlite:///file:{path}?mode=ro&uri=true"


@contextmanager
def postgres_role(url: str, *, read_only: bool = False, select_only: bool = False) -> Iterator[str]:
    """A login role on the database of ``url``, made for the test and dropped after it; yields its URL.

    ``read_only``: its transactions are read only (``default_transaction_read_only = on``), though it
    holds every privilege on the tables; ``select_only``: it may only read them.
    """
    role = f"crm_test_{secrets.token_hex(4)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    grants = "SELECT" if select_only else "SELECT, INSERT, UPDATE, DELETE, TRUNCATE"
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'")
        connection.exec_driver_sql(f"GRANT USAGE ON SCHEMA public TO {role}")
        connection.exec_driver_sql(f"GRANT {grants} ON ALL TABLES IN SCHEMA public TO {role}")
        if not select_only:
            sequences = "ALL SEQUENCES IN SCHEMA public"
            connection.exec_driver_sql(f"GRANT USAGE, SELECT, UPDATE ON {sequences} TO {role}")
        if read_only:
            connection.exec_driver_sql(f"ALTER ROLE {role} SET default_transaction_read_only = on")
    try:
        yield make_url(url).set(username=role, password=PASSWORD).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :role"),
                {"role": role},
            )
            connection.exec_driver_sql(f"DROP OWNED BY {role}")
            connection.exec_driver_sql(f"DROP ROLE {role}")
        admin.dispose()


@contextmanager
def read_only_url(db_url: str) -> Iterator[str]:
    """The URL of the database of ``db_url`` as a connection that may read but not write."""
    if db_url.startswith("sqlite"):
        yield read_only_sqlite(db_url)
        return
    with postgres_role(db_url, read_only=True) as url:
        yield url


def leftovers(*folders: Path) -> list[Path]:
    """Temporary files the engine may have left in ``folders`` (``.part``, probes)."""
    return [
        path
        for folder in folders
        if folder.is_dir()
        for path in folder.iterdir()
        if path.name.endswith((".part", ".probe"))
    ]
