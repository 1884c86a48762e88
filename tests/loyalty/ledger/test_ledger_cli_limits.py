"""``crm loyalty`` held to the engine's limits: exit 1 naming the option, nothing written, no traceback.

Just inside and just outside each limit of the options that take money,
points, quantities, days, times and periods.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine, func, select

from engine.models.tables import ENTRY, OPERATION, PURCHASE
from tests.cli.test_cli import crm
from tests.loyalty.ledger_setup import customers, shop_programme


def _counts(db: Engine) -> tuple[int, ...]:
    with db.connect() as connection:
        return tuple(
            int(connection.execute(select(func.count()).select_from(table)).scalar_one())
            for table in (OPERATION, ENTRY, PURCHASE)
        )


def _refused(db: Engine, option: str, reason: str, *args: str) -> None:
    before = _counts(db)
    result = crm("loyalty", *args, "--programme", "shop")
    assert result.returncode == 1, (args, result.stdout, result.stderr)
    assert option in result.stderr and reason in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert _counts(db) == before, f"{args}: something was written"


def test_earn_with_an_amount_of_1e30_exits_1_naming_amount_and_writes_nothing(
    db: Engine, write_config
) -> None:  # type: ignore[no-untyped-def]
    shop_programme(write_config, pending_days="0")
    customers(db, "C-1")
    _refused(
        db,
        "'--amount'",
        "amount 1E+30 is above the limit of 100,000,000.00",
        "earn",
        "C-1",
        "--order",
        "POS-1",
        "--amount",
        "1e30",
    )
    for amount, reason in (
        ("100000000.01", "above the limit of 100,000,000.00"),
        ("0", "must be at least 0.01"),
        ("12.345", "more than 2 decimal places"),
        ("NaN", "not a finite number"),
        ("Infinity", "not a finite number"),
    ):
        _refused(db, "'--amount'", reason, "earn", "C-1", "--order", "POS-1", "--amount", amount)
    _refused(
        db,
        "'--quantity'",
        "above the limit",
        "earn",
        "C-1",
        "--order",
        "POS-1",
        "--amount",
        "10",
        "--quantity",
        "1000000.001",
    )
    _refused(
        db,
        "--at",
        "is outside 1970-01-01 .. 2199-12-31",
        "earn",
        "C-1",
        "--order",
        "POS-1",
        "--amount",
        "10",
        "--at",
        "0001-01-01",
    )
    just_inside = crm(
        "loyalty",
        "earn",
        "C-1",
        "--order",
        "POS-1",
        "--amount",
        "100000000.00",
        "--programme",
        "shop",
        "--json",
    )
    assert just_inside.returncode == 0, just_inside.stderr
    assert json.loads(just_inside.stdout)["points"] == 5_000_000


@pytest.mark.parametrize(
    ("args", "option", "reason"),
    [
        (
            ("redeem", "C-1", "--key", "R-1", "--points", "10000001"),
            "'--points'",
            "above the limit of 10,000,000",
        ),
        (
            ("redeem", "C-1", "--key", "R-1", "--points", "9223372036854775808"),
            "'--points'",
            "above the limit",
        ),
        (("redeem", "C-1", "--key", "R-1", "--points", "0"), "'--points'", "must be at least 1"),
        (
            ("redeem", "C-1", "--key", "R-1", "--points", "5", "--order", "O", "--order-amount", "1e30"),
            "'--order-amount'",
            "above the limit",
        ),
        (("refund", "POS-1", "--key", "RET-1", "--amount", "1e30"), "'--amount'", "above the limit"),
        (
            ("adjust", "C-1", "--points", "-10000001", "--key", "A-1", "--reason", "r"),
            "'--points'",
            "below the limit of -10,000,000",
        ),
        (
            ("adjust", "C-1", "--points", "10", "--key", "A-1", "--reason", "r", "--expires", "9999-12-31"),
            "--expires",
            "is outside",
        ),
        (("transfer", "C-1", "C-2", "10000001", "--key", "T-1"), "'points'", "above the limit"),
        (
            ("statement", "C-1", "--until", "9999-12-31"),
            "--until",
            "day 9999-12-31 is outside 1970-01-01 .. 2199-12-31",
        ),
        (("statement", "C-1", "--since", "0"), "--since", "is not a day"),
        (("expire", "--as-of", "0001-01-01T00:00+05:00"), "--as-of", "is outside"),
        (("tiers", "--limit", "99999999999999999999"), "'--limit'", "1000000000"),
        (("liability", "--as-of", "2200-01-01"), "--as-of", "is outside"),
        (("settlement", "9999"), "PERIOD", "first day 9999-01-01 is outside"),
    ],
)
def test_options_beyond_the_limits_exit_1_naming_the_option(  # type: ignore[no-untyped-def]
    db: Engine, write_config, args: tuple[str, ...], option: str, reason: str
) -> None:
    shop_programme(write_config, pending_days="0")
    customers(db, "C-1", "C-2")
    _refused(db, option, reason, *args)


def test_points_and_days_at_the_limits_are_taken(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    shop_programme(write_config, pending_days="0")
    customers(db, "C-1", "C-2")
    adjusted = crm(
        "loyalty",
        "adjust",
        "C-1",
        "--points",
        "10000000",
        "--key",
        "A-1",
        "--reason",
        "r",
        "--expires",
        "2199-12-31",
        "--programme",
        "shop",
        "--json",
    )
    assert adjusted.returncode == 0, adjusted.stderr
    assert json.loads(adjusted.stdout)["available"] == 10_000_000
    spent = crm(
        "loyalty", "redeem", "C-1", "--key", "R-1", "--points", "10000000", "--programme", "shop", "--json"
    )
    assert spent.returncode == 0 and json.loads(spent.stdout)["available"] == 0
    statement = crm(
        "loyalty", "statement", "C-1", "--since", "1970-01-01", "--until", "2199-12-31", "--programme", "shop"
    )
    assert statement.returncode == 0, statement.stderr
