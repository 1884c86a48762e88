"""campaign runs and outbox

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 18:06:25.858200
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import engine.sql.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaign_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign", sa.String(length=100), nullable=False),
        sa.Column("trigger", sa.String(length=20), nullable=False),
        sa.Column("scheduled_for", engine.sql.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("window_start", engine.sql.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.String(length=2000), nullable=True),
        sa.Column("segment", sa.String(length=100), nullable=False),
        sa.Column("strategy", sa.String(length=20), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("steps", sa.Integer(), nullable=False),
        sa.Column("preparation_cost", engine.sql.types.Money(precision=14, scale=2), nullable=False),
        sa.Column("config_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("campaign_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("started_at", engine.sql.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", engine.sql.types.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("campaign_run", schema=None) as batch_op:
        batch_op.create_index("ux_campaign_run_due", ["campaign", "scheduled_for"], unique=True)

    op.create_table(
        "outbox_worker",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("host", sa.String(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", engine.sql.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", engine.sql.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", engine.sql.types.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "customer_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("occurred_at", engine.sql.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=True),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("recorded_at", engine.sql.types.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("customer_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customer_event_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index("ix_customer_event_name", ["name", "occurred_at"], unique=False)
        batch_op.create_index("ux_customer_event_key", ["source", "key"], unique=True)

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("variant", sa.String(length=100), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("recipient", sa.String(length=500), nullable=True),
        sa.Column("scheduled_at", engine.sql.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("rank", sa.Float(), nullable=False),
        sa.Column("unit_cost", engine.sql.types.Money(precision=14, scale=2), nullable=False),
        sa.Column("contacts", engine.sql.types.Money(precision=14, scale=2), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(length=100), nullable=True),
        sa.Column("reference", sa.String(length=300), nullable=True),
        sa.Column("detail", sa.String(length=2000), nullable=True),
        sa.Column("created_at", engine.sql.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", engine.sql.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", engine.sql.types.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["campaign_run.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_claim", ["state", "channel", "scheduled_at"], unique=False)
        batch_op.create_index("ix_outbox_customer", ["customer_id", "channel", "scheduled_at"], unique=False)
        batch_op.create_index("ux_outbox_key", ["run_id", "customer_id", "step"], unique=True)

    op.create_table(
        "contact_response",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("occurred_at", engine.sql.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.String(length=2000), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
        ),
        sa.ForeignKeyConstraint(
            ["outbox_id"],
            ["outbox.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("contact_response", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contact_response_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index("ix_contact_response_outbox", ["outbox_id", "kind"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("contact_response", schema=None) as batch_op:
        batch_op.drop_index("ix_contact_response_outbox")
        batch_op.drop_index(batch_op.f("ix_contact_response_customer_id"))

    op.drop_table("contact_response")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ux_outbox_key")
        batch_op.drop_index("ix_outbox_customer")
        batch_op.drop_index("ix_outbox_claim")

    op.drop_table("outbox")
    with op.batch_alter_table("customer_event", schema=None) as batch_op:
        batch_op.drop_index("ux_customer_event_key")
        batch_op.drop_index("ix_customer_event_name")
        batch_op.drop_index(batch_op.f("ix_customer_event_customer_id"))

    op.drop_table("customer_event")
    op.drop_table("outbox_worker")
    with op.batch_alter_table("campaign_run", schema=None) as batch_op:
        batch_op.drop_index("ux_campaign_run_due")

    op.drop_table("campaign_run")
