"""``GET /health``: is the database reachable, with the schema this version expects, and taking writes?

200 when all three hold; 503 (with the reason) when the database cannot be
reached, its schema is missing or not at the newest migration, or it refuses
writes (a read-only SQLite file, a PostgreSQL role or transaction set read
only, a read-only replica, a role without the privilege, a full disk). The
write is a probe that changes nothing and is rolled back
(:func:`engine.sql.probe_write`); a SQLite database busy with another writer
does take writes, and is ok. No key is needed: load balancers and monitors
call it.
"""

from __future__ import annotations

from functools import lru_cache

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError

from engine.db import head_revision
from engine.errors import DatabaseUnavailableError
from engine.sql import probe_write

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """The state of the service."""

    status: str = Field(description="ok, or unavailable", examples=["ok"])
    database: str = Field(description="reachable, or why not (also: refuses writes)", examples=["reachable"])
    schema_revision: str | None = Field(description="the migration the database is at", examples=["0007"])
    expected_revision: str = Field(description="the newest migration of this version", examples=["0007"])


@lru_cache(maxsize=1)
def _head() -> str:
    return head_revision()


def _first_line(error: BaseException | None) -> str:
    lines = str(error).strip().splitlines() if error is not None else []
    return lines[0] if lines else "unknown reason"


def _refused_writes(connection: Connection) -> str | None:
    """Why the database refuses writes, or None when it takes them (the probe is rolled back)."""
    try:
        probe_write(connection, "alembic_version")
    except DatabaseUnavailableError as exc:
        if exc.kind == "locked":
            return None  # another process is writing: the database takes writes
        return f"reachable, refuses writes: {_first_line(exc.__cause__ or exc)}"
    finally:
        connection.rollback()
    return None


@router.get(
    "/health",
    response_model=Health,
    summary="Database reachable, schema up to date, writes taken",
    responses={
        503: {
            "model": Health,
            "description": "database unreachable, schema not up to date, or the database refuses writes",
        }
    },
)
def health(request: Request, response: Response) -> Health:
    """200 when the database answers, its schema is at the newest migration and it takes writes, else 503."""
    expected = _head()
    try:
        engine = request.app.state.engine
        with engine.connect() as connection:
            revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
            connection.rollback()
            refused = _refused_writes(connection) if revision == expected else None
    except DatabaseUnavailableError as exc:
        response.status_code = 503
        return Health(
            status="unavailable",
            database=f"unreachable: {_first_line(exc.__cause__ or exc)}",
            schema_revision=None,
            expected_revision=expected,
        )
    except SQLAlchemyError as exc:
        reason = _first_line(getattr(exc, "orig", None) or exc)
        missing = "alembic_version" in reason
        response.status_code = 503
        return Health(
            status="unavailable",
            database="reachable, no schema: run crm init" if missing else f"unreachable: {reason}",
            schema_revision=None,
            expected_revision=expected,
        )
    if revision != expected:
        response.status_code = 503
        return Health(
            status="unavailable",
            database="reachable, schema not up to date: run crm init",
            schema_revision=revision,
            expected_revision=expected,
        )
    if refused is not None:
        response.status_code = 503
        return Health(
            status="unavailable", database=refused, schema_revision=revision, expected_revision=expected
        )
    return Health(status="ok", database="reachable", schema_revision=revision, expected_revision=expected)
