"""Linking imported responses to the contact they answer, set-based.

A response without a contact named in its row is linked to the customer's
latest contact made at or before the response (an outbox row in state sent,
delivered or bounced, ``sent_at <= occurred_at``): of the response's campaign
when it names one, on the call channel for call outcomes, on any channel for
replies and survey scores. A linked response takes the campaign and the
channel of that contact.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Connection, func, not_, or_, select, update

from engine.models import CALL_OUTCOME_KINDS, CONTACTED_STATES, OUTBOX, RESPONSE, RUN


def _imported(import_id: int, first_id: int, last_id: int) -> ColumnElement[bool]:
    return (RESPONSE.c.import_id == import_id) & RESPONSE.c.id.between(first_id, last_id)


def link_to_contacts(connection: Connection, import_id: int, first_id: int, last_id: int) -> int:
    """Link the responses ``first_id..last_id`` of import ``import_id``; how many are linked now."""
    latest = (
        select(OUTBOX.c.id)
        .join(RUN, RUN.c.id == OUTBOX.c.run_id)
        .where(
            OUTBOX.c.customer_id == RESPONSE.c.customer_id,
            OUTBOX.c.state.in_(CONTACTED_STATES),
            OUTBOX.c.sent_at <= RESPONSE.c.occurred_at,
            or_(RESPONSE.c.campaign.is_(None), RUN.c.campaign == RESPONSE.c.campaign),
            or_(not_(RESPONSE.c.kind.in_(CALL_OUTCOME_KINDS)), OUTBOX.c.channel == "call"),
        )
        .order_by(OUTBOX.c.sent_at.desc(), OUTBOX.c.id.desc())
        .limit(1)
        .correlate(RESPONSE)
        .scalar_subquery()
    )
    imported = _imported(import_id, first_id, last_id)
    connection.execute(
        update(RESPONSE).where(imported, RESPONSE.c.outbox_id.is_(None)).values(outbox_id=latest)
    )
    contact = OUTBOX.alias("contact")
    run = RUN.alias("contact_run")
    connection.execute(
        update(RESPONSE)
        .where(imported, RESPONSE.c.outbox_id.is_not(None))
        .values(
            campaign=select(run.c.campaign)
            .join(contact, contact.c.run_id == run.c.id)
            .where(contact.c.id == RESPONSE.c.outbox_id)
            .correlate(RESPONSE)
            .scalar_subquery(),
            channel=select(contact.c.channel)
            .where(contact.c.id == RESPONSE.c.outbox_id)
            .correlate(RESPONSE)
            .scalar_subquery(),
        )
    )
    linked = select(func.count()).select_from(RESPONSE).where(imported, RESPONSE.c.outbox_id.is_not(None))
    return int(connection.execute(linked).scalar_one())
