"""Unsubscribing a customer: consent withdrawn and addresses suppressed at once, in one transaction.

A customer unsubscribes from a campaign's emails through its signed link
(the page or RFC 8058 one-click, see :mod:`engine.api.unsubscribe`), either
from email only or from all marketing. :func:`unsubscribe` does, on the
caller's connection (so all of it commits or none):

* consent withdrawn: ``consent_email`` (all marketing: every ``consent_*``)
  set false with its ``consent_*_at`` = now, where it was given;
* the addresses put on the suppression list (reason ``unsubscribe``): the
  email address; for all marketing also the phone on ``sms`` and ``call``
  and the postal address on ``post``;
* an ``unsubscribe`` response recorded (source ``tracking``, key
  ``unsubscribe:<customer>:<campaign>``, detail ``email`` or ``all``), tied
  to the customer's latest email of that campaign.

Doing it again changes nothing; all marketing after email only widens it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, select, update

from engine.clock import utcnow
from engine.contact_policy import contacts, suppress_contact, withdraw_consent
from engine.models import (
    CONSENT_CHANNELS,
    CONTACTED_STATES,
    OUTBOX,
    RESPONSE,
    RUN,
    UNSUBSCRIBE,
)
from engine.responses.recording import NewResponse, record_response

EMAIL_ONLY = "email"
ALL_MARKETING = "all"
SCOPES = (EMAIL_ONLY, ALL_MARKETING)
#: the channels whose consent each scope withdraws (and whose addresses it suppresses)
SCOPE_CHANNELS: dict[str, tuple[str, ...]] = {EMAIL_ONLY: ("email",), ALL_MARKETING: CONSENT_CHANNELS}
SOURCE = "tracking"


@dataclass(frozen=True)
class UnsubscribeResult:
    """What one unsubscribe changed; nothing at all when it was done before."""

    customer_id: int
    campaign: str
    scope: str
    consent_withdrawn: tuple[str, ...]  # channels whose consent this call withdrew
    suppressed: tuple[str, ...]  # channels on which an address was newly suppressed
    recorded: bool  # the response was recorded (or widened to all marketing) now

    @property
    def changed(self) -> bool:
        """Whether anything changed (False for a repeated unsubscribe)."""
        return bool(self.consent_withdrawn or self.suppressed or self.recorded)


def response_key(customer_id: int, campaign: str) -> str:
    """The key of the ``unsubscribe`` response of one customer and campaign."""
    return f"unsubscribe:{customer_id}:{campaign}"


def mask_email(email: str) -> str:
    """An email address as a page may show it to whoever holds the link: ``a***@example.ru``."""
    local, at, domain = email.partition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def _latest_email(connection: Connection, customer_id: int, campaign: str) -> int | None:
    return connection.execute(
        select(OUTBOX.c.id)
        .join(RUN, RUN.c.id == OUTBOX.c.run_id)
        .where(
            OUTBOX.c.customer_id == customer_id,
            OUTBOX.c.channel == "email",
            OUTBOX.c.state.in_(CONTACTED_STATES),
            RUN.c.campaign == campaign,
        )
        .order_by(OUTBOX.c.id.desc())
        .limit(1)
    ).scalar()


def unsubscribe(
    connection: Connection,
    customer_id: int,
    campaign: str,
    scope: str = EMAIL_ONLY,
    *,
    now: dt.datetime | None = None,
    region: str = "RU",
) -> UnsubscribeResult:
    """Unsubscribe ``customer_id`` (who got ``campaign``) from email or all marketing, on ``connection``.

    Raises :class:`NotFoundError` for an unknown customer and ``ValueError``
    for an unknown scope; the caller's transaction makes it all or nothing.
    """
    if scope not in SCOPES:
        raise ValueError(f"unknown unsubscribe scope {scope!r} (known: {', '.join(SCOPES)})")
    now = now or utcnow()
    found = contacts(connection, customer_id, lock=True)
    channels = SCOPE_CHANNELS[scope]
    withdrawn = withdraw_consent(connection, found, channels, now)
    suppressed = tuple(
        channel
        for channel in channels
        if suppress_contact(
            connection,
            found,
            channel,
            reason="unsubscribe",
            detail=f"unsubscribe link of campaign {campaign}",
            source="unsubscribe",
            now=now,
            region=region,
        )
    )
    key = response_key(customer_id, campaign)
    mine = (RESPONSE.c.source == SOURCE, RESPONSE.c.key == key)
    recorded = (
        connection.execute(select(RESPONSE.c.id).where(*mine)).first() is None
    )  # the customer is locked
    if recorded:
        record_response(
            connection,
            NewResponse(
                customer_id=customer_id,
                kind=UNSUBSCRIBE,
                occurred_at=now,
                outbox_id=_latest_email(connection, customer_id, campaign),
                source=SOURCE,
                key=key,
                campaign=campaign[:100],
                channel="email",
                detail=scope,
            ),
        )
    elif scope == ALL_MARKETING:
        widened = connection.execute(
            update(RESPONSE).where(*mine, RESPONSE.c.detail != ALL_MARKETING).values(detail=ALL_MARKETING)
        ).rowcount
        recorded = widened > 0
    return UnsubscribeResult(customer_id, campaign, scope, withdrawn, suppressed, recorded)
