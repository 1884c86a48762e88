"""Who can be reached on a channel, in SQL: consent, an address, and not on the suppression list.

The runner decides each audience member's state with these expressions
(``no_consent``, ``no_address``, ``suppressed``), and the budget plan counts
the reachable members of each segment with the very same ones, so plan and
run agree.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, true
from sqlalchemy.sql import Select

from engine.models import CUSTOMER, SUPPRESSION

#: the customer column holding the address of each channel (meetings are arranged by name)
RECIPIENT = {"email": "email", "sms": "phone", "call": "phone", "post": "address"}
CONSENT = {"email": "consent_email", "sms": "consent_sms", "call": "consent_call", "post": "consent_post"}


def recipient_expression(channel: str) -> ColumnElement[Any]:
    """The customer's address on ``channel`` (email, phone, postal address; a name for meetings)."""
    if channel in RECIPIENT:
        return CUSTOMER.c[RECIPIENT[channel]]
    # a meeting is arranged by the curator: the customer is named by company or name
    name = func.trim(func.coalesce(CUSTOMER.c.first_name, "") + " " + func.coalesce(CUSTOMER.c.last_name, ""))
    return func.coalesce(CUSTOMER.c.company, name)


def consent_expression(channel: str) -> ColumnElement[bool]:
    """True when the customer consents to ``channel`` (meetings need none)."""
    if channel in CONSENT:
        return CUSTOMER.c[CONSENT[channel]].is_(True)
    return true()


class Lookups:
    """Derived tables outer-joined to the audience, so each question is one hash join, not a subquery per row.

    A correlated ``EXISTS`` inside the state ``CASE`` runs once per customer, and
    a planner that believes a table empty (statistics not yet updated) scans it
    once per customer: quadratic. A derived table is read once.
    """

    def __init__(self) -> None:
        self.joins: list[tuple[Any, ColumnElement[bool]]] = []

    def has(self, query: Select[Any], name: str, key: ColumnElement[Any]) -> ColumnElement[bool]:
        """True when ``key`` is among the values of one-column ``query`` (made distinct)."""
        found = query.distinct().subquery(name)
        column = next(iter(found.c))
        self.joins.append((found, column == key))
        return column.is_not(None)

    def value(self, query: Select[Any], name: str, default: Any) -> ColumnElement[Any]:
        """The second column of ``query`` (keyed by customer_id, its first), or ``default``."""
        found = query.subquery(name)
        key, value = list(found.c)[:2]
        self.joins.append((found, key == CUSTOMER.c.id))
        return func.coalesce(value, default)

    def join(self, source: Any) -> Any:
        """``source`` with every lookup outer-joined."""
        for table, on in self.joins:
            source = source.outerjoin(table, on)
        return source


def suppressed_expression(
    channel: str, recipient: ColumnElement[Any], lookups: Lookups, *, name: str = "suppressed"
) -> ColumnElement[bool]:
    """True when the customer or their address is on ``channel``'s suppression list.

    ``name`` prefixes the derived tables, so several channels can be asked in one statement.
    """
    listed = SUPPRESSION.c.channel == channel
    by_customer = lookups.has(
        select(SUPPRESSION.c.customer_id).where(listed, SUPPRESSION.c.customer_id.is_not(None)),
        f"{name}_customer",
        CUSTOMER.c.id,
    )
    if channel == "meeting":
        return by_customer
    by_address = lookups.has(select(SUPPRESSION.c.address).where(listed), f"{name}_address", recipient)
    return or_(by_customer, by_address)
