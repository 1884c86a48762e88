"""Tier recompute on hand-computed scenarios: windows, downgrade policies, manual tiers (both databases).

Tiers qualify on spend: silver from 0, gold from 50,000, platinum from
150,000 (``TIERS``). Purchases are earned through the ledger at explicit
times; every recompute runs at an explicit instant.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, select

from engine.errors import LoyaltyError, NotFoundError
from engine.loyalty.batch.tiers import qualifying_windows, recompute_tiers, set_tier_override, tier_report
from engine.loyalty.ledger.earning import earn_purchase
from engine.loyalty.ledger.member_moves import adjust
from engine.loyalty.ledger.refunds import refund
from engine.loyalty.programme.definition import Programme
from engine.models.tables import ACCOUNT, CUSTOMER, TIER_CHANGE
from tests.factories import utc
from tests.loyalty.ledger_setup import customers, shop_programme

TIERS = (
    '[{ name = "silver", min_spend = 0 }, { name = "gold", min_spend = 50000 },'
    ' { name = "platinum", min_spend = 150000 }]'
)
BERLIN = '"Europe/Berlin"'


def tiered(write_config: Any, **changes: str) -> Programme:
    """The shop programme with ``TIERS``, points available at once and never expiring."""
    settings = {"pending_days": "0", "expiry": '"never"', "tiers": TIERS, **changes}
    return shop_programme(write_config, **settings)


def buy(db: Engine, shop: Programme, customer: str, order: str, amount: int | str, at: dt.datetime) -> None:
    earn_purchase(db, shop, order=order, customer=customer, amount=Decimal(amount), now=at)


def tier_of(db: Engine, customer: str) -> Any:
    with db.connect() as connection:
        return connection.execute(
            select(ACCOUNT.c.tier, ACCOUNT.c.tier_since, ACCOUNT.c.grace_until, ACCOUNT.c.tier_override)
            .join(CUSTOMER, CUSTOMER.c.id == ACCOUNT.c.customer_id)
            .where(CUSTOMER.c.external_id == customer)
        ).one()


def changes(db: Engine) -> list[tuple[str, str | None, str | None, str]]:
    """(customer, from, to, reason) of every recorded tier change, in order."""
    with db.connect() as connection:
        rows = connection.execute(
            select(
                CUSTOMER.c.external_id, TIER_CHANGE.c.from_tier, TIER_CHANGE.c.to_tier, TIER_CHANGE.c.reason
            )
            .select_from(
                TIER_CHANGE.join(ACCOUNT, ACCOUNT.c.id == TIER_CHANGE.c.account_id).join(
                    CUSTOMER, CUSTOMER.c.id == ACCOUNT.c.customer_id
                )
            )
            .order_by(TIER_CHANGE.c.id)
        ).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def test_rolling_window_upgrades_at_once_and_downgrades_when_spend_leaves_it(
    db: Engine, write_config
) -> None:  # type: ignore[no-untyped-def]
    shop = tiered(write_config)  # rolling 365 days, downgrade = recompute
    customers(db, "anna", "boris")
    buy(db, shop, "anna", "A1", 30000, utc(2027, 3, 1, 12))
    buy(db, shop, "boris", "B1", 1000, utc(2027, 3, 1, 12))
    first = recompute_tiers(db, shop, now=utc(2027, 3, 2))
    assert (first.accounts, first.upgraded, len(first.changes)) == (2, 2, 2)
    assert tier_of(db, "anna").tier == "silver" and tier_of(db, "boris").tier == "silver"
    buy(db, shop, "anna", "A2", 25000, utc(2027, 9, 1, 12))
    assert recompute_tiers(db, shop, now=utc(2027, 9, 1, 12)).upgraded == 1
    assert tier_of(db, "anna").tier == "gold" and tier_of(db, "anna").tier_since == utc(2027, 9, 1, 12)
    assert recompute_tiers(db, shop, now=utc(2027, 9, 2)).changes == []  # nothing new: nothing recorded
    # 1 March 2027 12:00 + 365 days is 29 February 2028 12:00 (a leap year): the first purchase leaves then
    assert recompute_tiers(db, shop, now=utc(2028, 2, 29, 11, 59)).changes == []
    down = recompute_tiers(db, shop, now=utc(2028, 2, 29, 12))
    assert (down.downgraded, tier_of(db, "anna").tier) == (1, "silver")
    assert changes(db) == [
        ("anna", None, "silver", "qualified"),
        ("boris", None, "silver", "qualified"),
        ("anna", "silver", "gold", "qualified"),
        ("anna", "gold", "silver", "downgrade"),
    ]
    with db.connect() as connection:
        qualifying = connection.execute(select(TIER_CHANGE.c.qualifying).order_by(TIER_CHANGE.c.id)).scalars()
        assert list(qualifying) == [Decimal(30000), Decimal(1000), Decimal(55000), Decimal(25000)]


def test_a_refund_takes_its_spend_back(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    shop = tiered(write_config)
    customers(db, "anna")
    buy(db, shop, "anna", "A1", "60000.50", utc(2027, 3, 1, 12))
    recompute_tiers(db, shop, now=utc(2027, 3, 2))
    assert tier_of(db, "anna").tier == "gold"
    refund(db, shop, key="RF1", order="A1", amount=Decimal("10000.51"), now=utc(2027, 3, 3))
    report = tier_report(db, shop, now=utc(2027, 3, 4))
    assert [(a.customer, a.qualifying, a.target) for a in report.accounts] == [
        ("anna", Decimal("49999.99"), "silver")
    ]
    recompute_tiers(db, shop, now=utc(2027, 3, 4))
    assert tier_of(db, "anna").tier == "silver"


def test_calendar_year_counts_the_programme_zone_year(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    shop = tiered(write_config, tier_window='"calendar_year"', timezone=BERLIN)
    customers(db, "boris", "vera")
    buy(db, shop, "boris", "B1", 60000, utc(2027, 12, 31, 22, 30))  # 23:30 on 31 December 2027 in Berlin
    buy(db, shop, "vera", "V1", 60000, utc(2027, 12, 31, 23, 30))  # 00:30 on 1 January 2028 in Berlin
    recompute_tiers(db, shop, now=utc(2027, 12, 31, 23, 45))
    assert tier_of(db, "boris").tier == "gold" and tier_of(db, "vera").tier == "gold"
    # through 2028 both stay gold: boris on 2027 (the last year), vera on 2028 (the current one)
    assert recompute_tiers(db, shop, now=utc(2028, 12, 31, 22, 59)).changes == []
    # 1 January 2029 in Berlin: 2028 is the last year; boris spent nothing in it
    recompute_tiers(db, shop, now=utc(2028, 12, 31, 23))
    assert tier_of(db, "boris").tier == "silver" and tier_of(db, "vera").tier == "gold"
    recompute_tiers(db, shop, now=utc(2029, 12, 31, 23))
    assert tier_of(db, "vera").tier == "silver"


def test_calendar_month_boundary_on_the_night_clocks_go_back(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    # Berlin leaves summer time on 31 October 2027: November starts at 23:00 UTC (+01:00), not 22:00
    shop = tiered(write_config, tier_window='"calendar_month"', timezone=BERLIN)
    current, previous = qualifying_windows(shop, utc(2027, 12, 1))  # 02:00 on 1 December in Berlin
    assert previous is not None
    assert (previous.start, previous.end) == (utc(2027, 10, 31, 23), utc(2027, 11, 30, 23))
    assert current.start == utc(2027, 11, 30, 23)
    customers(db, "anna", "boris")
    buy(db, shop, "anna", "A1", 60000, utc(2027, 10, 31, 22, 59))  # 23:59 CET on 31 October
    buy(db, shop, "boris", "B1", 60000, utc(2027, 10, 31, 23))  # midnight: 1 November
    report = tier_report(db, shop, now=utc(2027, 12, 1))
    assert [(a.customer, a.qualifying) for a in report.accounts] == [("anna", 0), ("boris", 60000)]


def test_downgrade_recompute_goes_straight_to_the_target(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    shop = tiered(write_config, tier_window='"calendar_year"', timezone=BERLIN)
    customers(db, "anna")
    buy(db, shop, "anna", "A1", 160000, utc(2027, 6, 1))
    recompute_tiers(db, shop, now=utc(2027, 6, 2))
    recompute_tiers(db, shop, now=utc(2027, 12, 31, 23, 30))  # 2028 in Berlin: 2027 still qualifies
    assert tier_of(db, "anna").tier == "platinum"
    recompute_tiers(db, shop, now=utc(2028, 12, 31, 23, 30))
    assert tier_of(db, "anna").tier == "silver"
    assert changes(db)[-1] == ("anna", "platinum", "silver", "downgrade")


def test_downgrade_one_level_per_recompute(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    shop = tiered(write_config, tier_window='"calendar_year"', timezone=BERLIN, downgrade='"one_level"')
    customers(db, "anna")
    buy(db, shop, "anna", "A1", 160000, utc(2027, 6, 1))
    recompute_tiers(db, shop, now=utc(2027, 6, 2))
    recompute_tiers(db, shop, now=utc(2028, 12, 31, 23, 30))  # 1 January 2029: 2028 had nothing
    assert tier_of(db, "anna").tier == "gold"
    recompute_tiers(db, shop, now=utc(2029, 1, 1, 23, 30))
    assert tier_of(db, "anna").tier == "silver"
    assert recompute_tiers(db, shop, now=utc(2029, 1, 2, 23, 30)).changes == []  # silver is the floor
    assert [c[1:] for c in changes(db)] == [
        (None, "platinum", "qualified"),
        ("platinum", "gold", "downgrade one level"),
        ("gold", "silver", "downgrade one level"),
    ]


def test_downgrade_after_grace_and_grace_cleared_when_back_above(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    shop = tiered(
        write_config, tier_window='"calendar_year"', timezone=BERLIN, downgrade='"grace"', grace_days="30"
    )
    customers(db, "anna", "boris")
    buy(db, shop, "anna", "A1", 160000, utc(2027, 6, 1))
    buy(db, shop, "boris", "B1", 160000, utc(2027, 6, 1))
    recompute_tiers(db, shop, now=utc(2027, 6, 2))
    new_year = utc(2028, 12, 31, 23, 30)  # 00:30 on 1 January 2029 in Berlin
    started = recompute_tiers(db, shop, now=new_year)
    assert (started.grace_started, started.changes) == (2, [])
    assert tier_of(db, "anna").tier == "platinum"
    assert tier_of(db, "anna").grace_until == new_year + dt.timedelta(days=30)
    buy(db, shop, "boris", "B2", 150000, utc(2029, 1, 10))  # back at platinum within the grace
    cleared = recompute_tiers(db, shop, now=utc(2029, 1, 15))
    assert (cleared.grace_cleared, cleared.changes) == (1, [])
    assert tier_of(db, "boris").grace_until is None and tier_of(db, "boris").tier == "platinum"
    assert recompute_tiers(db, shop, now=new_year + dt.timedelta(days=30, seconds=-1)).changes == []
    ended = recompute_tiers(db, shop, now=new_year + dt.timedelta(days=30))
    assert ended.downgraded == 1
    anna = tier_of(db, "anna")
    assert (anna.tier, anna.grace_until) == ("silver", None)
    assert changes(db)[-1] == ("anna", "platinum", "silver", "downgrade after grace")


def test_a_manual_tier_holds_until_its_end_then_the_activity_decides(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    shop = tiered(write_config, timezone=BERLIN)
    customers(db, "anna", "newcomer")
    buy(db, shop, "anna", "A1", 60000, utc(2027, 3, 1))
    recompute_tiers(db, shop, now=utc(2027, 3, 2))
    assert tier_of(db, "anna").tier == "gold"
    with db.connect() as connection:
        anna_id = connection.execute(
            select(CUSTOMER.c.id).where(CUSTOMER.c.external_id == "anna")
        ).scalar_one()
        newcomer = connection.execute(
            select(CUSTOMER.c.id).where(CUSTOMER.c.external_id == "newcomer")
        ).scalar_one()
    until = utc(2027, 6, 30, 22)  # midnight ending 30 June in Berlin
    change = set_tier_override(
        db, shop, anna_id, "platinum", until=until, reason="status match", actor="maria", now=utc(2027, 4, 1)
    )
    assert (change.customer, change.from_tier, change.to_tier, change.until) == (
        "anna",
        "gold",
        "platinum",
        until,
    )
    assert tier_of(db, "anna").tier == "platinum" and tier_of(db, "anna").tier_override == "platinum"
    assert recompute_tiers(db, shop, now=utc(2027, 6, 30, 21, 59)).changes == []
    ended = recompute_tiers(db, shop, now=until)
    assert (ended.overrides_ended, ended.downgraded) == (1, 1)
    anna = tier_of(db, "anna")
    assert (anna.tier, anna.tier_override) == ("gold", None)
    assert changes(db)[-2:] == [
        ("anna", "gold", "platinum", "status match"),
        ("anna", "platinum", "gold", "override ended"),
    ]
    with db.connect() as connection:
        manual = connection.execute(
            select(TIER_CHANGE.c.actor, TIER_CHANGE.c.until).where(TIER_CHANGE.c.reason == "status match")
        ).one()
    assert tuple(manual) == ("maria", until)

    # a customer without an account gets one, held at the tier
    set_tier_override(db, shop, newcomer, "gold", until=until, reason="welcome", now=utc(2027, 4, 1))
    assert tier_of(db, "newcomer").tier == "gold"
    with pytest.raises(NotFoundError, match="known: gold, platinum, silver"):
        set_tier_override(db, shop, anna_id, "diamond", until=until, reason="x", now=utc(2027, 4, 1))
    with pytest.raises(LoyaltyError, match="in the future"):
        set_tier_override(db, shop, anna_id, "gold", until=utc(2027, 1, 1), reason="x", now=utc(2027, 4, 1))
    with pytest.raises(LoyaltyError, match="needs a reason"):
        set_tier_override(db, shop, anna_id, "gold", until=until, reason=" ", now=utc(2027, 4, 1))


def test_points_tiers_count_purchases_but_not_adjustments(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    shop = tiered(
        write_config, tiers='[{ name = "member", min_points = 0 }, { name = "vip", min_points = 150 }]'
    )
    customers(db, "anna")
    buy(db, shop, "anna", "A1", 2000, utc(2027, 3, 1))  # 100 points
    adjust(
        db,
        shop,
        key="ADJ",
        customer="anna",
        points=5000,
        reason="goodwill",
        actor="maria",
        now=utc(2027, 3, 2),
    )
    recompute_tiers(db, shop, now=utc(2027, 3, 3))
    assert tier_of(db, "anna").tier == "member"
    buy(db, shop, "anna", "A2", 1000, utc(2027, 3, 4))  # 50 more: 150
    recompute_tiers(db, shop, now=utc(2027, 3, 5))
    assert tier_of(db, "anna").tier == "vip"
    refund(db, shop, key="RF", order="A2", now=utc(2027, 3, 6))  # its 50 points clawed back
    recompute_tiers(db, shop, now=utc(2027, 3, 7))
    assert tier_of(db, "anna").tier == "member"
    report = tier_report(db, shop, now=utc(2027, 3, 7))
    assert (report.qualify, report.counts, report.accounts[0].qualifying) == ("points", {"member": 1}, 100)
