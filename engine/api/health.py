"""``GET /health``: is the database reachable, and is its schema the one this version expects?

200 when both hold; 503 (with the reason) when the database cannot be
reached or its schema is missing or not at the newest migration. No key is
needed: load balancers and monitors call it.
"""

from __future__ import annotations

from functools import lru_cache

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from engine.db import head_revision

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """The state of the service."""

    status: str = Field(description="ok, or unavailable", examples=["ok"])
    database: str = Field(description="reachable, or why not", examples=["reachable"])
    schema_revision: str | None = Field(description="the migration the database is at", examples=["0007"])
    expected_revision: str = Field(description="the newest migration of this version", examples=["0007"])


@lru_cache(maxsize=1)
def _head() -> str:
    return head_revision()


@router.get(
    "/health",
    response_model=Health,
    summary="Database reachable and schema up to date",
    responses={503: {"model": Health, "description": "database unreachable or schema not up to date"}},
)
def health(request: Request, response: Response) -> Health:
    """200 when the database answers and its schema is at the newest migration, else 503."""
    expected = _head()
    try:
        engine = request.app.state.engine
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
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
    return Health(status="ok", database="reachable", schema_revision=revision, expected_revision=expected)
