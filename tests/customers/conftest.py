"""Fixtures of the import tests: ``import_db`` is a real SQLite file or a real PostgreSQL database.

The PostgreSQL database (``crm_import_test_<random>``) is created once per
session and dropped at its end; its tables are truncated before each test.
SQLite gets a fresh copy of a migrated template file per test.
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
from engine.db import make_engine
from engine.schema import upgrade

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "imports"
IMPORT_SERVER_URL = os.environ.get(
    "CRM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="session")
def import_pg_url() -> Iterator[str]:
    """A throw-away PostgreSQL database with the schema, dropped when the session ends."""
    name = f"crm_import_test_{secrets.token_hex(4)}"
    server = create_engine(IMPORT_SERVER_URL, isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = IMPORT_SERVER_URL.rsplit("/", 1)[0] + "/" + name
    db = make_engine(url)
    upgrade(db)
    db.dispose()
    yield url
    with server.connect() as connection:
        connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :n AND pid <> pg_backend_pid()"
            ),
            {"n": name},
        )
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    server.dispose()


@pytest.fixture(scope="session")
def import_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test."""
    path = tmp_path_factory.mktemp("import-template") / "template.db"
    db = make_engine(f"sqlite:///{path}")
    upgrade(db)
    with db.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db.dispose()
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def import_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on an empty crm-engine schema: SQLite file or PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "crm.db"
        shutil.copy(request.getfixturevalue("import_sqlite_template"), path)
        db = make_engine(f"sqlite:///{path}")
    else:
        db = make_engine(request.getfixturevalue("import_pg_url"))
        tables = ", ".join(f'"{table.name}"' for table in SQLModel.metadata.sorted_tables)
        with db.begin() as connection:
            connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    yield db
    db.dispose()


@pytest.fixture
def import_fixtures() -> Path:
    """The folder of the committed sample import files."""
    return FIXTURES
