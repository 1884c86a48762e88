"""Customer references in import rows: an external id, an email or a phone, resolved in bulk.

A row names its customer by external id (``customer.external_id``, else a
source record key of any source naming one customer), email or phone, in
separate columns or one ``customer`` column (an ``@`` makes it an email,
otherwise an external id, else also a phone number). The first given
reference that names a customer decides; a reference that names several
customers is refused. The purchase and response imports both match customers
this way.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select

from engine.customers.importing.normalise import clean_text, parse_email, parse_phone
from engine.customers.importing.reader import Cell
from engine.errors import FieldError
from engine.models import CUSTOMER, SOURCE_RECORD

References = dict[tuple[str, str], int | None]
"""(kind, value) of a customer reference -> customer id (None: it names several customers)."""


@dataclass(frozen=True)
class CustomerReference:
    """How one row names its customer (normalised: email lower-case, phone E.164)."""

    external_id: str | None = None
    email: str | None = None
    phone: str | None = None

    def given(self) -> list[tuple[str, str]]:
        """The (kind, value) pairs given, in the order they are tried."""
        pairs = (("external_id", self.external_id), ("email", self.email), ("phone", self.phone))
        return [(kind, value) for kind, value in pairs if value]


def generic_reference(cell: Cell, region: str) -> CustomerReference:
    """A ``customer`` cell: an email if it has an ``@``, else an external id (and a phone if it is one)."""
    text = clean_text(cell)
    if "@" in text:
        return CustomerReference(email=parse_email(cell))
    if len(text) > 200:
        raise FieldError("longer than 200 characters")
    phone = None
    with suppress(FieldError):  # not a phone number: the external id alone
        phone = parse_phone(cell, region)
    return CustomerReference(external_id=text, phone=phone)


def row_reference(values: Mapping[str, Any]) -> CustomerReference:
    """A row's reference from its parsed cells: each ``customer_*`` column, else the ``customer`` one.

    ``values`` maps ``customer_external_id``, ``customer_email`` and
    ``customer_phone`` to parsed values and ``customer`` to a
    :func:`generic_reference`; any may be missing.
    """
    given = values.get("customer", CustomerReference())
    return CustomerReference(
        external_id=values.get("customer_external_id") or given.external_id,
        email=values.get("customer_email") or given.email,
        phone=values.get("customer_phone") or given.phone,
    )


def resolve_references(connection: Connection, references: Iterable[CustomerReference]) -> References:
    """Every reference's customer, in a handful of queries (one per kind of reference)."""
    items = list(references)
    found: References = {}
    external = sorted({r.external_id for r in items if r.external_id})
    if external:
        query = select(CUSTOMER.c.external_id, CUSTOMER.c.id).where(CUSTOMER.c.external_id.in_(external))
        for key, customer_id in connection.execute(query):
            found[("external_id", key)] = customer_id
        rest = [key for key in external if ("external_id", key) not in found]
        if rest:
            by_key: dict[str, set[int]] = defaultdict(set)
            query = select(SOURCE_RECORD.c.source_key, SOURCE_RECORD.c.customer_id).where(
                SOURCE_RECORD.c.source_key.in_(rest)
            )
            for key, customer_id in connection.execute(query):
                by_key[key].add(customer_id)
            for key, ids in by_key.items():
                found[("external_id", key)] = ids.pop() if len(ids) == 1 else None
    for kind, values in (
        ("email", {r.email for r in items if r.email}),
        ("phone", {r.phone for r in items if r.phone}),
    ):
        if values:
            column = CUSTOMER.c[kind]
            query = select(column, func.min(CUSTOMER.c.id)).where(column.in_(sorted(values))).group_by(column)
            for value, customer_id in connection.execute(query):
                found[(kind, value)] = customer_id
    return found


def customer_of(reference: CustomerReference, found: References) -> tuple[int | None, str | None]:
    """(customer id, None), or (None, why not): unknown, or naming several customers."""
    given = reference.given()
    for kind, value in given:
        if (kind, value) in found:
            customer_id = found[(kind, value)]
            if customer_id is None:
                return None, f"customer: {value!r} names several customers"
            return customer_id, None
    if given:
        described = ", ".join(f"{kind} {value!r}" for kind, value in given)
        return None, f"customer: unknown customer ({described})"
    return None, None
