"""When bounces put an address on the email suppression list (``[bounces]`` of config.toml).

* ``hard_threshold`` hard bounces: messages to the address that bounced
  hard, counted once each, whether the server refused them while sending
  (outbox row ``bounced``) or a DSN said so later; reason ``hard_bounce``.
* ``soft_threshold`` soft bounces within ``soft_window_days``: messages to
  the address with a soft bounce (a delay or a transient failure), counted
  once each however many notices they drew, inside any window of that many
  days; reason ``soft_bounce``.

Only the addresses of the customers a batch of bounces touched are looked
at; counting happens in the database (hard) or over those addresses' soft
bounces alone (soft).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection

from sqlalchemy import Connection, func, or_, select

from engine.models import BOUNCE, BOUNCED, CUSTOMER, OUTBOX, RESPONSE, SUPPRESSION
from engine.responses.bounces import HARD, SOFT
from engine.settings import BouncesSection
from engine.sql import insert_ignoring

CHUNK = 1000


def suppress_bounced(
    connection: Connection,
    customers: Collection[int],
    settings: BouncesSection,
    *,
    source: str,
    now: dt.datetime,
) -> int:
    """Suppress the addresses of ``customers`` whose bounces reach a threshold; how many are new."""
    ids = sorted(set(customers))
    wanted: dict[str, tuple[str, str]] = {}  # address -> (reason, detail)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        for address, count in _hard(connection, chunk, settings.hard_threshold):
            wanted[address] = ("hard_bounce", f"{count} hard bounces (threshold {settings.hard_threshold})")
        for address, count in _soft(connection, chunk, settings):
            wanted.setdefault(
                address,
                ("soft_bounce", f"{count} soft bounces within {settings.soft_window_days} days "
                                f"(threshold {settings.soft_threshold})"),
            )  # fmt: skip
    if not wanted:
        return 0
    owners = _owners(connection, sorted(wanted))
    rows = [
        {
            "channel": "email",
            "address": address,
            "customer_id": owners.get(address),
            "reason": reason,
            "detail": detail,
            "source": source,
            "created_at": now,
        }
        for address, (reason, detail) in sorted(wanted.items())
    ]
    statement = insert_ignoring(connection, SUPPRESSION).returning(SUPPRESSION.c.id)
    return len(connection.execute(statement, rows).all())


def _hard(connection: Connection, customers: list[int], threshold: int) -> list[tuple[str, int]]:
    """(address, hard bounces) of the addresses at or over ``threshold``."""
    address = func.lower(OUTBOX.c.recipient)
    hard_report = (
        select(RESPONSE.c.id)
        .where(RESPONSE.c.outbox_id == OUTBOX.c.id, RESPONSE.c.kind == BOUNCE, RESPONSE.c.code == HARD)
        .exists()
    )
    count = func.count(OUTBOX.c.id.distinct())
    query = (
        select(address, count)
        .where(
            OUTBOX.c.customer_id.in_(customers),
            OUTBOX.c.channel == "email",
            OUTBOX.c.recipient.is_not(None),
            or_(OUTBOX.c.state == BOUNCED, hard_report),
        )
        .group_by(address)
        .having(count >= threshold)
    )
    return [(str(a), int(n)) for a, n in connection.execute(query)]


def _soft(connection: Connection, customers: list[int], settings: BouncesSection) -> list[tuple[str, int]]:
    """(address, most soft bounces in one window) of the addresses at or over the soft threshold."""
    query = (
        select(func.lower(OUTBOX.c.recipient), OUTBOX.c.id, RESPONSE.c.occurred_at)
        .join(OUTBOX, OUTBOX.c.id == RESPONSE.c.outbox_id)
        .where(
            OUTBOX.c.customer_id.in_(customers),
            OUTBOX.c.channel == "email",
            OUTBOX.c.recipient.is_not(None),
            RESPONSE.c.kind == BOUNCE,
            RESPONSE.c.code == SOFT,
        )
    )
    by_address: dict[str, list[tuple[dt.datetime, int]]] = defaultdict(list)
    for address, outbox_id, occurred_at in connection.execute(query):
        by_address[str(address)].append((occurred_at, int(outbox_id)))
    window = dt.timedelta(days=settings.soft_window_days)
    found: list[tuple[str, int]] = []
    for address, events in by_address.items():
        most = most_in_window(events, window)
        if most >= settings.soft_threshold:
            found.append((address, most))
    return found


def most_in_window(events: list[tuple[dt.datetime, int]], window: dt.timedelta) -> int:
    """The most distinct messages (second item) with events inside one window ``(t - window, t]``."""
    events = sorted(events)
    best = 0
    for end, _ in events:
        inside = {message for at, message in events if end - window < at <= end}
        best = max(best, len(inside))
    return best


def _owners(connection: Connection, addresses: list[str]) -> dict[str, int]:
    """The customer holding each address now (the lowest id when several do)."""
    owners: dict[str, int] = {}
    for start in range(0, len(addresses), CHUNK):
        query = (
            select(CUSTOMER.c.email, func.min(CUSTOMER.c.id))
            .where(CUSTOMER.c.email.in_(addresses[start : start + CHUNK]))
            .group_by(CUSTOMER.c.email)
        )
        owners.update({str(email): int(customer) for email, customer in connection.execute(query)})
    return owners
