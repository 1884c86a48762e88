"""SQL pieces the batch jobs build rows with inside ``INSERT ... SELECT`` (the same for both databases).

What the databases spell differently (JSON objects, SHA-256, ISO times) is in :mod:`engine.sql`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ColumnElement, Select, String, cast, literal

from engine.sql import UtcDateTime


def at(instant: dt.datetime) -> ColumnElement[dt.datetime]:
    """An instant as a bound parameter of the engine's UTC type."""
    return literal(instant, UtcDateTime())


def key(prefix: str, identifier: Any, suffix: str = "") -> ColumnElement[str]:
    """``<prefix><identifier><suffix>``: an idempotency key made from an id column."""
    made = literal(prefix, String) + cast(identifier, String)
    return made + literal(suffix, String) if suffix else made


def absent(lookup: Select[Any]) -> ColumnElement[bool]:
    """True when ``lookup`` (a correlated ``SELECT id ...``) finds no row.

    Written as ``(SELECT id ... LIMIT 1) IS NULL``: PostgreSQL runs that per
    row through the index, whatever its statistics say. A ``NOT EXISTS`` may
    be planned as an anti-join instead, which on tables not yet analysed
    (right after a large import) can scan every operation for every lot.
    """
    return lookup.limit(1).scalar_subquery().is_(None)
