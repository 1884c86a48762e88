"""Shared fixtures: one suite, two databases.

Every test that takes ``db`` runs twice, on a real SQLite file and on a real
PostgreSQL database. The PostgreSQL database is created for this test run
(``crm_test_<worker>_<random>``) and dropped at its end; between tests its
tables are truncated. PostgreSQL must be reachable (127.0.0.1:5432, or
``CRM_TEST_POSTGRES_URL``): the suite fails rather than skip it.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlmodel import SQLModel

import engine.models  # noqa: F401  (registers the tables)
from engine.db.engines import make_engine
from engine.db.schema import upgrade

ROOT = Path(__file__).resolve().parents[1]
SERVER_URL = os.environ.get("CRM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _server() -> Engine:
    return create_engine(SERVER_URL, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database of this test run, with the schema, dropped at the end."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"crm_test_{worker}_{secrets.token_hex(4)}"
    server = _server()
    try:
        with server.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # pragma: no cover - the machine's PostgreSQL is down
        pytest.fail(f"PostgreSQL at {SERVER_URL} is not reachable ({exc}); .ci/run starts it")
    url = SERVER_URL.rsplit("/", 1)[0] + "/" + name
    db = make_engine(url)
    upgrade(db)
    db.dispose()
    yield url
    with server.connect() as connection:
        connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = :n AND pid <> pg_backend_pid()"
            ),
            {"n": name},
        )
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    server.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file with the schema, copied for each test."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    db = make_engine(f"sqlite:///{path}")
    upgrade(db)
    with db.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db.dispose()
    return path


def _truncate(url: str) -> None:
    db = make_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with db.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    db.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """The URL of an empty database with the schema: SQLite file or PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "crm.db"
        shutil.copyfile(sqlite_template, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    _truncate(url)
    return url


@pytest.fixture
def db(db_url: str) -> Iterator[Engine]:
    """An engine on an empty database with the schema (both databases)."""
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def write_config(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Write a config.toml for the test database and point ``CRM_CONFIG`` at it.

    ``write_config(extra="...")`` appends TOML to the project's example config;
    ``write_config(text="...")`` replaces it.
    """

    def write(extra: str = "", *, text: str | None = None, name: str = "config.toml") -> Path:
        body = text if text is not None else (ROOT / "config.toml").read_text(encoding="utf-8") + extra
        path = tmp_path / name
        path.write_text(body, encoding="utf-8")
        monkeypatch.setenv("CRM_CONFIG", str(path))
        monkeypatch.setenv("CRM_DATABASE_URL", db_url)
        return path

    return write
