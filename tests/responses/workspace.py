"""A workspace for response tests: call centres and bounce thresholds in config, customers, contacts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, update

from engine.channels import message_id
from engine.config.checked import Config
from engine.db import installation_id
from engine.models import ContactResponse, Suppression
from engine.models import outbox as states
from tests.factories import add_customer, utc
from tests.outbox.factories import OUTBOX, add_run, queue, workspace

RESPONSE = ContactResponse.__table__  # type: ignore[attr-defined]
SUPPRESSION = Suppression.__table__  # type: ignore[attr-defined]
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

EMAIL_AT = utc(2026, 12, 2, 9, 4)  # the emails of step 0 went out
CALL_AT = utc(2026, 12, 8, 9)  # the calls of step 1 went on the call list (12:00 in Moscow)
DOMAIN = "shop.example"

EXTRA = """
[responses]
satisfaction_scale = 5

[responses.call_centres.main]
codes = { "01" = "reached", "02" = "no_answer", "03" = "callback", "04" = "interested", \
"05" = "purchased", "06" = "refused", "07" = "wrong_number" }

[responses.call_centres.other]
codes = { "ok" = "reached", "busy" = "no_answer" }

[bounces]
hard_threshold = {hard}
soft_threshold = 3
soft_window_days = 30
"""

CALLS = """
name = "Calls"
segment = "everyone"
strategy = "stimulation"
start = 2026-01-01
at = 2027-01-11T12:00:00
max_lateness = "1h"

[[steps]]
channel = "call"
script = "call.md"
"""


def setup(write_config: Any, tmp_path: Path, *, hard_threshold: int = 1) -> Config:
    """config.toml with [responses] and [bounces], campaigns note (email, then call) and calls (call)."""
    config = workspace(write_config, tmp_path, extra=EXTRA.replace("{hard}", str(hard_threshold)))
    (tmp_path / "campaigns" / "calls.toml").write_text(CALLS, encoding="utf-8")
    return config


def add_contacted(db: Engine, emails: dict[str, str]) -> tuple[int, dict[str, int]]:
    """Customers C1.. (external id -> email), each emailed (step 0, sent) and called (step 1, sent).

    Returns the run id and the customer ids by external id. Phones are ``+791600000NN``.
    """
    installation = installation_id(db)  # the emails' Message-IDs, as the worker gives them
    with db.begin() as connection:
        ids = {
            key: add_customer(
                connection, external_id=key, email=email, phone=f"+79160000{n:03d}", first_name=key,
                consent_email=True, consent_call=True, consent_sms=True, consent_call_at=utc(2025, 1, 1),
            )
            for n, (key, email) in enumerate(emails.items(), start=1)
        }  # fmt: skip
        run_id = add_run(connection)
        queue(connection, run_id, ids.values(), channel="email", step=0, scheduled_at=EMAIL_AT)
        queue(connection, run_id, ids.values(), channel="call", step=1, scheduled_at=CALL_AT)
        for customer_id in ids.values():
            connection.execute(
                update(OUTBOX)
                .where(OUTBOX.c.run_id == run_id, OUTBOX.c.customer_id == customer_id, OUTBOX.c.step == 0)
                .values(
                    state=states.SENT,
                    sent_at=EMAIL_AT,
                    reference=message_id(f"{run_id}:{customer_id}:0", DOMAIN, installation=installation),
                )
            )
        connection.execute(
            update(OUTBOX)
            .where(OUTBOX.c.run_id == run_id, OUTBOX.c.step == 1)
            .values(state=states.SENT, sent_at=CALL_AT, reference="calls-2026-12-08.csv")
        )
    return run_id, ids


def outbox_ids(db: Engine, run_id: int) -> dict[tuple[int, int], int]:
    """Outbox row ids by (customer, step)."""
    with db.connect() as connection:
        rows = connection.execute(
            select(OUTBOX.c.customer_id, OUTBOX.c.step, OUTBOX.c.id).where(OUTBOX.c.run_id == run_id)
        )
        return {(customer, step): id_ for customer, step, id_ in rows}


def responses(db: Engine, **where: Any) -> list[dict[str, Any]]:
    """The recorded responses (filtered by column values), oldest first."""
    query = select(RESPONSE).order_by(RESPONSE.c.occurred_at, RESPONSE.c.id)
    for name, value in where.items():
        query = query.where(RESPONSE.c[name] == value)
    with db.connect() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]


def suppressions(db: Engine) -> set[tuple[str, str, str, int | None]]:
    """(channel, address, reason, customer id) of every suppressed address."""
    with db.connect() as connection:
        rows = connection.execute(
            select(
                SUPPRESSION.c.channel, SUPPRESSION.c.address, SUPPRESSION.c.reason, SUPPRESSION.c.customer_id
            )
        )
        return {tuple(row) for row in rows}  # type: ignore[misc]


def msk(day: int, hour: int, minute: int = 0, month: int = 12) -> dt.datetime:
    """A Moscow wall-clock time of 2026 as aware UTC."""
    return utc(2026, month, day, hour, minute) - dt.timedelta(hours=3)
