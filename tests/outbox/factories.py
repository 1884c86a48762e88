"""A workspace for outbox tests: config, a campaign with templates, a run, and its queued rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, insert, literal, select

from engine.config.checked import Config, load_config
from engine.models import CampaignRun, Customer, OutboxMessage
from engine.models import outbox as states
from engine.sql.types import UtcDateTime
from tests.factories import utc

OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]
RUN = CampaignRun.__table__  # type: ignore[attr-defined]
CUSTOMER = Customer.__table__  # type: ignore[attr-defined]

T0 = utc(2026, 12, 1, 9)  # 12:00 in Moscow, a Tuesday
SECRET = "outbox-test-secret"

CONFIG = f"""
[engine]
timezone = "Europe/Moscow"

[links]
base_url = "https://crm.shop.example"
secret = "{SECRET}"

[channels.email]
unit_cost = 0.40
from = "Shop <news@shop.example>"
maildir = "maildir"
retry_after = "1m"
max_attempts = 3
{{email}}

[channels.call]
unit_cost = 60
folder = "calls"
window = "10:00-19:00"

[segments.everyone]
rule = "true"
"""

CAMPAIGN = """
name = "Autumn note"
segment = "everyone"
strategy = "stimulation"
start = 2026-01-01
at = 2026-12-01T12:00:00
max_lateness = "1h"
context = { offer_until = "31 December" }

[[variants]]
name = "a"

[[variants]]
name = "b"
subject = "Only for you, {{ customer.first_name }}"

[[steps]]
channel = "email"
template = "note.html.j2"
subject = "{{ customer.first_name }}, a note for you"

[[steps]]
channel = "call"
wait = "7d"
script = "call.md"
"""

NOTE = (
    "<html><head><style>p { color: #333 }</style></head><body>"
    "<p>{{ customer.first_name }}, 10 % off until {{ offer_until }} ({{ variant }}).</p>"
    "<p><a href='{{ links.unsubscribe }}'>Unsubscribe</a></p></body></html>"
)
CALL = "Call {{ customer.first_name }} about the offer until {{ offer_until }}."


def workspace(
    write_config: Any, tmp_path: Path, *, email: str = "", extra: str = "", campaign: str = CAMPAIGN
) -> Config:
    """config.toml and campaigns/note.toml with its templates.

    ``email`` adds lines to ``[channels.email]``, ``extra`` adds tables at the end of config.toml.
    """
    path = write_config(text=CONFIG.format(email=email) + extra)
    templates = tmp_path / "campaigns" / "templates"
    templates.mkdir(parents=True, exist_ok=True)
    (templates / "note.html.j2").write_text(NOTE, encoding="utf-8")
    (templates / "call.md").write_text(CALL, encoding="utf-8")
    (tmp_path / "campaigns" / "note.toml").write_text(campaign, encoding="utf-8")
    return load_config(path)


def add_run(
    connection: Connection,
    campaign: str = "note",
    *,
    scheduled_for: dt.datetime = T0,
    segment: str = "everyone",
) -> int:
    """A queued run of ``campaign`` (for members of ``segment``)."""
    return int(
        connection.execute(
            insert(RUN)
            .values(
                campaign=campaign,
                trigger="at",
                scheduled_for=scheduled_for,
                state=states.RUN_QUEUED,
                segment=segment,
                strategy="stimulation",
                steps=2,
                preparation_cost=Decimal(0),
                config_fingerprint="test",
                campaign_fingerprint="test",
                started_at=scheduled_for,
            )
            .returning(RUN.c.id)
        ).scalar_one()
    )


RECIPIENT = {"email": "email", "sms": "phone", "call": "phone", "post": "address", "meeting": "company"}


def queue(
    connection: Connection,
    run_id: int,
    customers: Iterable[int] | None = None,
    *,
    channel: str = "email",
    step: int = 0,
    scheduled_at: dt.datetime = T0,
    variant: str | None = None,
) -> int:
    """Queue a row of ``step`` for each customer (all when None), set-based; returns how many."""
    query = select(
        literal(run_id),
        CUSTOMER.c.id,
        literal(step),
        literal(channel),
        literal(variant),
        literal(states.QUEUED),
        CUSTOMER.c[RECIPIENT[channel]],
        literal(scheduled_at, UtcDateTime()),
        literal(0.0),
        literal(Decimal("0.40"), OUTBOX.c.unit_cost.type),
        literal(Decimal(1), OUTBOX.c.contacts.type),
        literal(0),
        literal(scheduled_at, UtcDateTime()),
        literal(scheduled_at, UtcDateTime()),
    )
    if customers is not None:
        query = query.where(CUSTOMER.c.id.in_(list(customers)))
    columns = [
        "run_id", "customer_id", "step", "channel", "variant", "state", "recipient", "scheduled_at",
        "rank", "unit_cost", "contacts", "attempts", "created_at", "updated_at",
    ]  # fmt: skip
    return int(connection.execute(insert(OUTBOX).from_select(columns, query)).rowcount)


def add_customers(connection: Connection, count: int, **fields: Any) -> None:
    """``count`` customers with email and phone and consent on every channel, in one statement."""
    rows = [
        {
            "external_id": f"B{n:07d}",
            "first_name": f"Client{n}",
            "email": f"c{n}@example.ru",
            "phone": f"+7916{n:07d}",
            "consent_email": True,
            "consent_call": True,
            "source": "test",
            "attributes": {},
            "created_at": T0,
            "updated_at": T0,
            **fields,
        }
        for n in range(count)
    ]
    connection.execute(insert(CUSTOMER), rows)


def rows_of(db: Engine, run_id: int | None = None) -> dict[tuple[int, int], Any]:
    """The outbox rows (of ``run_id``) by customer id and step: ``{(customer, step): row}``."""
    query = select(OUTBOX)
    if run_id is not None:
        query = query.where(OUTBOX.c.run_id == run_id)
    with db.connect() as connection:
        return {(r.customer_id, r.step): r for r in connection.execute(query)}


class Clock:
    """A clock tests move by hand: ``drain(..., clock=clock)``."""

    def __init__(self, now: dt.datetime = T0) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> dt.datetime:
        """Move on by ``timedelta(**delta)``; return the new time."""
        self.now += dt.timedelta(**delta)
        return self.now
