"""Campaign runs and the outbox: one row per audience member and step, each ending in a recorded state.

A run of a campaign materialises its audience into ``outbox`` with one
``INSERT ... SELECT``; the unique key (run, customer, step) makes a second
contact for the same step impossible, and the Message-ID derives from it.
Workers claim ``queued`` rows, send them and record what happened.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from engine.clock import utcnow
from engine.sql import JsonDict, Money, UtcDateTime

# states of an outbox row: waiting, in flight, and final
QUEUED = "queued"  # waits for a worker (not before scheduled_at)
SENDING = "sending"  # claimed by a worker
COMMITTING = "committing"  # the server has the whole message; only its answer is missing
SENT = "sent"  # handed over to the channel (mail server, Maildir, call list, gateway)
DELIVERED = "delivered"  # confirmed delivered (Maildir, delivery notification)
FAILED = "failed"  # permanent failure or attempts used up; ``detail`` says why
BOUNCED = "bounced"  # the address does not exist (5xx): suppressed from now on
SUPPRESSED = "suppressed"  # on the suppression list (unsubscribed, bounced, complained)
CONTROL = "control"  # in the control group: deliberately not contacted
HELD = "held"  # held for the A/B winner (test_share): queued with the winner by ``crm run KEY --winner``
OVER_CAP = "over_cap"  # would exceed the channel's frequency cap
OVER_BUDGET = "over_budget"  # past the campaign's budget line
OUTSIDE_WINDOW = "outside_window"  # no allowed sending time before the campaign ends
EXPIRED = "expired"  # not sent within the campaign's max lateness
NO_CONSENT = "no_consent"  # no consent for this channel
NO_ADDRESS = "no_address"  # no email, phone or address for this channel
CONDITION_NOT_MET = "condition_not_met"  # the step's only_if was false

WAITING_STATES = (QUEUED, SENDING, COMMITTING)
CONTACTED_STATES = (SENT, DELIVERED, BOUNCED)
#: states that count against frequency caps: contacts made or about to be made
CAP_STATES = (QUEUED, SENDING, COMMITTING, SENT, DELIVERED)
#: left out of the contact (final, but for ``held``: final until the A/B winner is sent to it)
EXCLUDED_STATES = (
    CONTROL,
    HELD,
    NO_CONSENT,
    NO_ADDRESS,
    SUPPRESSED,
    CONDITION_NOT_MET,
    OVER_CAP,
    OVER_BUDGET,
    OUTSIDE_WINDOW,
)
FINAL_STATES = (SENT, DELIVERED, FAILED, BOUNCED, EXPIRED, *EXCLUDED_STATES)
STATES = (QUEUED, SENDING, COMMITTING, *FINAL_STATES)

# states of a run
RUN_RUNNING = "running"  # materialising its audience
RUN_QUEUED = "queued"  # its audience is in the outbox
RUN_DONE = "done"  # every row of every step is final
RUN_EXPIRED = "expired"  # fired later than max_lateness after an outage: nothing sent
RUN_SKIPPED = "skipped"  # nothing to do (outside start/end, budget spent); ``detail`` says why
RUN_STATES = (RUN_RUNNING, RUN_QUEUED, RUN_DONE, RUN_EXPIRED, RUN_SKIPPED)


class CampaignRun(SQLModel, table=True):
    """One firing of one campaign: when it was due, what it was, how it went."""

    __tablename__ = "campaign_run"
    __table_args__ = (Index("ux_campaign_run_due", "campaign", "scheduled_for", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    campaign: str = Field(max_length=100)
    trigger: str = Field(max_length=20)
    scheduled_for: dt.datetime = Field(sa_type=UtcDateTime, nullable=False)
    window_start: dt.datetime | None = Field(default=None, sa_type=UtcDateTime)
    state: str = Field(default=RUN_RUNNING, max_length=20)
    detail: str | None = Field(default=None, max_length=2000)
    segment: str = Field(max_length=100)
    strategy: str = Field(max_length=20)
    priority: int = 0
    steps: int = 1
    preparation_cost: Decimal = Field(default=Decimal(0), sa_type=Money)
    config_fingerprint: str = Field(max_length=64)
    campaign_fingerprint: str = Field(max_length=64)
    started_at: dt.datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, nullable=False)
    finished_at: dt.datetime | None = Field(default=None, sa_type=UtcDateTime)


class OutboxMessage(SQLModel, table=True):
    """One step of one run for one customer, from materialisation to its final state."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ux_outbox_key", "run_id", "customer_id", "step", unique=True),
        Index("ix_outbox_claim", "state", "channel", "scheduled_at"),
        Index("ix_outbox_customer", "customer_id", "channel", "scheduled_at"),
        Index("ix_outbox_reference", "reference"),  # a bounce report finds its message by Message-ID
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="campaign_run.id")
    customer_id: int = Field(foreign_key="customer.id")
    step: int = 0
    channel: str = Field(max_length=20)
    variant: str | None = Field(default=None, max_length=100)
    state: str = Field(default=QUEUED, max_length=20)
    recipient: str | None = Field(default=None, max_length=500)
    scheduled_at: dt.datetime = Field(sa_type=UtcDateTime, nullable=False)
    rank: float = 0.0
    unit_cost: Decimal = Field(default=Decimal(0), sa_type=Money)
    contacts: Decimal = Field(default=Decimal(1), sa_type=Money)
    attempts: int = 0
    claimed_by: str | None = Field(default=None, max_length=100)
    reference: str | None = Field(default=None, max_length=300)
    detail: str | None = Field(default=None, max_length=2000)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, nullable=False)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, nullable=False)
    sent_at: dt.datetime | None = Field(default=None, sa_type=UtcDateTime)


class OutboxWorker(SQLModel, table=True):
    """A worker process draining the outbox; its heartbeat tells others whether it is alive."""

    __tablename__ = "outbox_worker"

    id: str = Field(primary_key=True, max_length=100)
    host: str = Field(max_length=200)
    pid: int
    started_at: dt.datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, nullable=False)
    heartbeat_at: dt.datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, nullable=False)
    stopped_at: dt.datetime | None = Field(default=None, sa_type=UtcDateTime)


class CustomerEvent(SQLModel, table=True):
    """A custom event about a customer (``crm event``, the Python API, later HTTP) that campaigns fire on."""

    __tablename__ = "customer_event"
    __table_args__ = (
        Index("ix_customer_event_name", "name", "occurred_at"),
        Index("ux_customer_event_key", "source", "key", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    name: str = Field(max_length=100)
    occurred_at: dt.datetime = Field(sa_type=UtcDateTime, nullable=False)
    source: str = Field(default="cli", max_length=100)
    key: str | None = Field(default=None, max_length=200)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JsonDict, nullable=False))
    recorded_at: dt.datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, nullable=False)
