"""The ledger's commands on hand-computed scenarios, on SQLite and PostgreSQL.

The ``shop`` programme: 5 % of the amount in points, cosmetics double, 14
days in the return window, lots live 365 days, a point is worth 0.50.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from freezegun import freeze_time
from sqlalchemy import Engine, select

from engine.errors import (
    HoldClosedError,
    IdempotencyConflictError,
    InsufficientPointsError,
    LoyaltyError,
    NotFoundError,
)
from engine.loyalty.ledger.earning import earn_event, earn_purchase
from engine.loyalty.ledger.member_moves import adjust, merge, transfer
from engine.loyalty.ledger.redemption import capture, redeem, void, void_expired_holds
from engine.loyalty.ledger.refunds import refund
from engine.loyalty.ledger.statement import balance, statement
from engine.models.tables import ENTRY, OPERATION
from tests.factories import utc
from tests.loyalty.ledger_setup import (
    assert_consistent,
    buckets,
    customers,
    entry_count,
    lots,
    shop_programme,
)


def test_earn_pending_activate_and_redeem_soonest_expiring_first(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    shop = shop_programme(write_config)
    customers(db, "anna")
    with freeze_time("2027-01-10 12:00:00"):
        first = earn_purchase(
            db, shop, order="A", customer="anna", amount=Decimal(2000), category="cosmetics"
        )
    assert first.points == 200  # 2000 x 5 % x 2
    assert (first.available, first.pending) == (0, 200)
    with freeze_time("2027-01-20 12:00:00"):
        second = earn_purchase(db, shop, order="B", customer="anna", amount=Decimal(1000))
    assert second.points == 50
    with freeze_time("2027-01-23 12:00:00"), pytest.raises(InsufficientPointsError, match="0 available"):
        redeem(db, shop, key="R0", customer="anna", points=100)
    # on 24 January at 12:00 the first lot leaves the return window; the second on 3 February
    with freeze_time("2027-01-24 12:00:00"):
        assert redeem(db, shop, key="R1", customer="anna", points=120).available == 80
    assert buckets(db, "anna") == {"available": 80, "pending": 50, "held": 0, "debt": 0}
    with freeze_time("2027-02-05 09:00:00"):
        spent = redeem(db, shop, key="R2", customer="anna", points=100)
    assert spent.available == 30
    assert spent.detail["value"] == "50.00"  # 100 points x 0.50
    # the lot of 10 January expires first, so it was emptied first: 80 from it, 20 from the second
    assert spent.detail["lots"] == [[lots(db, "anna")[0]["id"], 80], [lots(db, "anna")[1]["id"], 20]]
    assert [(lot["points"], lot["remaining"]) for lot in lots(db, "anna")] == [(200, 0), (50, 30)]
    assert lots(db, "anna")[0]["expires_at"] == utc(2028, 1, 10, 12)
    assert_consistent(db)


def test_expired_points_leave_at_their_date(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    shop = shop_programme(write_config, pending_days="0", expiry='"30d"')
    customers(db, "boris")
    earn_purchase(db, shop, order="E1", customer="boris", amount=Decimal(2000), now=utc(2027, 3, 1))
    redeem(db, shop, key="R", customer="boris", points=30, now=utc(2027, 3, 10))
    with pytest.raises(InsufficientPointsError, match="0 available"):
        redeem(db, shop, key="R-late", customer="boris", points=1, now=utc(2027, 3, 31))
    # a refused command posts nothing, not even the expiry it found due; the next command (or the batch) does
    assert buckets(db, "boris")["available"] == 70
    gift = adjust(
        db, shop, key="GIFT", customer="boris", points=5, reason="sorry", actor="ops", now=utc(2027, 3, 31)
    )
    assert gift.available == 5
    with db.connect() as connection:
        expired = connection.execute(select(ENTRY.c.points).where(ENTRY.c.kind == "expire")).scalars().all()
    assert expired == [-70]  # 100 earned, 30 spent, 70 expired on 31 March
    assert_consistent(db)


def test_refund_after_partial_redemption_claws_back_then_records_debt(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    shop = shop_programme(write_config, pending_days="0")
    customers(db, "vera")
    earn_purchase(db, shop, order="O1", customer="vera", amount=Decimal(4000), now=utc(2027, 5, 1))  # 200
    earn_purchase(db, shop, order="O2", customer="vera", amount=Decimal(1000), now=utc(2027, 5, 2))  # 50
    redeem(db, shop, key="R", customer="vera", points=180, now=utc(2027, 5, 3))  # 180 from O1's lot
    half = refund(db, shop, key="RET-1", order="O1", amount=Decimal(2000), now=utc(2027, 5, 4))
    # half the order: 100 points back: 20 left on O1's own lot, then 50 of O2's lot, then 30 owed
    assert half.detail["clawed_back"] == 100
    assert buckets(db, "vera") == {"available": 0, "pending": 0, "held": 0, "debt": 30}
    rest = refund(db, shop, key="RET-2", order="O1", now=utc(2027, 5, 5))
    assert rest.detail["clawed_back"] == 100 and rest.detail["refunded"] == "2000.00"
    assert buckets(db, "vera")["debt"] == 130  # never a negative balance: the debt is recorded
    with pytest.raises(LoyaltyError, match=r"0.00 of 4000.00 is left to refund, 1 asked"):
        refund(db, shop, key="RET-3", order="O1", amount=Decimal(1), now=utc(2027, 5, 6))
    # new points pay the debt first
    repaid = earn_purchase(db, shop, order="O3", customer="vera", amount=Decimal(3000), now=utc(2027, 5, 7))
    assert (repaid.points, repaid.available, repaid.debt) == (150, 20, 0)
    assert_consistent(db)


def test_refund_gives_back_points_spent_on_the_order(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    shop = shop_programme(write_config, pending_days="0")
    customers(db, "gleb")
    earn_purchase(db, shop, order="O1", customer="gleb", amount=Decimal(4000), now=utc(2027, 6, 1))  # 200
    redeem(
        db,
        shop,
        key="PAY",
        customer="gleb",
        points=100,
        order="O2",
        order_amount=Decimal(1000),
        now=utc(2027, 6, 2),
    )
    back = refund(db, shop, key="RET", order="O2", amount=Decimal(250), now=utc(2027, 6, 3))
    assert back.points == 25 and back.available == 125
    rest = refund(db, shop, key="RET-2", order="O2", now=utc(2027, 6, 4))
    assert rest.points == 75 and rest.available == 200
    assert_consistent(db)


def test_a_key_replays_its_result_and_refuses_other_content(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    shop = shop_programme(write_config, pending_days="0")
    customers(db, "dina")
    first = earn_purchase(db, shop, order="POS-1", customer="dina", amount=Decimal(1000), now=utc(2027, 1, 1))
    entries = entry_count(db)
    again = earn_purchase(db, shop, order="POS-1", customer="dina", amount=Decimal(1000), now=utc(2027, 1, 2))
    assert again.replayed and again.points == first.points == 50 and entry_count(db) == entries
    with pytest.raises(IdempotencyConflictError, match="POS-1"):
        earn_purchase(db, shop, order="POS-1", customer="dina", amount=Decimal(9000), now=utc(2027, 1, 2))
    spend = redeem(db, shop, key="R-1", customer="dina", points=20, now=utc(2027, 1, 3))
    assert redeem(db, shop, key="R-1", customer="dina", points=20, now=utc(2027, 1, 4)) == type(spend)(
        **{**spend.__dict__, "replayed": True}
    )
    with pytest.raises(IdempotencyConflictError):
        redeem(db, shop, key="R-1", customer="dina", points=21, now=utc(2027, 1, 4))
    assert buckets(db, "dina")["available"] == 30
    assert_consistent(db)


def test_hold_then_capture_or_void_and_timeout(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    shop = shop_programme(write_config, pending_days="0")
    customers(db, "egor")
    earn_purchase(db, shop, order="O1", customer="egor", amount=Decimal(8000), now=utc(2027, 2, 1, 10))  # 400
    held = redeem(db, shop, key="H1", customer="egor", reward="coffee", hold=True, now=utc(2027, 2, 1, 11))
    assert (held.points, held.available, held.held) == (150, 250, 150)
    taken = capture(db, shop, key="C1", hold_key="H1", now=utc(2027, 2, 1, 11, 5))
    assert (taken.available, taken.held) == (250, 0)
    assert capture(db, shop, key="C1", hold_key="H1", now=utc(2027, 2, 1, 11, 6)).replayed
    with pytest.raises(HoldClosedError, match="already captured"):
        void(db, shop, key="V1", hold_key="H1", now=utc(2027, 2, 1, 11, 7))
    redeem(db, shop, key="H2", customer="egor", points=100, hold=True, now=utc(2027, 2, 1, 12))
    assert void(db, shop, key="V2", hold_key="H2", now=utc(2027, 2, 1, 12, 1)).available == 250
    redeem(db, shop, key="H3", customer="egor", points=200, hold=True, now=utc(2027, 2, 1, 13))
    with pytest.raises(HoldClosedError, match="timed out"):
        capture(db, shop, key="C3", hold_key="H3", now=utc(2027, 2, 1, 13, 16))
    assert void_expired_holds(db, shop, now=utc(2027, 2, 1, 13, 16)) == 1
    assert void_expired_holds(db, shop, now=utc(2027, 2, 1, 13, 17)) == 0
    assert buckets(db, "egor") == {"available": 250, "pending": 0, "held": 0, "debt": 0}
    assert_consistent(db)


def test_adjust_transfer_and_merge_keep_lots_and_dates(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    shop = shop_programme(write_config)
    customers(db, "fedor", "galina", "galina-dup")
    earn_purchase(db, shop, order="O1", customer="fedor", amount=Decimal(2000), now=utc(2027, 1, 1))  # 100
    adjusted = adjust(
        db,
        shop,
        key="ADJ",
        customer="fedor",
        points=40,
        reason="late delivery",
        actor="ops",
        now=utc(2027, 1, 20),
    )
    assert (adjusted.available, adjusted.pending) == (
        140,
        0,
    )  # the first lot left its return window on 15 Jan
    with pytest.raises(InsufficientPointsError):
        adjust(
            db,
            shop,
            key="ADJ-2",
            customer="fedor",
            points=-141,
            reason="typo",
            actor="ops",
            now=utc(2027, 1, 21),
        )
    moved = transfer(db, shop, key="TR", source="fedor", target="galina", points=120, now=utc(2027, 1, 22))
    assert moved.points == 120 and moved.available == 20
    galina_lots = lots(db, "galina")
    assert [lot["expires_at"] for lot in galina_lots] == [utc(2028, 1, 1), utc(2028, 1, 20)]
    # the duplicate has pending points and a debt; merging moves both and the pending stays pending
    earn_purchase(db, shop, order="O2", customer="galina-dup", amount=Decimal(1000), now=utc(2027, 1, 22))
    merged = merge(db, shop, key="M", source="galina-dup", target="galina", actor="ops", now=utc(2027, 1, 23))
    assert merged.points == 50
    assert buckets(db, "galina") == {"available": 120, "pending": 50, "held": 0, "debt": 0}
    assert buckets(db, "galina-dup") == {"available": 0, "pending": 0, "held": 0, "debt": 0}
    # points earned later by the merged-away customer land on the surviving account
    later = earn_purchase(
        db, shop, order="O3", customer="galina-dup", amount=Decimal(200), now=utc(2027, 2, 10)
    )
    assert (later.customer, later.available, later.pending) == (
        "galina",
        170,
        10,
    )  # 120 + 50 activated; 10 new
    # worth: the available points only (170 x 0.5); the 10 pending are shown apart
    assert balance(db, shop, "galina", now=utc(2027, 2, 10)).value == Decimal("85.00")
    assert_consistent(db)


def test_transfers_need_a_transferable_programme(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    shop = shop_programme(write_config, transferable="false")
    customers(db, "a", "b")
    with pytest.raises(LoyaltyError, match="does not allow transfers"):
        transfer(db, shop, key="T", source="a", target="b", points=1, now=utc(2027, 1, 1))


def test_statement_explains_every_entry(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    shop = shop_programme(write_config, pending_days="0")
    customers(db, "ivan")
    earn_purchase(
        db, shop, order="O1", customer="ivan", amount=Decimal(2000), category="cosmetics", now=utc(2027, 4, 1)
    )
    adjust(
        db,
        shop,
        key="ADJ",
        customer="ivan",
        points=-50,
        reason="goodwill reversed",
        actor="anna.k",
        now=utc(2027, 4, 2),
    )
    result = statement(db, shop, "ivan")
    assert [(line.kind, line.points, line.balance) for line in result.lines] == [
        ("earn", 200, 200),
        ("adjust", -50, 150),
    ]
    assert "base" in result.lines[0].explanation and "cosmetics x2" in result.lines[0].explanation
    assert result.lines[0].config_version == shop.config_version
    assert "by anna.k" in result.lines[1].explanation and "goodwill reversed" in result.lines[1].explanation
    with db.connect() as connection:
        versions = set(connection.execute(select(OPERATION.c.config_version)).scalars())
    assert versions == {shop.config_version}


def test_a_refused_command_posts_nothing(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    shop = shop_programme(write_config, pending_days="0")
    customers(db, "kira")
    earn_purchase(db, shop, order="O1", customer="kira", amount=Decimal(1000), now=utc(2027, 1, 1))
    before = entry_count(db)
    for call in (
        lambda: redeem(db, shop, key="X1", customer="kira", points=51, now=utc(2027, 1, 2)),
        lambda: redeem(db, shop, key="X2", customer="kira", reward="yacht", now=utc(2027, 1, 2)),
        lambda: refund(db, shop, key="X3", order="nope", now=utc(2027, 1, 2)),
        lambda: capture(db, shop, key="X4", hold_key="nope", now=utc(2027, 1, 2)),
        lambda: earn_event(db, shop, key="X5", customer="kira", event="birthday", now=utc(2027, 1, 2)),
    ):
        with pytest.raises((LoyaltyError, NotFoundError)):
            call()
    assert entry_count(db) == before
    with db.connect() as connection:
        keys = set(connection.execute(select(OPERATION.c.key)).scalars())
    assert keys == {"purchase:O1"}


def test_a_refund_does_not_take_back_points_that_expired_unused(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    shop = shop_programme(write_config, pending_days="0", expiry='"30d"')
    customers(db, "lena")
    earn_purchase(db, shop, order="OLD", customer="lena", amount=Decimal(2000), now=utc(2027, 1, 1))  # 100
    redeem(db, shop, key="R", customer="lena", points=60, now=utc(2027, 1, 10))
    earn_purchase(db, shop, order="NEW", customer="lena", amount=Decimal(1000), now=utc(2027, 2, 5))  # 50
    # the 40 points left of OLD expired on 31 January; refunding OLD takes back only the 60 she used
    back = refund(db, shop, key="RET", order="OLD", now=utc(2027, 2, 6))
    assert back.detail["clawed_back"] == 60
    assert buckets(db, "lena") == {"available": 0, "pending": 0, "held": 0, "debt": 10}
    assert_consistent(db)


def test_the_debt_policy_keeps_other_points_and_new_points_pay_the_debt(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    shop = shop_programme(write_config, pending_days="0", spent_refund='"debt"')
    customers(db, "oleg")
    earn_purchase(db, shop, order="O1", customer="oleg", amount=Decimal(2000), now=utc(2027, 1, 1))  # 100
    earn_purchase(db, shop, order="O2", customer="oleg", amount=Decimal(2000), now=utc(2027, 1, 2))  # 100
    redeem(db, shop, key="R", customer="oleg", points=100, now=utc(2027, 1, 3))  # all of O1's lot
    refund(db, shop, key="RET", order="O1", now=utc(2027, 1, 4))
    assert buckets(db, "oleg") == {"available": 100, "pending": 0, "held": 0, "debt": 100}
    redeem(db, shop, key="R2", customer="oleg", points=10, now=utc(2027, 1, 5))  # a spend does not repay
    assert buckets(db, "oleg")["debt"] == 100
    later = earn_purchase(db, shop, order="O3", customer="oleg", amount=Decimal(1000), now=utc(2027, 1, 6))
    assert (later.available, later.debt) == (40, 0)  # new points: the debt is paid first (90 + 50 - 100)
    assert_consistent(db)
