"""The database: engines and sessions (SQLite by default, PostgreSQL by URL), the schema's migrations.

* :mod:`~engine.db.engines`: engines, sessions and write transactions, work serialised by name;
* :mod:`~engine.db.schema`: create or upgrade the schema (``crm init``) with ``migrations/`` (Alembic);
  the installation id that tells this database from every other.
"""

from __future__ import annotations

from engine.db.engines import make_engine, require_schema, serialised, write_transaction
from engine.db.schema import head_revision, installation_id, upgrade

__all__ = [
    "head_revision",
    "installation_id",
    "make_engine",
    "require_schema",
    "serialised",
    "upgrade",
    "write_transaction",
]
