"""The profile of one customer: fields, metrics, scores, segments, provenance, and contacts and responses."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, or_, select

from engine.errors import NotFoundError
from engine.models import (
    CUSTOMER,
    MEMBERSHIP,
    METRIC_VALUE,
    METRICS,
    OUTBOX,
    RESPONSE,
    RUN,
    SCORE,
    SOURCE_RECORD,
)

#: the latest contacts and responses a profile shows
TIMELINE_LENGTH = 30


@dataclass(frozen=True)
class SegmentStay:
    """One stay of the customer in a segment (open while ``left_at`` is None)."""

    segment: str
    entered_at: dt.datetime
    left_at: dt.datetime | None


@dataclass(frozen=True)
class SourceRecord:
    """What one source said about the customer, and when."""

    source: str
    source_key: str
    data: dict[str, Any]
    first_seen_at: dt.datetime
    last_seen_at: dt.datetime


@dataclass(frozen=True)
class TimelineEvent:
    """A contact (a campaign's message or call, in its state) or a response, at its time."""

    at: dt.datetime
    what: str  # "contact" or "response"
    campaign: str | None
    channel: str | None
    state: str
    detail: str | None = None


@dataclass(frozen=True)
class CustomerProfile:
    """Everything the engine knows about one customer."""

    fields: dict[str, Any]
    metrics: dict[str, Any]
    custom_metrics: dict[str, Any]
    scores: dict[str, int]
    segments: list[SegmentStay]
    sources: list[SourceRecord]
    timeline: list[TimelineEvent] = field(default_factory=list)
    customer_id: int = 0


def find_customer_id(engine: Engine, ref: str) -> int:
    """The id of the customer named by ``ref``: ``#id``, external id, email or phone."""
    conditions = [CUSTOMER.c.external_id == ref, CUSTOMER.c.email == ref.lower(), CUSTOMER.c.phone == ref]
    if ref.startswith("#") and ref[1:].isdigit():
        conditions = [CUSTOMER.c.id == int(ref[1:])]
    with engine.connect() as connection:
        ids = connection.execute(select(CUSTOMER.c.id).where(or_(*conditions)).limit(2)).scalars().all()
    if not ids:
        raise NotFoundError("customer", ref)
    return ids[0]


def customer_profile(engine: Engine, ref: str) -> CustomerProfile:
    """Read the profile of the customer named by ``ref`` (see :func:`find_customer_id`)."""
    customer_id = find_customer_id(engine, ref)
    with engine.connect() as connection:
        fields = dict(connection.execute(select(CUSTOMER).where(CUSTOMER.c.id == customer_id)).one()._mapping)
        # as rules name them: the stage a source declared, beside the derived lifecycle_stage metric
        fields["declared_stage"] = fields.pop("lifecycle_stage")
        row = connection.execute(select(METRICS).where(METRICS.c.customer_id == customer_id)).first()
        metrics = dict(row._mapping) if row else {}
        metrics.pop("customer_id", None)
        custom = {
            r.name: r.value
            for r in connection.execute(select(METRIC_VALUE).where(METRIC_VALUE.c.customer_id == customer_id))
        }
        scores = {
            r.name: r.points
            for r in connection.execute(select(SCORE).where(SCORE.c.customer_id == customer_id))
        }
        stays = [
            SegmentStay(r.segment, r.entered_at, r.left_at)
            for r in connection.execute(
                select(MEMBERSHIP)
                .where(MEMBERSHIP.c.customer_id == customer_id)
                .order_by(MEMBERSHIP.c.entered_at, MEMBERSHIP.c.segment)
            )
        ]
        sources = [
            SourceRecord(r.source, r.source_key, r.data, r.first_seen_at, r.last_seen_at)
            for r in connection.execute(
                select(SOURCE_RECORD)
                .where(SOURCE_RECORD.c.customer_id == customer_id)
                .order_by(SOURCE_RECORD.c.first_seen_at)
            )
        ]
        timeline = _timeline(connection, customer_id)
    return CustomerProfile(fields, metrics, custom, scores, stays, sources, timeline, customer_id)


def _timeline(connection: Any, customer_id: int) -> list[TimelineEvent]:
    """The latest contacts and responses, newest first (at most :data:`TIMELINE_LENGTH`)."""
    contacts = connection.execute(
        select(
            OUTBOX.c.sent_at,
            OUTBOX.c.scheduled_at,
            RUN.c.campaign,
            OUTBOX.c.channel,
            OUTBOX.c.state,
            OUTBOX.c.step,
        )
        .join(RUN, RUN.c.id == OUTBOX.c.run_id)
        .where(OUTBOX.c.customer_id == customer_id)
        .order_by(OUTBOX.c.scheduled_at.desc(), OUTBOX.c.id.desc())
        .limit(TIMELINE_LENGTH)
    ).all()
    responses = connection.execute(
        select(RESPONSE.c.occurred_at, RESPONSE.c.kind, RESPONSE.c.detail, RUN.c.campaign, OUTBOX.c.channel)
        .select_from(
            RESPONSE.outerjoin(OUTBOX, OUTBOX.c.id == RESPONSE.c.outbox_id).outerjoin(
                RUN, RUN.c.id == OUTBOX.c.run_id
            )
        )
        .where(RESPONSE.c.customer_id == customer_id)
        .order_by(RESPONSE.c.occurred_at.desc(), RESPONSE.c.id.desc())
        .limit(TIMELINE_LENGTH)
    ).all()
    events = [
        TimelineEvent(
            row.sent_at or row.scheduled_at,
            "contact",
            row.campaign,
            row.channel,
            row.state,
            f"step {row.step + 1}" if row.step else None,
        )
        for row in contacts
    ] + [
        TimelineEvent(row.occurred_at, "response", row.campaign, row.channel, row.kind, row.detail)
        for row in responses
    ]
    events.sort(key=lambda event: event.at, reverse=True)
    return events[:TIMELINE_LENGTH]
