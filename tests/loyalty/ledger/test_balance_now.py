"""The balance is true now: points out of their return window are available at once, without the batch.

The ``shop`` programme: 14 days in the return window, a point is worth 0.50.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from freezegun import freeze_time
from sqlalchemy import Engine, func, select

from engine.clock import utcnow
from engine.loyalty.ledger.earning import earn_purchase
from engine.loyalty.ledger.redemption import redeem
from engine.loyalty.ledger.statement import balance, statement
from engine.models.tables import OPERATION
from tests.cli.test_cli import crm
from tests.loyalty.ledger_setup import assert_consistent, buckets, customers, shop_programme


def _operations(db: Engine) -> int:
    with db.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(OPERATION)).scalar_one())


def test_points_that_matured_an_hour_ago_are_available_at_the_till(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    shop = shop_programme(write_config)
    customers(db, "anna")
    with freeze_time("2027-01-10 12:00:00"):
        earn_purchase(db, shop, order="A", customer="anna", amount=Decimal(2000))
    # 14 days later at 12:00 the lot left the return window; no batch has run since
    with freeze_time("2027-01-24 13:00:00"):
        before = _operations(db)
        now = balance(db, shop, "anna")
        assert (now.available, now.pending) == (100, 0)
        assert now.value == Decimal("50.00")  # the available points in money
        assert _operations(db) == before + 1  # the activation, as the batch or any command posts it
        again = balance(db, shop, "anna")
        assert (again.available, _operations(db)) == (100, before + 1)  # nothing more to post
        lines = statement(db, shop, "anna").lines
        assert [line.command for line in lines][-1] == "activate"
        assert redeem(db, shop, key="R1", customer="anna", points=100).available == 0
    assert_consistent(db)


def test_reading_a_balance_with_nothing_due_posts_nothing(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    shop = shop_programme(write_config)
    customers(db, "boris")
    with freeze_time("2027-01-10 12:00:00"):
        earn_purchase(db, shop, order="B", customer="boris", amount=Decimal(2000))
    with freeze_time("2027-01-24 11:59:00"):  # a minute before the return window ends
        before = _operations(db)
        now = balance(db, shop, "boris")
        assert (now.available, now.pending, now.value) == (0, 100, Decimal("0.00"))
        assert _operations(db) == before
    assert buckets(db, "boris")["pending"] == 100


def test_the_cli_says_it_too(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    shop = shop_programme(write_config)
    customers(db, "C-9")
    matured = utcnow() - dt.timedelta(days=14, hours=1)  # the return window ended an hour ago
    earn_purchase(db, shop, order="O-9", customer="C-9", amount=Decimal(2000), now=matured)
    spent = crm("loyalty", "redeem", "C-9", "--key", "R-9", "--points", "40", "--programme", "shop")
    assert spent.returncode == 0, spent.stderr
    assert "redeem R-9: 40 points spent for C-9" in spent.stdout and "+40" not in spent.stdout
    shown = crm("loyalty", "balance", "C-9", "--programme", "shop")
    assert "60 available, 0 pending" in shown.stdout and "available points worth 30.00" in shown.stdout
