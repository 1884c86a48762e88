"""What call outcomes change in the contact policy: wrong numbers and refusals.

* ``wrong_number``: the number called belongs to someone else. It goes on the
  suppression list of ``call`` and ``sms`` (reason ``wrong_number``), not
  linked to the customer: the customer keeps every consent, and a corrected
  number is called again.
* ``refused``: the customer does not want calls. ``consent_call`` is
  withdrawn as of the refusal (``consent_call_at`` = its time) and the number
  goes on the ``call`` suppression list (reason ``refused``), linked to the
  customer. A consent given after the refusal wins: nothing changes.

The number is the one the linked call was made to, else the customer's
phone. Applied set-based to the responses an import has just recorded, in
the import's transaction: a second import of the same file records nothing
and so changes nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    and_,
    exists,
    func,
    literal,
    not_,
    or_,
    select,
    update,
)

from engine.models import CUSTOMER, OUTBOX, RESPONSE, SUPPRESSION
from engine.sql import UtcDateTime, insert_ignoring, rowcount

WRONG_NUMBER = "wrong_number"
REFUSED = "refused"
_COLUMNS = ["channel", "address", "customer_id", "reason", "detail", "source", "created_at"]


@dataclass
class PolicyEffects:
    """What the contact policy changed: customers whose call consent was withdrawn, addresses suppressed."""

    consent_withdrawn: int = 0
    suppressed: int = 0


def _imported(import_id: int, first_id: int, last_id: int, kind: str) -> ColumnElement[bool]:
    return and_(
        RESPONSE.c.import_id == import_id, RESPONSE.c.id.between(first_id, last_id), RESPONSE.c.kind == kind
    )


def apply_contact_policy(
    connection: Connection, *, import_id: int, first_id: int, last_id: int, source: str, now: dt.datetime
) -> PolicyEffects:
    """Apply wrong numbers and refusals among responses ``first_id..last_id`` of import ``import_id``."""
    effects = PolicyEffects()
    refused = _imported(import_id, first_id, last_id, REFUSED)
    refusal = (
        select(func.max(RESPONSE.c.occurred_at))
        .where(refused, RESPONSE.c.customer_id == CUSTOMER.c.id)
        .correlate(CUSTOMER)
        .scalar_subquery()
    )
    withdrawn = connection.execute(
        update(CUSTOMER)
        .where(
            CUSTOMER.c.id.in_(select(RESPONSE.c.customer_id).where(refused)),
            CUSTOMER.c.consent_call.is_(True),
            or_(CUSTOMER.c.consent_call_at.is_(None), CUSTOMER.c.consent_call_at <= refusal),
        )
        .values(consent_call=False, consent_call_at=refusal, updated_at=now)
    )
    effects.consent_withdrawn = withdrawn.rowcount
    newer_consent = and_(
        CUSTOMER.c.consent_call.is_(True), CUSTOMER.c.consent_call_at > RESPONSE.c.occurred_at
    )
    for channel, kind, detail in (
        ("call", WRONG_NUMBER, "wrong number (call outcome)"),
        ("sms", WRONG_NUMBER, "wrong number (call outcome)"),
        ("call", REFUSED, "refused calls (call outcome)"),
    ):
        effects.suppressed += _suppress(
            connection,
            channel,
            kind,
            _imported(import_id, first_id, last_id, kind),
            detail=detail,
            source=source,
            now=now,
            extra=not_(newer_consent) if kind == REFUSED else None,
        )
    return effects


def _suppress(
    connection: Connection,
    channel: str,
    kind: str,
    responses: ColumnElement[bool],
    *,
    detail: str,
    source: str,
    now: dt.datetime,
    extra: ColumnElement[bool] | None,
) -> int:
    """Suppress on ``channel`` the number of each response of ``kind``; how many numbers were new."""
    called = OUTBOX.alias("called")
    address = func.coalesce(called.c.recipient, CUSTOMER.c.phone)
    customer = func.min(CUSTOMER.c.id) if kind == REFUSED else literal(None, Integer)
    query = (
        select(
            literal(channel),
            address,
            customer,
            literal(kind),
            literal(detail),
            literal(source[:100]),
            literal(now, UtcDateTime()),
        )
        .select_from(
            RESPONSE.join(CUSTOMER, CUSTOMER.c.id == RESPONSE.c.customer_id).outerjoin(
                called, and_(called.c.id == RESPONSE.c.outbox_id, called.c.channel.in_(("call", "sms")))
            )
        )
        .where(
            responses,
            address.is_not(None),
            not_(
                exists(
                    select(SUPPRESSION.c.id).where(
                        SUPPRESSION.c.channel == channel, SUPPRESSION.c.address == address
                    )
                )
            ),
            *([extra] if extra is not None else []),
        )
        .group_by(address)
    )
    return rowcount(connection, insert_ignoring(connection, SUPPRESSION).from_select(_COLUMNS, query))
