"""The database: engines and sessions (SQLite by default, PostgreSQL by URL), the schema's migrations.

* :mod:`~engine.db.engines`: engines, sessions and write transactions;
* :mod:`~engine.db.schema`: create or upgrade the schema (``crm init``) with ``migrations/`` (Alembic).
"""

from __future__ import annotations

from engine.db.engines import make_engine, require_schema, write_transaction
from engine.db.schema import head_revision, upgrade

__all__ = [
    "head_revision",
    "make_engine",
    "require_schema",
    "upgrade",
    "write_transaction",
]
