"""The control group of a campaign: who is deliberately not contacted, so the rest can be compared with them.

Step 0 of a run draws exactly :func:`control_size` of the reachable rows,
those with the lowest :func:`control_order` (a stable hash of the customer
and the campaign, ties by customer id): a customer in control stays there
while the audience stays much the same. The runner draws it and the budget
plan counts it with the same function.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal
from typing import Any

from sqlalchemy import ColumnElement

from engine.models import OUTBOX
from engine.rules import bucket_expression

#: hash range that orders customers for the control group (the high 16 bits of the hash)
CONTROL_HASH = 65_536


def control_size(share: Decimal, reachable: int) -> int:
    """How many of ``reachable`` customers a control group of ``share`` holds.

    ``floor(share x reachable + 1/2)``: halves round up, so 10 % of 101 is 10
    and 10 % of 105 is 11. The runner and the budget plan both count with it.
    """
    if reachable <= 0 or share <= 0:
        return 0
    size = int((share * reachable + Decimal("0.5")).to_integral_value(rounding=ROUND_FLOOR))
    return min(size, reachable)


def control_order(key: str) -> ColumnElement[Any]:
    """Where a customer stands for the control group of campaign ``key``: lowest first."""
    return bucket_expression(OUTBOX.c.customer_id, CONTROL_HASH, f"control:{key}")
