"""the customer's city as a field of its own

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-10 10:00:00

``customer.city``: the importer's ``city`` column (город, town) is kept as a
field rules can name (``city == 'Казань'``), beside the postal address it is
also folded into for letters. Customers imported before keep it only in
their address until they are imported again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customer") as table:
        table.add_column(sa.Column("city", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customer") as table:
        table.drop_column("city")
