"""The activate and expire jobs on hand-computed scenarios, on SQLite and PostgreSQL.

The ``shop`` programme earns 5 % of the amount in points (2000 -> 100).
Every scenario earns through the ledger at an explicit time and runs the
jobs at explicit instants; the audit (cached buckets against entries, lots
against allocations) must find nothing after each job.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from engine.loyalty.batch import expiry
from engine.loyalty.batch.expiry import activate_due, expire_due, preview_expiry
from engine.loyalty.ledger.earning import earn_purchase
from engine.loyalty.ledger.posting import request_hash
from engine.loyalty.ledger.redemption import redeem
from engine.loyalty.ledger.refunds import refund
from engine.loyalty.programme.definition import Programme
from engine.models.tables import ACCOUNT, ENTRY, OPERATION
from tests.factories import utc
from tests.loyalty.ledger_setup import assert_consistent, buckets, customers, lots, shop_programme


def earn(db: Engine, shop: Programme, customer: str, order: str, amount: int, at: dt.datetime) -> int:
    """Earn for a purchase of ``amount`` at ``at``; returns the points."""
    receipt = earn_purchase(db, shop, order=order, customer=customer, amount=Decimal(amount), now=at)
    return receipt.points


def entries_of_lot(db: Engine, lot_id: int) -> list[tuple[str, str, int]]:
    """(kind, bucket, points) of every entry on the lot, in order."""
    with db.connect() as connection:
        rows = connection.execute(
            select(ENTRY.c.kind, ENTRY.c.bucket, ENTRY.c.points)
            .where(ENTRY.c.lot_id == lot_id)
            .order_by(ENTRY.c.id)
        ).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def operation(db: Engine, key: str) -> Any:
    with db.connect() as connection:
        return connection.execute(select(OPERATION).where(OPERATION.c.key == key)).one_or_none()


def test_pending_points_activate_exactly_at_available_at_and_once(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    shop = shop_programme(write_config)  # 14 days pending
    customers(db, "anna", "boris")
    assert earn(db, shop, "anna", "A1", 2000, utc(2027, 1, 10, 12)) == 100
    assert earn(db, shop, "boris", "B1", 4000, utc(2027, 1, 11, 12)) == 200
    lot = lots(db, "anna")[0]
    assert lot["available_at"] == utc(2027, 1, 24, 12)

    before = activate_due(db, shop, now=utc(2027, 1, 24, 12) - dt.timedelta(microseconds=1))
    assert (before.lots, before.points) == (0, 0)
    done = activate_due(db, shop, now=utc(2027, 1, 24, 12))
    assert (done.lots, done.points, done.accounts) == (1, 100, 1)
    assert buckets(db, "anna") == {"available": 100, "pending": 0, "held": 0, "debt": 0}
    assert buckets(db, "boris") == {"available": 0, "pending": 200, "held": 0, "debt": 0}
    assert entries_of_lot(db, lot["id"]) == [
        ("earn", "pending", 100),
        ("activate", "pending", -100),
        ("activate", "available", 100),
    ]
    activation = operation(db, f"activate:{lot['id']}")
    assert activation.command == "activate" and activation.result == {"points": 100, "lot": lot["id"]}
    assert activation.request_hash == request_hash("activate", {"lot": lot["id"]})  # as the ledger's settle
    with db.connect() as connection:
        related = connection.execute(
            select(ENTRY.c.related_id).where(ENTRY.c.operation_id == activation.id)
        ).scalars()
        earned = connection.execute(
            select(ENTRY.c.id).where(ENTRY.c.lot_id == lot["id"], ENTRY.c.kind == "earn")
        ).scalar_one()
    assert set(related) == {earned}
    assert lots(db, "anna")[0]["remaining"] == 100
    assert_consistent(db)

    again = activate_due(db, shop, now=utc(2027, 1, 24, 12))
    assert (again.lots, again.points) == (0, 0)
    later = activate_due(db, shop, now=utc(2027, 2, 1))
    assert (later.lots, later.points) == (1, 200)  # boris's, due on 25 January
    assert activate_due(db, shop, now=utc(2027, 2, 2)).lots == 0
    assert_consistent(db)


def test_a_crash_between_chunks_loses_only_the_chunk_in_flight(
    db: Engine, write_config, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    shop = shop_programme(write_config, pending_days="0", expiry='"30d"')
    names = customers(db, "c1", "c2", "c3")
    for n, name in enumerate(names):
        earn(db, shop, name, f"O{n}", 2000 * (n + 1), utc(2027, 1, 1, 12))
    monkeypatch.setattr(expiry, "CHUNK", 1)
    real_post = expiry._post
    calls = []

    def crashing(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        posted = real_post(*args, **kwargs)
        if len(calls) == 2:
            raise RuntimeError("power cut")
        return posted

    monkeypatch.setattr(expiry, "_post", crashing)
    with pytest.raises(RuntimeError, match="power cut"):
        expire_due(db, shop, now=utc(2027, 2, 1))
    assert [buckets(db, name)["available"] for name in names] == [0, 200, 300]  # c2's chunk rolled back
    assert_consistent(db)
    monkeypatch.setattr(expiry, "_post", real_post)
    resumed = expire_due(db, shop, now=utc(2027, 2, 1))
    assert (resumed.lots, resumed.points, resumed.accounts) == (2, 500, 2)
    assert [buckets(db, name)["available"] for name in names] == [0, 0, 0]
    assert expire_due(db, shop, now=utc(2027, 2, 1)).lots == 0
    assert_consistent(db)


def test_partly_spent_lots_expire_their_remainder_and_pending_lots_expire_from_pending(  # type: ignore[no-untyped-def]
    db: Engine, write_config
) -> None:
    shop = shop_programme(write_config, pending_days="0", expiry='"30d"')
    customers(db, "anna")
    earn(db, shop, "anna", "A1", 2000, utc(2027, 1, 1, 12))  # 100, expires 31 January 12:00
    earn(db, shop, "anna", "A2", 1000, utc(2027, 1, 10, 12))  # 50, expires 9 February 12:00
    redeem(db, shop, key="R1", customer="anna", points=60, now=utc(2027, 1, 15))  # 60 from the first lot
    first, second = lots(db, "anna")
    assert (first["remaining"], second["remaining"]) == (40, 50)

    assert expire_due(db, shop, now=utc(2027, 1, 31, 11, 59)).lots == 0
    done = expire_due(db, shop, now=utc(2027, 1, 31, 12))
    assert (done.lots, done.points, done.accounts) == (1, 40, 1)
    assert entries_of_lot(db, first["id"])[-1] == ("expire", "available", -40)
    assert [lot["remaining"] for lot in lots(db, "anna")] == [0, 50]
    assert buckets(db, "anna")["available"] == 50
    assert operation(db, f"expire:{first['id']}").result == {"points": 40, "lot": first["id"]}
    assert expire_due(db, shop, now=utc(2027, 2, 1)).lots == 0  # once
    assert expire_due(db, shop, now=utc(2027, 2, 9, 12)).points == 50
    assert buckets(db, "anna")["available"] == 0
    assert_consistent(db)

    # a lot that expires inside its return window expires from pending
    short = shop_programme(write_config, pending_days="14", expiry='"7d"')
    customers(db, "boris")
    earn(db, short, "boris", "B1", 2000, utc(2027, 3, 1, 12))
    lot = lots(db, "boris")[0]
    assert expire_due(db, short, now=utc(2027, 3, 8, 12)).points == 100
    assert entries_of_lot(db, lot["id"]) == [("earn", "pending", 100), ("expire", "pending", -100)]
    assert buckets(db, "boris") == {"available": 0, "pending": 0, "held": 0, "debt": 0}
    assert activate_due(db, short, now=utc(2027, 3, 20)).lots == 0
    assert_consistent(db)


def test_held_points_on_an_expired_lot_are_left_to_the_hold(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    shop = shop_programme(write_config, pending_days="0", expiry='"30d"')  # holds time out after 15 minutes
    customers(db, "anna")
    earn(db, shop, "anna", "A1", 2000, utc(2027, 1, 1, 12))  # 100, expires 31 January 12:00
    redeem(db, shop, key="H1", customer="anna", points=30, hold=True, now=utc(2027, 1, 31, 11, 55))
    assert buckets(db, "anna") == {"available": 70, "pending": 0, "held": 30, "debt": 0}
    done = expire_due(db, shop, now=utc(2027, 1, 31, 12))
    assert (done.points, done.voided_holds) == (70, 0)
    assert buckets(db, "anna") == {"available": 0, "pending": 0, "held": 30, "debt": 0}
    assert_consistent(db)
    # the hold times out at 12:10: the batch voids it, and the released points expire with their lot
    timed_out = expire_due(db, shop, now=utc(2027, 1, 31, 12, 30))
    assert timed_out.voided_holds == 1
    assert buckets(db, "anna") == {"available": 0, "pending": 0, "held": 0, "debt": 0}
    assert_consistent(db)


def test_end_of_year_expiry_follows_the_programme_zone(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    shop = shop_programme(write_config, pending_days="0", expiry='"end_of_year"', timezone='"Europe/Berlin"')
    customers(db, "anna", "boris")
    earn(db, shop, "anna", "late-2027", 2000, utc(2027, 12, 31, 22, 30))  # 23:30 on 31 December in Berlin
    earn(db, shop, "boris", "early-2028", 1000, utc(2027, 12, 31, 23, 30))  # 00:30 on 1 January in Berlin
    assert lots(db, "anna")[0]["expires_at"] == utc(2027, 12, 31, 23)  # midnight in Berlin
    assert lots(db, "boris")[0]["expires_at"] == utc(2028, 12, 31, 23)
    assert expire_due(db, shop, now=utc(2027, 12, 31, 22, 59, 59)).lots == 0
    done = expire_due(db, shop, now=utc(2027, 12, 31, 23, 45))
    assert (done.lots, done.points) == (1, 100)
    assert [lot["remaining"] for lot in lots(db, "anna") + lots(db, "boris")] == [0, 50]
    assert expire_due(db, shop, now=utc(2028, 12, 31, 22, 59)).lots == 0
    assert expire_due(db, shop, now=utc(2028, 12, 31, 23)).points == 50
    assert_consistent(db)


def test_month_end_expiry_on_the_night_clocks_go_back(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    # Berlin leaves summer time at 03:00 on Sunday 31 October 2027: that day has 25 hours, and
    # the month ends at midnight CET (+01:00), not at the summer offset the lot was earned under
    shop = shop_programme(write_config, pending_days="0", expiry='"end_of_month"', timezone='"Europe/Berlin"')
    customers(db, "anna", "boris")
    earn(db, shop, "anna", "A1", 2000, utc(2027, 10, 15, 10))
    earn(db, shop, "boris", "B1", 2000, utc(2027, 3, 20, 10))  # March ends at midnight CEST (+02:00)
    assert lots(db, "anna")[0]["expires_at"] == utc(2027, 10, 31, 23)
    assert lots(db, "boris")[0]["expires_at"] == utc(2027, 3, 31, 22)
    assert expire_due(db, shop, now=utc(2027, 3, 31, 21, 59)).lots == 0
    assert expire_due(db, shop, now=utc(2027, 3, 31, 22)).lots == 1
    assert expire_due(db, shop, now=utc(2027, 10, 31, 22, 30)).lots == 0  # 23:30 CET on the 31st
    assert expire_due(db, shop, now=utc(2027, 10, 31, 23)).points == 100
    assert_consistent(db)


def test_inactivity_expires_every_lot_of_an_idle_account(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    shop = shop_programme(write_config, pending_days="0", expiry='"inactivity"', expiry_after='"180d"')
    customers(db, "anna", "boris", "vera")
    earn(db, shop, "anna", "A1", 2000, utc(2027, 1, 1, 12))
    earn(db, shop, "anna", "A2", 1000, utc(2027, 1, 5, 12))
    earn(db, shop, "boris", "B1", 2000, utc(2027, 1, 1, 12))
    earn(db, shop, "boris", "B2", 2000, utc(2027, 4, 1, 12))  # active again in April
    earn(db, shop, "vera", "V1", 2000, utc(2027, 1, 1, 12))
    redeem(db, shop, key="V-R", customer="vera", points=10, now=utc(2027, 3, 1))  # a redemption is activity
    with db.begin() as connection:  # without last_activity_at, the latest earn or spend counts
        connection.execute(update(ACCOUNT).values(last_activity_at=None))
    assert all(lot["expires_at"] is None for lot in lots(db, "anna"))
    assert expire_due(db, shop, now=utc(2027, 7, 4, 11, 59)).lots == 0  # 5 January + 180 days = 4 July 12:00
    done = expire_due(db, shop, now=utc(2027, 7, 4, 12))
    assert (done.lots, done.points, done.inactivity_lots, done.accounts) == (2, 150, 2, 1)
    assert buckets(db, "anna")["available"] == 0
    assert buckets(db, "boris")["available"] == 200 and buckets(db, "vera")["available"] == 90
    expired = entries_of_lot(db, lots(db, "anna")[0]["id"])[-1]
    assert expired == ("expire", "available", -100)
    with db.connect() as connection:
        details = connection.execute(select(ENTRY.c.detail).where(ENTRY.c.kind == "expire")).scalars().all()
    assert details == [{"reason": "inactivity"}] * 2
    assert expire_due(db, shop, now=utc(2027, 7, 5)).lots == 0
    assert expire_due(db, shop, now=utc(2027, 8, 28, 12)).points == 90  # vera: 1 March + 180 days
    assert expire_due(db, shop, now=utc(2027, 9, 28, 12)).points == 200  # boris: 1 April + 180 days
    assert_consistent(db)


def test_activation_repays_a_debt(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    shop = shop_programme(write_config, spent_refund='"debt"')  # 14 days pending
    customers(db, "anna")
    earn(db, shop, "anna", "A1", 2000, utc(2027, 1, 1, 12))  # 100
    activate_due(db, shop, now=utc(2027, 1, 15, 12))
    redeem(db, shop, key="R1", customer="anna", points=100, now=utc(2027, 1, 16))
    earn(db, shop, "anna", "A2", 1200, utc(2027, 1, 17, 12))  # 60, pending until 31 January 12:00
    refund(db, shop, key="RF1", order="A1", now=utc(2027, 1, 18))  # the 100 were spent: owed
    assert buckets(db, "anna") == {"available": 0, "pending": 60, "held": 0, "debt": 100}
    done = activate_due(db, shop, now=utc(2027, 1, 31, 12))
    assert (done.points, done.repaid) == (60, 60)
    assert buckets(db, "anna") == {"available": 0, "pending": 0, "held": 0, "debt": 40}
    assert activate_due(db, shop, now=utc(2027, 2, 1)).repaid == 0
    assert_consistent(db)


def test_dry_run_lists_what_would_expire_and_posts_nothing(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    shop = shop_programme(write_config, pending_days="0", expiry='"30d"')
    customers(db, "anna", "boris")
    earn(db, shop, "anna", "A1", 2000, utc(2027, 1, 1, 12))
    earn(db, shop, "boris", "B1", 3000, utc(2027, 1, 2, 12))
    earn(db, shop, "boris", "B2", 1000, utc(2027, 1, 20, 12))  # expires 19 February
    preview = preview_expiry(db, shop, now=utc(2027, 2, 15))
    assert (preview.lots, preview.points, preview.accounts) == (2, 250, 2)
    assert [(lot.customer, lot.points, lot.reason) for lot in preview.shown] == [
        ("anna", 100, "expired"),
        ("boris", 150, "expired"),
    ]
    assert buckets(db, "anna")["available"] == 100
    assert expire_due(db, shop, now=utc(2027, 2, 15)).points == 250
    assert preview_expiry(db, shop, now=utc(2027, 2, 15)).lots == 0
