"""Per-customer metrics and scores, refreshed set-based inside the database."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import Numeric
from sqlmodel import Field, SQLModel

from engine.sql import Money, UtcDateTime


class CustomerMetrics(SQLModel, table=True):
    """The built-in metrics of one customer, as of ``as_of``.

    ``days_since_last_order`` is counted to ``as_of`` (the business date of the
    last refresh); RFM scores are quintiles 1..5 (5 best) among buyers; the ABC
    class cuts the customers ranked by revenue at cumulative revenue shares.
    """

    __tablename__ = "customer_metrics"

    customer_id: int = Field(foreign_key="customer.id", primary_key=True)
    orders_count: int = 0
    refunds_count: int = 0
    total_spent: Decimal = Field(default=Decimal(0), sa_type=Money, nullable=False)
    margin_total: Decimal | None = Field(default=None, sa_type=Money)
    first_order_at: dt.datetime | None = Field(default=None, sa_type=UtcDateTime)
    last_order_at: dt.datetime | None = Field(default=None, sa_type=UtcDateTime)
    days_since_last_order: int | None = None
    avg_order_value: Decimal | None = Field(default=None, sa_type=Money)
    orders_in_window: int = 0
    recency_score: int | None = None
    frequency_score: int | None = None
    monetary_score: int | None = None
    rfm: str | None = Field(default=None, max_length=3)
    abc_class: str | None = Field(default=None, max_length=1)
    lifecycle_stage: str = Field(default="visitor", max_length=16)
    as_of: dt.date
    refreshed_at: dt.datetime = Field(sa_type=UtcDateTime, nullable=False)


class CustomerMetricValue(SQLModel, table=True):
    """The value of one config-defined metric (``[metrics.custom.NAME]``) for one customer."""

    __tablename__ = "customer_metric_value"

    name: str = Field(primary_key=True, max_length=100)
    customer_id: int = Field(foreign_key="customer.id", primary_key=True)
    value: Decimal | None = Field(default=None, sa_type=Numeric(18, 4))


class CustomerScore(SQLModel, table=True):
    """The points of one score (``[scores.NAME]``) for one customer."""

    __tablename__ = "customer_score"

    name: str = Field(primary_key=True, max_length=100)
    customer_id: int = Field(foreign_key="customer.id", primary_key=True)
    points: int = 0
