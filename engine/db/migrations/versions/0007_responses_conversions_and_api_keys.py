"""responses, conversions and api keys

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 01:52:13.808577
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import engine.sql.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.String(length=200), nullable=False),
        sa.Column("created_at", engine.sql.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", engine.sql.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", engine.sql.types.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        sa.UniqueConstraint("prefix"),
    )
    op.create_table(
        "conversion",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("purchase_id", sa.Integer(), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("campaign", sa.String(length=100), nullable=False),
        sa.Column("variant", sa.String(length=100), nullable=True),
        sa.Column("group", sa.String(length=10), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("contact_at", engine.sql.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("ordered_at", engine.sql.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("revenue", engine.sql.types.Money(precision=14, scale=2), nullable=False),
        sa.Column("margin", engine.sql.types.Money(precision=14, scale=2), nullable=True),
        sa.Column("model", sa.String(length=20), nullable=False),
        sa.Column("attributed_at", engine.sql.types.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
        ),
        sa.ForeignKeyConstraint(
            ["outbox_id"],
            ["outbox.id"],
        ),
        sa.ForeignKeyConstraint(
            ["purchase_id"],
            ["purchase.id"],
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["campaign_run.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("purchase_id"),
    )
    with op.batch_alter_table("conversion", schema=None) as batch_op:
        batch_op.create_index("ix_conversion_outbox", ["outbox_id"], unique=False)
        batch_op.create_index("ix_conversion_run", ["run_id", "group", "variant"], unique=False)

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_reference", ["reference"], unique=False)

    with op.batch_alter_table("contact_response", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("source", sa.String(length=100), nullable=False, server_default="engine")
        )
        batch_op.add_column(sa.Column("key", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("code", sa.String(length=50), nullable=True))
        batch_op.add_column(sa.Column("score", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("campaign", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("channel", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("import_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "recorded_at",
                engine.sql.types.UtcDateTime(timezone=True),
                nullable=False,
                server_default=sa.func.current_timestamp(),
            )
        )
        batch_op.drop_index(batch_op.f("ix_contact_response_customer_id"))
        batch_op.create_index("ix_contact_response_customer", ["customer_id", "occurred_at"], unique=False)
        batch_op.create_index("ux_contact_response_key", ["source", "key"], unique=True)
        batch_op.create_foreign_key("fk_contact_response_import", "import_batch", ["import_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_reference")

    with op.batch_alter_table("contact_response", schema=None) as batch_op:
        batch_op.drop_constraint("fk_contact_response_import", type_="foreignkey")
        batch_op.drop_index("ux_contact_response_key")
        batch_op.drop_index("ix_contact_response_customer")
        batch_op.create_index(batch_op.f("ix_contact_response_customer_id"), ["customer_id"], unique=False)
        batch_op.drop_column("recorded_at")
        batch_op.drop_column("import_id")
        batch_op.drop_column("channel")
        batch_op.drop_column("campaign")
        batch_op.drop_column("score")
        batch_op.drop_column("code")
        batch_op.drop_column("key")
        batch_op.drop_column("source")

    with op.batch_alter_table("conversion", schema=None) as batch_op:
        batch_op.drop_index("ix_conversion_run")
        batch_op.drop_index("ix_conversion_outbox")

    op.drop_table("conversion")
    op.drop_table("api_key")
