"""``crm import purchases`` gives the programmes' points for new purchases and takes them back for refunds."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine

from tests.cli.test_cli import crm
from tests.loyalty.ledger_setup import assert_consistent, buckets, customers, shop_programme


def test_an_import_accrues_points_and_refunds_take_them_back(
    db: Engine, write_config, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    shop_programme(write_config, pending_days="0", expiry='"3650d"')
    customers(db, "C-1", "C-2")
    orders = tmp_path / "orders.csv"
    orders.write_text(
        "external_id,customer_external_id,ordered_at,amount,category,refund_of\n"
        "O-1,C-1,2026-11-01 12:00,2000,cosmetics,\n"
        "O-2,C-2,2026-11-02 12:00,1000,shoes,\n"
        "R-1,C-1,2026-11-03 12:00,-500,cosmetics,O-1\n",
        encoding="utf-8",
    )
    result = crm("import", "purchases", str(orders), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["loyalty"]["shop"]["purchases"] == 2 and summary["loyalty"]["shop"]["points"] == 250
    assert buckets(db, "C-1")["available"] == 150  # 200 earned, a quarter of the order refunded: 50 back
    assert buckets(db, "C-2")["available"] == 50
    again = json.loads(crm("import", "purchases", str(orders), "--json").stdout)
    assert again["loyalty"]["shop"]["purchases"] == 0  # the same file again earns nothing
    assert buckets(db, "C-1")["available"] == 150
    # the till reports an order the import already brought: it has earned, nothing changes
    till = crm(
        "loyalty", "earn", "C-2", "--order", "O-2", "--amount", "1000", "--programme", "shop", "--json"
    )
    assert till.returncode == 0, till.stderr
    assert json.loads(till.stdout)["replayed"] and buckets(db, "C-2")["available"] == 50
    assert_consistent(db)
