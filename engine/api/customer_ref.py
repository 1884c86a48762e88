"""Which customer a request names: external id, email, phone or ``#id`` (as ``crm customers show``)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, or_, select

from engine.errors import ApiError, NotFoundError
from engine.models import CUSTOMER


@dataclass(frozen=True)
class Customer:
    """A customer found by a reference."""

    id: int
    external_id: str | None

    @property
    def ledger(self) -> int | str:
        """How the loyalty ledger names the customer (as ``crm loyalty`` does): external id, else id."""
        return self.external_id if self.external_id is not None else self.id

    @property
    def label(self) -> str:
        """The external id, else ``#<id>``."""
        return self.external_id if self.external_id is not None else f"#{self.id}"


def find_customer(engine: Engine, ref: str) -> Customer:
    """The customer ``ref`` names; an external id wins over an email or phone equal to it."""
    columns = (CUSTOMER.c.id, CUSTOMER.c.external_id)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        row = connection.execute(select(*columns).where(CUSTOMER.c.external_id == ref)).first()
        if row is not None:
            return Customer(int(row.id), row.external_id)
        if ref.startswith("#") and ref[1:].isascii() and ref[1:].isdigit() and int(ref[1:]) < 2**31:
            condition = CUSTOMER.c.id == int(ref[1:])
        else:
            condition = or_(CUSTOMER.c.email == ref.lower(), CUSTOMER.c.phone == ref)
        rows = connection.execute(select(*columns).where(condition).limit(2)).all()
    if not rows:
        raise NotFoundError("customer", ref)
    if len(rows) > 1:
        raise ApiError(422, "ambiguous_customer", f"{ref!r} names several customers: use the external id")
    return Customer(int(rows[0].id), rows[0].external_id)


__all__ = ["Customer", "find_customer"]
