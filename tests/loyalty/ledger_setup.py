"""A small programme for ledger tests, and helpers to read what the ledger holds."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from engine.config.checked import load_config
from engine.loyalty.ledger.audit import audit
from engine.loyalty.programme.definition import Programme
from engine.models.tables import ACCOUNT, ENTRY, LOT
from tests.factories import add_customer

SHOP = """
[loyalty.programmes.shop]
point_value = 0.5
pending_days = 14
expiry = "365d"
transferable = true
hold_timeout = "15m"
rewards = { coffee = 150 }
earn = [
  { name = "base", when = "true", points = "amount * 0.05" },
  { name = "cosmetics x2", when = "category == 'cosmetics'", multiplier = 2 },
]
"""


def shop_programme(write_config: Callable[..., Path], extra: str = "", **changes: str) -> Programme:
    """The ``shop`` programme (5 % of the amount, cosmetics double, 14 days pending, 365 days to live).

    ``changes`` replace or add top-level keys of the programme: ``pending_days="0"``.
    """
    text = SHOP
    for key, value in changes.items():
        line = re.compile(rf"^{key} = .*$", re.M)
        if line.search(text):
            text = line.sub(f"{key} = {value}", text)
        else:
            text = text.replace(
                "[loyalty.programmes.shop]\n", f"[loyalty.programmes.shop]\n{key} = {value}\n"
            )
    config = load_config(write_config(text + extra))
    return config.programmes["shop"]


def customers(db: Engine, *names: str) -> list[str]:
    """Customers with these external ids."""
    with db.begin() as connection:
        for name in names:
            add_customer(connection, external_id=name)
    return list(names)


def buckets(db: Engine, customer: str, programme: str = "shop") -> dict[str, int]:
    """The cached buckets of a member."""
    from engine.models.tables import CUSTOMER

    with db.connect() as connection:
        row = connection.execute(
            select(ACCOUNT)
            .join(CUSTOMER, CUSTOMER.c.id == ACCOUNT.c.customer_id)
            .where(CUSTOMER.c.external_id == customer, ACCOUNT.c.programme == programme)
        ).one()
    return {"available": row.available, "pending": row.pending, "held": row.held, "debt": row.debt}


def lots(db: Engine, customer: str) -> list[dict[str, Any]]:
    """The member's lots, oldest first."""
    from engine.models.tables import CUSTOMER

    with db.connect() as connection:
        rows = connection.execute(
            select(LOT)
            .join(ACCOUNT, ACCOUNT.c.id == LOT.c.account_id)
            .join(CUSTOMER, CUSTOMER.c.id == ACCOUNT.c.customer_id)
            .where(CUSTOMER.c.external_id == customer)
            .order_by(LOT.c.id)
        ).all()
    return [dict(row._mapping) for row in rows]


def entry_count(db: Engine) -> int:
    """How many entries the ledger holds."""
    with db.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(ENTRY)).scalar_one())


def assert_consistent(db: Engine) -> None:
    """The audit finds nothing."""
    report = audit(db)
    assert report.ok, report.problems
