"""customers, purchases, metrics, scores, segments

Revision ID: 0001
Revises:
Create Date: 2026-11-22 15:42:34.566122
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import engine.sql.types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("first_name", sa.String(length=200), nullable=True),
        sa.Column("last_name", sa.String(length=200), nullable=True),
        sa.Column("middle_name", sa.String(length=200), nullable=True),
        sa.Column("company", sa.String(length=300), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("address", sa.String(length=500), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("language", sa.String(length=16), nullable=True),
        sa.Column("curator", sa.String(length=200), nullable=True),
        sa.Column("consent_email", sa.Boolean(), nullable=False),
        sa.Column("consent_email_at", engine.sql.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("consent_sms", sa.Boolean(), nullable=False),
        sa.Column("consent_sms_at", engine.sql.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("consent_call", sa.Boolean(), nullable=False),
        sa.Column("consent_call_at", engine.sql.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("consent_post", sa.Boolean(), nullable=False),
        sa.Column("consent_post_at", engine.sql.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("lifecycle_stage", sa.String(length=16), nullable=True),
        sa.Column("verified_at", engine.sql.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column(
            "attributes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("created_at", engine.sql.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", engine.sql.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("external_id"),
    )
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.create_index("ix_customer_email", ["email"], unique=False)
        batch_op.create_index("ix_customer_phone", ["phone"], unique=False)

    op.create_table(
        "import_batch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("path", sa.String(length=1000), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("started_at", engine.sql.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", engine.sql.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("inserted", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("merged", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("rejects_path", sa.String(length=1000), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "segment",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("rule", sa.String(), nullable=False),
        sa.Column("strategy", sa.String(length=20), nullable=True),
        sa.Column("rule_hash", sa.String(length=64), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("refreshed_at", engine.sql.types.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "customer_metric_value",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.Numeric(precision=18, scale=4), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
        ),
        sa.PrimaryKeyConstraint("name", "customer_id"),
    )
    op.create_table(
        "customer_metrics",
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("orders_count", sa.Integer(), nullable=False),
        sa.Column("refunds_count", sa.Integer(), nullable=False),
        sa.Column("total_spent", engine.sql.types.Money(precision=14, scale=2), nullable=False),
        sa.Column("margin_total", engine.sql.types.Money(precision=14, scale=2), nullable=True),
        sa.Column("first_order_at", engine.sql.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("last_order_at", engine.sql.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("days_since_last_order", sa.Integer(), nullable=True),
        sa.Column("avg_order_value", engine.sql.types.Money(precision=14, scale=2), nullable=True),
        sa.Column("orders_in_window", sa.Integer(), nullable=False),
        sa.Column("recency_score", sa.Integer(), nullable=True),
        sa.Column("frequency_score", sa.Integer(), nullable=True),
        sa.Column("monetary_score", sa.Integer(), nullable=True),
        sa.Column("rfm", sa.String(length=3), nullable=True),
        sa.Column("abc_class", sa.String(length=1), nullable=True),
        sa.Column("lifecycle_stage", sa.String(length=16), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("refreshed_at", engine.sql.types.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
        ),
        sa.PrimaryKeyConstraint("customer_id"),
    )
    op.create_table(
        "customer_score",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
        ),
        sa.PrimaryKeyConstraint("name", "customer_id"),
    )
    op.create_table(
        "customer_source_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("source_key", sa.String(length=400), nullable=False),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("data_hash", sa.String(length=64), nullable=False),
        sa.Column("import_id", sa.Integer(), nullable=True),
        sa.Column("line", sa.Integer(), nullable=True),
        sa.Column("first_seen_at", engine.sql.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", engine.sql.types.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
        ),
        sa.ForeignKeyConstraint(
            ["import_id"],
            ["import_batch.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("customer_source_record", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_customer_source_record_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index("ux_source_record_key", ["source", "source_key"], unique=True)

    op.create_table(
        "purchase",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("ordered_at", engine.sql.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("amount", engine.sql.types.Money(precision=14, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("category", sa.String(length=200), nullable=True),
        sa.Column("sku", sa.String(length=200), nullable=True),
        sa.Column("quantity", sa.Numeric(precision=12, scale=3), nullable=False),
        sa.Column("margin", engine.sql.types.Money(precision=14, scale=2), nullable=True),
        sa.Column("refund_of_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=100), nullable=True),
        sa.Column("import_id", sa.Integer(), nullable=True),
        sa.Column("created_at", engine.sql.types.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
        ),
        sa.ForeignKeyConstraint(
            ["import_id"],
            ["import_batch.id"],
        ),
        sa.ForeignKeyConstraint(
            ["refund_of_id"],
            ["purchase.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("external_id"),
    )
    with op.batch_alter_table("purchase", schema=None) as batch_op:
        batch_op.create_index("ix_purchase_customer_time", ["customer_id", "ordered_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_purchase_refund_of_id"), ["refund_of_id"], unique=False)

    op.create_table(
        "segment_membership",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("segment", sa.String(length=100), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("entered_at", engine.sql.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("left_at", engine.sql.types.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
        ),
        sa.ForeignKeyConstraint(
            ["segment"],
            ["segment.name"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("segment_membership", schema=None) as batch_op:
        batch_op.create_index("ix_membership_customer", ["customer_id"], unique=False)
        batch_op.create_index(
            "ux_membership_current",
            ["segment", "customer_id"],
            unique=True,
            sqlite_where=sa.text("left_at IS NULL"),
            postgresql_where=sa.text("left_at IS NULL"),
        )

    op.create_table(
        "segment_refresh",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("segment", sa.String(length=100), nullable=False),
        sa.Column("refreshed_at", engine.sql.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("entered", sa.Integer(), nullable=False),
        sa.Column("left", sa.Integer(), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["segment"],
            ["segment.name"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("segment_refresh", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_segment_refresh_segment"), ["segment"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("segment_refresh", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_segment_refresh_segment"))

    op.drop_table("segment_refresh")
    with op.batch_alter_table("segment_membership", schema=None) as batch_op:
        batch_op.drop_index(
            "ux_membership_current",
            sqlite_where=sa.text("left_at IS NULL"),
            postgresql_where=sa.text("left_at IS NULL"),
        )
        batch_op.drop_index("ix_membership_customer")

    op.drop_table("segment_membership")
    with op.batch_alter_table("purchase", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_purchase_refund_of_id"))
        batch_op.drop_index("ix_purchase_customer_time")

    op.drop_table("purchase")
    with op.batch_alter_table("customer_source_record", schema=None) as batch_op:
        batch_op.drop_index("ux_source_record_key")
        batch_op.drop_index(batch_op.f("ix_customer_source_record_customer_id"))

    op.drop_table("customer_source_record")
    op.drop_table("customer_score")
    op.drop_table("customer_metrics")
    op.drop_table("customer_metric_value")
    op.drop_table("segment")
    op.drop_table("import_batch")
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.drop_index("ix_customer_phone")
        batch_op.drop_index("ix_customer_email")

    op.drop_table("customer")
