"""Recording one response: the one writer of ``contact_response`` rows outside set-based imports."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

from sqlalchemy import Connection, insert

from engine.clock import utcnow
from engine.models import RESPONSE
from engine.sql import insert_ignoring


@dataclass(frozen=True)
class NewResponse:
    """A response to record; ``(source, key)``, when a key is given, records it at most once."""

    customer_id: int
    kind: str
    occurred_at: dt.datetime
    outbox_id: int | None = None
    source: str = "engine"
    key: str | None = None
    code: str | None = None
    score: int | None = None
    campaign: str | None = None
    channel: str | None = None
    detail: str | None = None
    import_id: int | None = None


def record_response(connection: Connection, response: NewResponse) -> bool:
    """Insert ``response``; False when its ``(source, key)`` was recorded before (nothing changes)."""
    if response.occurred_at.tzinfo is None:
        raise ValueError("a response's time must be aware")
    values = {**asdict(response), "recorded_at": utcnow()}
    if response.key is None:
        connection.execute(insert(RESPONSE).values(**values))
        return True
    statement = insert_ignoring(connection, RESPONSE, index_elements=["source", "key"]).values(**values)
    return connection.execute(statement.returning(RESPONSE.c.id)).first() is not None
