"""Consent: which channels a customer agreed to be contacted on, and withdrawing it.

A customer's consent is a flag per channel (``consent_email``, ``consent_sms``,
``consent_call``, ``consent_post``) with the time it was last given or
withdrawn. The runner and the worker contact nobody without it
(:mod:`engine.contact_policy.reach`); an unsubscribe and a refused call
withdraw it (:func:`withdraw_consent`), and the customer's addresses go on
the suppression list with it (:func:`suppress_contact`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select, update

from engine.contact_policy.suppression import normalise_address
from engine.errors import ConfigError, NotFoundError
from engine.models import CONSENT_CHANNELS, CUSTOMER, SUPPRESSION
from engine.sql import insert_ignoring

#: the field of a customer holding the address of each channel
ADDRESS_FIELDS = {"email": "email", "sms": "phone", "call": "phone", "post": "address"}


@dataclass(frozen=True)
class Contacts:
    """A customer's addresses and consents: what an unsubscribe page shows and changes."""

    customer_id: int
    email: str | None
    phone: str | None
    address: str | None
    consents: dict[str, bool]


def contacts(connection: Connection, customer_id: int, *, lock: bool = False) -> Contacts:
    """The addresses and consents of ``customer_id`` (``lock``: row-locked until the transaction ends)."""
    query = select(
        CUSTOMER.c.id,
        CUSTOMER.c.email,
        CUSTOMER.c.phone,
        CUSTOMER.c.address,
        *(CUSTOMER.c[f"consent_{channel}"] for channel in CONSENT_CHANNELS),
    ).where(CUSTOMER.c.id == customer_id)
    row = connection.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFoundError("customer", str(customer_id))
    values = row._mapping
    return Contacts(
        customer_id,
        row.email,
        row.phone,
        row.address,
        {channel: bool(values[f"consent_{channel}"]) for channel in CONSENT_CHANNELS},
    )


def withdraw_consent(
    connection: Connection, found: Contacts, channels: tuple[str, ...], now: dt.datetime
) -> tuple[str, ...]:
    """Withdraw the consent of ``found`` on ``channels`` as of ``now``; the channels it was given on."""
    withdrawn = tuple(channel for channel in channels if found.consents[channel])
    if withdrawn:
        changes: dict[str, Any] = {"updated_at": now}
        for channel in withdrawn:
            changes |= {f"consent_{channel}": False, f"consent_{channel}_at": now}
        connection.execute(update(CUSTOMER).where(CUSTOMER.c.id == found.customer_id).values(**changes))
    return withdrawn


def suppress_contact(
    connection: Connection,
    found: Contacts,
    channel: str,
    *,
    reason: str,
    detail: str,
    source: str,
    now: dt.datetime,
    region: str,
) -> bool:
    """Put the address ``found`` has on ``channel`` on its suppression list; False when none went on.

    A customer without an address there, an address already listed, or a
    malformed one (which cannot be suppressed; its consent is withdrawn
    anyway) add nothing.
    """
    address = getattr(found, ADDRESS_FIELDS[channel])
    if not address:
        return False
    try:
        normalised = normalise_address(channel, address, region)
    except ConfigError:
        return False
    statement = insert_ignoring(connection, SUPPRESSION, index_elements=["channel", "address"]).values(
        channel=channel,
        address=normalised,
        customer_id=found.customer_id,
        reason=reason,
        detail=detail[:1000],
        source=source,
        created_at=now,
    )
    # RETURNING tells whether a row went in (psycopg's rowcount is -1 for an INSERT with RETURNING)
    return connection.execute(statement.returning(SUPPRESSION.c.id)).first() is not None
