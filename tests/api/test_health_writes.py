"""``GET /health`` is 503 while the database refuses writes, found by a write probe that changes nothing.

The faults are made as tests/cli/faults.py says: SQLite opened read only
(``mode=ro``), a PostgreSQL role whose transactions are read only, a
PostgreSQL role that may only read. A SQLite database busy with another
writer does take writes: it stays ok.
"""

from __future__ import annotations

import sqlite3

import httpx
import pytest
from sqlalchemy import Engine, select

from engine.api.app import create_app
from engine.config.checked import load_config
from engine.db.engines import make_engine
from engine.db.schema import head_revision
from engine.models.tables import INSTALLATION
from tests.cli.faults import postgres_role, read_only_url


def _health(serve_app, config, engine: Engine) -> httpx.Response:  # type: ignore[no-untyped-def]
    return httpx.get(serve_app(create_app(config, engine)) + "/health", timeout=30)


def test_health_is_503_while_the_database_refuses_writes(db, db_url: str, write_config, serve_app) -> None:  # type: ignore[no-untyped-def]
    config = load_config(write_config())
    with db.connect() as connection:
        before = connection.execute(select(INSTALLATION)).all()
    with read_only_url(db_url) as url:
        engine = make_engine(url)
        try:
            answer = _health(serve_app, config, engine)
        finally:
            engine.dispose()
    assert answer.status_code == 503, answer.text
    body = answer.json()
    assert body["status"] == "unavailable" and body["schema_revision"] == head_revision()
    assert body["database"].startswith("reachable, refuses writes: ")
    assert "read-only" in body["database"] or "readonly" in body["database"]
    with db.connect() as connection:  # the probe changed nothing
        assert connection.execute(select(INSTALLATION)).all() == before
    assert _health(serve_app, config, db).status_code == 200


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_health_is_503_for_a_role_that_may_only_read(db, db_url: str, write_config, serve_app) -> None:  # type: ignore[no-untyped-def]
    config = load_config(write_config())
    with postgres_role(db_url, select_only=True) as url:
        engine = make_engine(url)
        try:
            answer = _health(serve_app, config, engine)
        finally:
            engine.dispose()
    assert answer.status_code == 503
    assert answer.json()["database"].startswith("reachable, refuses writes: permission denied")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_health_is_ok_while_another_process_writes_sqlite(db, db_url: str, write_config, serve_app) -> None:  # type: ignore[no-untyped-def]
    config = load_config(write_config())
    writer = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # holds the write lock, as an import would
    try:
        answer = _health(serve_app, config, db)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert answer.status_code == 200, answer.text
    assert answer.json()["database"] == "reachable"
