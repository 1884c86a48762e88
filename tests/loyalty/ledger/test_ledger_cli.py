"""``crm loyalty earn|redeem|refund|adjust|transfer|merge|balance|statement|audit`` as a user runs them."""

from __future__ import annotations

import csv
import io
import json

from sqlalchemy import Engine, update

from engine.models.tables import ACCOUNT
from tests.cli.test_cli import crm
from tests.loyalty.ledger_setup import customers, shop_programme


def _run(*args: str) -> dict:  # type: ignore[type-arg]
    result = crm("loyalty", *args, "--programme", "shop", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_a_till_session_through_the_cli(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    shop_programme(write_config, pending_days="0")
    customers(db, "C-1", "C-2")
    earned = _run("earn", "C-1", "--order", "POS-1", "--amount", "4000", "--category", "cosmetics")
    assert earned["points"] == 400 and earned["available"] == 400
    assert _run("earn", "C-1", "--order", "POS-1", "--amount", "4000.00", "--category", "cosmetics")[
        "replayed"
    ]
    spent = _run(
        "redeem", "C-1", "--key", "POS-2", "--points", "100", "--order", "POS-2", "--order-amount", "800"
    )
    assert spent["available"] == 300 and spent["detail"]["value"] == "50.00"
    held = _run("redeem", "C-1", "--key", "H-1", "--reward", "coffee", "--hold")
    assert (held["available"], held["held"]) == (150, 150)
    assert _run("redeem", "--key", "H-1-void", "--void", "H-1")["available"] == 300
    back = _run("refund", "POS-2", "--key", "RET-2", "--amount", "400")
    assert back["points"] == 50 and back["available"] == 350
    assert (
        _run(
            "adjust",
            "C-1",
            "--points",
            "-10",
            "--key",
            "ADJ-1",
            "--reason",
            "till error",
            "--actor",
            "kassa-3",
        )["available"]
        == 340
    )
    assert _run("transfer", "C-1", "C-2", "80", "--key", "TR-1")["available"] == 260
    merged = _run("merge", "C-2", "C-1", "--key", "M-1", "--actor", "support")
    assert merged["available"] == 340
    balance = _run("balance", "C-1")
    assert (balance["available"], balance["value"]) == (340, "170.00")

    text = crm("loyalty", "statement", "C-1", "--programme", "shop", "--format", "csv")
    assert text.returncode == 0, text.stderr
    rows = list(csv.DictReader(io.StringIO(text.stdout)))
    assert rows[0]["kind"] == "earn" and "cosmetics" in rows[0]["explanation"]
    assert rows[-1]["balance"] == "340"
    table = crm("loyalty", "statement", "C-1", "--programme", "shop")
    assert "purchase:POS-1" in table.stdout

    audit = crm("loyalty", "audit")
    assert audit.returncode == 0 and "consistent" in audit.stdout


def test_refusals_exit_1_with_a_sentence(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    shop_programme(write_config, pending_days="0")
    customers(db, "C-1")
    _run("earn", "C-1", "--order", "POS-1", "--amount", "1000")
    for args, message in (
        (("redeem", "C-1", "--key", "R", "--points", "51"), "51 points asked, 50 available"),
        (("earn", "C-1", "--order", "POS-1", "--amount", "999"), "already used for a different earn"),
        (("redeem", "C-1", "--key", "R2", "--reward", "yacht"), "unknown reward"),
        (("earn", "nobody", "--order", "POS-9", "--amount", "10"), "unknown customer 'nobody'"),
        (("earn", "C-1", "--order", "POS-9"), "needs --order and --amount"),
        (("refund", "POS-404", "--key", "X"), "unknown order"),
    ):
        result = crm("loyalty", *args, "--programme", "shop")
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert message in " ".join(result.stderr.split()), (args, result.stderr)
    unnamed = crm("loyalty", "balance", "C-1")
    assert unnamed.returncode == 1 and "--programme" in unnamed.stderr  # two programmes: bonus and shop


def test_audit_exits_1_and_names_the_account_that_disagrees(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    shop_programme(write_config, pending_days="0")
    customers(db, "C-7")
    _run("earn", "C-7", "--order", "POS-1", "--amount", "1000")
    with db.begin() as connection:  # a cache edited behind the ledger's back
        connection.execute(update(ACCOUNT).values(available=ACCOUNT.c.available + 5))
    result = crm("loyalty", "audit", "--programme", "shop")
    assert result.returncode == 1
    assert "C-7" in result.stdout and "available balance is 55, its entries say 50" in result.stdout
