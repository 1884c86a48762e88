"""Custom events about customers (``crm event``, the Python API, later the HTTP API).

A campaign with ``on_event = "cart_abandoned"`` contacts the members of its
segment who had that event since its previous run. An event may carry an
idempotency key per source (the shop's own id): recording the same key again
returns the stored event and changes nothing; the same key with different
content is refused, so a retry can never be mistaken for a new event.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from engine.clock import utcnow
from engine.errors import ConfigValueError, IdempotencyConflictError
from engine.models import EVENT

_NAME = re.compile(r"^[a-z0-9_.-]{1,100}$")


@dataclass(frozen=True)
class RecordedEvent:
    """An event as stored; ``created`` is False when the key had been recorded before."""

    id: int
    customer_id: int
    name: str
    occurred_at: dt.datetime
    created: bool


def _same(row: Any, customer_id: int, name: str, data: dict[str, Any]) -> bool:
    return bool(row.customer_id == customer_id and row.name == name and dict(row.data or {}) == data)


def record_event(
    engine: Engine,
    customer_id: int,
    name: str,
    *,
    occurred_at: dt.datetime | None = None,
    data: dict[str, Any] | None = None,
    source: str = "api",
    key: str | None = None,
) -> RecordedEvent:
    """Record event ``name`` for ``customer_id``; idempotent on (source, key)."""
    if not _NAME.match(name):
        raise ConfigValueError("event", "name", f"{name!r} is not an event name (a-z, 0-9, _ . -)")
    occurred = occurred_at or utcnow()
    if occurred.tzinfo is None:
        raise ConfigValueError(
            "event", "occurred_at", "a time with a zone is needed (e.g. 2026-12-01T10:00+03:00)"
        )
    values = {
        "customer_id": customer_id,
        "name": name,
        "occurred_at": occurred,
        "source": source,
        "key": key,
        "data": data or {},
        "recorded_at": utcnow(),
    }
    try:
        with engine.begin() as connection:
            new_id = connection.execute(insert(EVENT).values(**values).returning(EVENT.c.id)).scalar_one()
        return RecordedEvent(new_id, customer_id, name, occurred, created=True)
    except IntegrityError:
        if key is None:
            raise
    with engine.connect() as connection:
        row = connection.execute(select(EVENT).where(EVENT.c.source == source, EVENT.c.key == key)).one()
    if not _same(row, customer_id, name, data or {}):
        raise IdempotencyConflictError.event(source, key, row.id)
    return RecordedEvent(row.id, row.customer_id, row.name, row.occurred_at, created=False)
