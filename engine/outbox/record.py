"""Recording what happened to each claimed row: its state, why, and what the contact cost.

* sent: ``sent`` (``delivered`` for a Maildir, which is the mailbox itself),
  with the reference (Message-ID, file), the time and the unit cost in force
  on the business day of sending for the row's channel, campaign and segment
  (:class:`SendPrices`, from ``[channels.*].prices``): finance's actual cost
  is recorded contacts x that unit cost;
* a temporary failure (4xx, timeout, dropped connection): ``queued`` again at
  ``now + retry_after * 2 ** (attempts - 1)``, until ``max_attempts`` is
  used up, then ``failed``;
* a permanent failure: ``failed`` with the server's answer, or ``bounced``
  when the answer says the mailbox does not exist (550/551/553, or enhanced
  codes 5.1.x and 5.2.1); a bounced address joins the suppression list;
* rows settled before sending (expired, no consent, suppressed, no address,
  a failing template) keep the state the composer gave them.

Only rows the worker still owns are written (``claimed_by`` is the worker, the
state ``sending`` or ``committing``): a worker declared dead cannot overwrite
what recovery decided.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, bindparam, or_, update

from engine.channels import DeliveryResult, DeliveryStatus, UnitCosts
from engine.config import Config
from engine.contact_policy import suppress
from engine.db import write_transaction
from engine.errors import ConfigError
from engine.models import BOUNCED, COMMITTING, DELIVERED, FAILED, OUTBOX, QUEUED, SENDING, SENT
from engine.outbox.claim import ClaimedRow

#: basic SMTP codes that mean "no such mailbox" when no enhanced status code says more
HARD_BOUNCE_CODES = frozenset({550, 551, 553})
_BASIC = re.compile(r"^\s*([2-5]\d\d)\b")
_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
#: enhanced codes (RFC 3463) about the address itself: bad mailbox, bad system, bad syntax, moved,
#: null MX, mailbox disabled
_ADDRESS_GONE = frozenset({("1", "1"), ("1", "2"), ("1", "3"), ("1", "6"), ("1", "10"), ("2", "1")})
CONTACTED = (SENT, DELIVERED, BOUNCED)  # states that record a contact: time and unit cost


@dataclass(frozen=True)
class Outcome:
    """What becomes of one claimed row."""

    row: ClaimedRow
    state: str
    detail: str | None = None
    reference: str | None = None
    retry_at: dt.datetime | None = None  # when a ``queued`` row is due again
    recipient: str | None = None  # the address a bounce suppresses


@dataclass(frozen=True)
class SendPrices:
    """What a contact costs when it is made: the price list on the business day of sending."""

    costs: UnitCosts
    zone: zoneinfo.ZoneInfo

    @classmethod
    def from_config(cls, config: Config) -> SendPrices:
        """The prices of ``[channels.*]`` in the business time zone of ``[engine]``."""
        return cls(UnitCosts(config.settings.channels), zoneinfo.ZoneInfo(config.settings.engine.timezone))

    def at(self, channel: str, sent_at: dt.datetime, *, campaign: str | None, segment: str | None) -> Decimal:
        """The unit cost of a contact on ``channel`` made at ``sent_at`` for ``campaign`` and ``segment``."""
        day = sent_at.astimezone(self.zone).date()
        return self.costs.at(channel, day, campaign=campaign, segment=segment)


def is_hard_bounce(answer: str | None) -> bool:
    """Whether a permanent SMTP answer says the mailbox does not exist (not a policy refusal)."""
    basic = _BASIC.match(answer or "")
    if basic is None or not basic.group(1).startswith("5"):
        return False
    enhanced = _ENHANCED.search(answer or "")
    if enhanced is not None:
        status, subject, detail = enhanced.groups()
        return status == "5" and (subject, detail) in _ADDRESS_GONE
    return int(basic.group(1)) in HARD_BOUNCE_CODES


def backoff(retry_after: dt.timedelta, attempts: int) -> dt.timedelta:
    """The wait before attempt ``attempts + 1``: ``retry_after`` doubled after each attempt."""
    return retry_after * 2 ** max(0, attempts - 1)


def decide(
    row: ClaimedRow,
    result: DeliveryResult,
    *,
    channel: str,
    recipient: str,
    now: dt.datetime,
    max_attempts: int,
    retry_after: dt.timedelta,
    delivered: bool = False,
) -> Outcome:
    """The outcome of ``row`` from the channel's ``result``."""
    if result.status is DeliveryStatus.SENT:
        return Outcome(row, DELIVERED if delivered else SENT, reference=result.reference)
    if result.status is DeliveryStatus.TEMPORARY_FAILURE:
        if row.attempts >= max_attempts:
            detail = f"gave up after {row.attempts} attempts: {result.detail or 'temporary failure'}"
            return Outcome(row, FAILED, detail[:2000])
        return Outcome(
            row,
            QUEUED,
            (result.detail or "temporary failure")[:2000],
            retry_at=now + backoff(retry_after, row.attempts),
        )
    if channel == "email" and is_hard_bounce(result.detail):
        return Outcome(row, BOUNCED, (result.detail or "")[:2000], recipient=recipient)
    return Outcome(row, FAILED, (result.detail or "permanent failure")[:2000])


def record(
    engine: Engine, worker_id: str, outcomes: Sequence[Outcome], *, prices: SendPrices, now: dt.datetime
) -> None:
    """Write every outcome in one transaction (one statement per kind of outcome).

    A contact made records ``sent_at = now`` and the unit cost ``prices`` give for it on that day.
    """
    owned = (
        OUTBOX.c.id == bindparam("row_id"),
        OUTBOX.c.claimed_by == worker_id,
        or_(OUTBOX.c.state == SENDING, OUTBOX.c.state == COMMITTING),  # no IN: executemany
    )
    contacted = (
        update(OUTBOX)
        .where(*owned)
        .values(
            state=bindparam("new_state"),
            detail=bindparam("new_detail"),
            reference=bindparam("new_reference"),
            sent_at=now,
            unit_cost=bindparam("new_unit_cost"),
            updated_at=now,
        )
    )
    retried = (
        update(OUTBOX)
        .where(*owned)
        .values(
            state=QUEUED,
            detail=bindparam("new_detail"),
            scheduled_at=bindparam("new_scheduled_at"),
            claimed_by=None,
            updated_at=now,
        )
    )
    settled = (
        update(OUTBOX)
        .where(*owned)
        .values(state=bindparam("new_state"), detail=bindparam("new_detail"), updated_at=now)
    )
    groups: dict[Any, list[dict[str, Any]]] = {contacted: [], retried: [], settled: []}
    for outcome in outcomes:
        values = {"row_id": outcome.row.id, "new_detail": outcome.detail}
        if outcome.state in CONTACTED:
            groups[contacted].append(
                {
                    **values,
                    "new_state": outcome.state,
                    "new_reference": outcome.reference,
                    "new_unit_cost": prices.at(
                        outcome.row.channel, now, campaign=outcome.row.campaign, segment=outcome.row.segment
                    ),
                }
            )
        elif outcome.state == QUEUED:
            groups[retried].append({**values, "new_scheduled_at": outcome.retry_at})
        else:
            groups[settled].append({**values, "new_state": outcome.state})
    with write_transaction(engine) as connection:
        for statement, parameters in groups.items():
            if parameters:
                connection.execute(statement, parameters)


def suppress_bounces(engine: Engine, outcomes: Sequence[Outcome], *, region: str) -> int:
    """Put the address of every bounced outcome on the email suppression list; how many were new."""
    added = 0
    for outcome in outcomes:
        if outcome.state != BOUNCED or not outcome.recipient:
            continue
        try:
            added += suppress(
                engine,
                "email",
                outcome.recipient,
                "hard_bounce",
                detail=(outcome.detail or "")[:1000],
                source="worker",
                region=region,
            )
        except ConfigError:
            continue  # not an email address at all: nothing to suppress
    return added
