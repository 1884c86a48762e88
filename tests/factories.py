"""Small builders for test data written straight into the tables."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, insert

from engine.models import Customer, Purchase

CUSTOMER = Customer.__table__  # type: ignore[attr-defined]
PURCHASE = Purchase.__table__  # type: ignore[attr-defined]
_numbers = itertools.count(1)


def utc(*args: int) -> dt.datetime:
    """An aware UTC datetime."""
    return dt.datetime(*args, tzinfo=dt.UTC)  # type: ignore[misc]


def add_customer(connection: Connection, **fields: Any) -> int:
    """Insert a customer; unspecified fields get harmless defaults. Returns the id."""
    n = next(_numbers)
    values: dict[str, Any] = {
        "external_id": f"T{n:06d}",
        "source": "test",
        "attributes": {},
        "created_at": utc(2025, 1, 1),
        "updated_at": utc(2025, 1, 1),
    }
    values.update(fields)
    return int(connection.execute(insert(CUSTOMER).values(**values).returning(CUSTOMER.c.id)).scalar_one())


def add_purchase(
    connection: Connection,
    customer_id: int,
    ordered_at: dt.datetime,
    amount: str | Decimal,
    **fields: Any,
) -> int:
    """Insert a purchase (a refund when ``refund_of_id`` is given: pass a negative amount)."""
    n = next(_numbers)
    values: dict[str, Any] = {
        "external_id": f"P{n:07d}",
        "customer_id": customer_id,
        "ordered_at": ordered_at,
        "amount": Decimal(amount),
        "currency": "RUB",
        "quantity": Decimal(1),
        "created_at": ordered_at,
    }
    values.update(fields)
    return int(connection.execute(insert(PURCHASE).values(**values).returning(PURCHASE.c.id)).scalar_one())
