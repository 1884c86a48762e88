"""suppression list

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 17:51:05.266565
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import engine.sql.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "suppression",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("address", sa.String(length=500), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.String(length=1000), nullable=True),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("created_at", engine.sql.types.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("suppression", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_suppression_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index("ux_suppression_address", ["channel", "address"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("suppression", schema=None) as batch_op:
        batch_op.drop_index("ux_suppression_address")
        batch_op.drop_index(batch_op.f("ix_suppression_customer_id"))

    op.drop_table("suppression")
