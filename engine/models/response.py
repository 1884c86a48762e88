"""Responses to contacts and the purchases attributed to them.

* **Response** (``contact_response``): one thing a customer did after (or
  about) a contact: opened, clicked, unsubscribed, replied, a call outcome,
  a survey score, a bounce. Tracking links record them with the outbox row
  they came from; imports with their file and line. ``(source, key)`` is
  unique, so a recorder never records one response twice; a response
  imported from a file (``import_id`` set) is unique by its ``key`` alone,
  derived from its content, so importing the same file again records nothing
  new whatever ``--source`` says (``source`` is then a label, not identity).
* **Conversion** (``conversion``): one purchase attributed to one contact
  (or control-group assignment) whose campaign goal window holds it, under
  the attribution model of ``[evaluation]``. Rebuilt by
  :func:`engine.evaluation.attribution.attribute`; every revenue figure of a
  campaign report is a sum over these rows.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import Index, text
from sqlmodel import Field, SQLModel

from engine.clock import utcnow
from engine.sql import Money, UtcDateTime

# kinds of response
OPEN = "open"
CLICK = "click"
UNSUBSCRIBE = "unsubscribe"
REPLY = "reply"
SATISFACTION = "satisfaction"
BOUNCE = "bounce"
COMPLAINT = "complaint"
#: call outcomes (``[responses.call_centres.NAME].codes`` map a centre's codes to these)
CALL_OUTCOME_KINDS = (
    "reached",
    "no_answer",
    "callback",
    "interested",
    "purchased",
    "refused",
    "wrong_number",
)
#: responses that show the customer engaged with the contact (the "responded" of reports and only_if)
ENGAGED_KINDS = (CLICK, REPLY, "reached", "callback", "interested", "purchased")
RESPONSE_KINDS = (OPEN, CLICK, UNSUBSCRIBE, REPLY, SATISFACTION, BOUNCE, COMPLAINT, *CALL_OUTCOME_KINDS)

# attribution groups
TREATED = "treated"
CONTROL = "control"


class ContactResponse(SQLModel, table=True):
    """A customer's response to a contact: opened, clicked, replied, a call outcome, unsubscribed."""

    __tablename__ = "contact_response"
    __table_args__ = (
        Index("ix_contact_response_outbox", "outbox_id", "kind"),
        Index("ix_contact_response_customer", "customer_id", "occurred_at"),
        Index("ux_contact_response_key", "source", "key", unique=True),
        # imported responses: the same content is the same response, whatever source the import named
        Index(
            "ux_contact_response_imported",
            "key",
            unique=True,
            postgresql_where=text("import_id IS NOT NULL"),
            sqlite_where=text("import_id IS NOT NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    outbox_id: int | None = Field(default=None, foreign_key="outbox.id")
    customer_id: int = Field(foreign_key="customer.id")
    kind: str = Field(max_length=30)
    occurred_at: dt.datetime = Field(sa_type=UtcDateTime, nullable=False)
    detail: str | None = Field(default=None, max_length=2000)
    source: str = Field(default="engine", max_length=100)
    key: str | None = Field(default=None, max_length=300)
    code: str | None = Field(default=None, max_length=50)
    score: int | None = None
    campaign: str | None = Field(default=None, max_length=100)
    channel: str | None = Field(default=None, max_length=20)
    import_id: int | None = Field(default=None, foreign_key="import_batch.id")
    recorded_at: dt.datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, nullable=False)


class Conversion(SQLModel, table=True):
    """One purchase attributed to one contact (treated) or control-group assignment (control)."""

    __tablename__ = "conversion"
    __table_args__ = (
        Index("ix_conversion_run", "run_id", "group", "variant"),
        Index("ix_conversion_outbox", "outbox_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    purchase_id: int = Field(foreign_key="purchase.id", unique=True)
    outbox_id: int = Field(foreign_key="outbox.id")
    run_id: int = Field(foreign_key="campaign_run.id")
    campaign: str = Field(max_length=100)
    variant: str | None = Field(default=None, max_length=100)
    group: str = Field(max_length=10)
    customer_id: int = Field(foreign_key="customer.id")
    contact_at: dt.datetime = Field(sa_type=UtcDateTime, nullable=False)
    ordered_at: dt.datetime = Field(sa_type=UtcDateTime, nullable=False)
    revenue: Decimal = Field(sa_type=Money, nullable=False)
    margin: Decimal | None = Field(default=None, sa_type=Money)
    model: str = Field(max_length=20)
    attributed_at: dt.datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, nullable=False)
