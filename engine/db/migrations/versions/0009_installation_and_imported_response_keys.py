"""installation id; imported responses unique by content

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-09 10:00:00

* ``installation``: one row with 32 random hex digits, made here, so every
  database has its own, a new one as much as one upgraded from 0008. Message-IDs
  mix it in: the idempotency keys ``run:customer:step`` repeat in every
  database, the Message-IDs must not (RFC 5322).
* ``ux_contact_response_imported``: a response imported from a file
  (``import_id`` set) is unique by its content key, whatever ``--source`` the
  import named. Before, importing a file again under another source recorded
  each response a second time; those copies are removed first (the first
  recording of each response is kept), so the figures that counted them twice
  count them once.
"""

from __future__ import annotations

import datetime as dt
import secrets

import sqlalchemy as sa
from alembic import op

import engine.sql.types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

IMPORTED = "import_id IS NOT NULL"
RESPONSES = sa.table(
    "contact_response",
    sa.column("id", sa.Integer()),
    sa.column("key", sa.String(300)),
    sa.column("import_id", sa.Integer()),
)


def _remove_repeated_imports() -> None:
    """Delete every imported response whose key an earlier imported response already has."""
    imported = RESPONSES.c.import_id.is_not(None)
    first = (
        sa.select(RESPONSES.c.key, sa.func.min(RESPONSES.c.id).label("keep"))
        .where(imported, RESPONSES.c.key.is_not(None))
        .group_by(RESPONSES.c.key)
        .having(sa.func.count() > 1)
        .subquery("first")
    )
    copy = RESPONSES.alias("copy")
    repeated = (
        sa.select(copy.c.id)
        .join(first, first.c.key == copy.c.key)
        .where(copy.c.import_id.is_not(None), copy.c.id > first.c.keep)
    )
    op.get_bind().execute(RESPONSES.delete().where(RESPONSES.c.id.in_(repeated)))


def upgrade() -> None:
    installation = op.create_table(
        "installation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.String(length=32), nullable=False),
        sa.Column("created_at", engine.sql.types.UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_installation_one_row"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(
        installation, [{"id": 1, "uid": secrets.token_hex(16), "created_at": dt.datetime.now(dt.UTC)}]
    )
    _remove_repeated_imports()
    with op.batch_alter_table("contact_response", schema=None) as batch_op:
        batch_op.create_index(
            "ux_contact_response_imported",
            ["key"],
            unique=True,
            postgresql_where=sa.text(IMPORTED),
            sqlite_where=sa.text(IMPORTED),
        )


def downgrade() -> None:
    with op.batch_alter_table("contact_response", schema=None) as batch_op:
        batch_op.drop_index("ux_contact_response_imported")
    op.drop_table("installation")
