"""Alembic environment: the URL comes from the caller (``crm init``), never from a file."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import engine.models  # noqa: F401  (registers the tables)
from engine.sql.dialect import spelling

target_metadata = SQLModel.metadata
connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `crm init` (engine.db.schema.upgrade)")

context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=spelling(connection, postgresql=False, sqlite=True),  # SQLite alters tables by copying
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
