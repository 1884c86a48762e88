"""The segment migration matrix from membership stays, on both databases.

Uses the data of ``test_indicators``: at the close of 2026-09-01 (Moscow) gold holds A, B, F and silver
D, F; at the close of 2026-12-01 gold holds B, F and silver A, E, F.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine

from engine.cli import main as crm_main
from engine.config.checked import Config
from engine.errors import ConfigValueError, NotFoundError
from engine.evaluation.migration_matrix import NONE, segment_migration
from engine.evaluation.programme_output import build_migration_workbook, migration_csv_rows, migration_table
from tests.evaluation.test_indicators import config, programme_data  # noqa: F401  (fixture)
from tests.factories import add_customer, utc

SEPTEMBER = utc(2026, 9, 1, 21)  # the close of 2026-09-01 in Moscow
DECEMBER = utc(2026, 12, 1, 21)


def test_first_listed_segment_wins(db: Engine, config: Config) -> None:  # noqa: F811
    programme_data(db)
    matrix = segment_migration(db, config, SEPTEMBER, DECEMBER)
    assert matrix.labels == ["gold", "silver", NONE]
    assert matrix.counts == [
        [2, 1, 0],  # gold -> gold: B and F (also silver, but gold comes first); gold -> silver: A
        [0, 0, 1],  # silver -> (none): D left at November's end
        [0, 1, 1],  # (none) -> silver: E; C stays outside until 12-10
    ]
    assert matrix.customers == 6
    assert (matrix.row_total("gold"), matrix.column_total("silver")) == (3, 2)
    assert matrix.share("gold", "gold") == Decimal("0.6667")
    assert matrix.share("gold", "silver") == Decimal("0.3333")
    assert matrix.share("silver", NONE) == Decimal(1)

    reordered = segment_migration(db, config, SEPTEMBER, DECEMBER, ["silver", "gold"])
    assert reordered.labels == ["silver", "gold", NONE]
    assert reordered.counts == [
        [1, 0, 1],  # F stays silver; D leaves
        [1, 1, 0],  # A moves from gold to silver; B stays gold
        [1, 0, 1],  # E enters silver; C nowhere
    ]
    only_gold = segment_migration(db, config, SEPTEMBER, DECEMBER, ["gold"])
    assert only_gold.counts == [[2, 1], [0, 3]]


def test_customers_recorded_later_do_not_count(db: Engine, config: Config) -> None:  # noqa: F811
    programme_data(db)
    with db.begin() as connection:
        add_customer(connection, created_at=utc(2026, 12, 5))
    assert segment_migration(db, config, SEPTEMBER, DECEMBER).customers == 6
    assert segment_migration(db, config, SEPTEMBER, utc(2026, 12, 6)).count(NONE, NONE) == 2


def test_bad_requests(db: Engine, config: Config) -> None:  # noqa: F811
    with pytest.raises(ConfigValueError, match="is before --from"):
        segment_migration(db, config, DECEMBER, SEPTEMBER)
    with pytest.raises(NotFoundError, match="bronze"):
        segment_migration(db, config, SEPTEMBER, DECEMBER, ["gold", "bronze"])
    with pytest.raises(ConfigValueError, match="named twice"):
        segment_migration(db, config, SEPTEMBER, DECEMBER, ["gold", "gold"])
    empty = segment_migration(db, config, SEPTEMBER, DECEMBER)
    assert empty.counts == [[0] * 3] * 3 and empty.share("gold", "gold") is None


def test_outputs_and_cli(
    db: Engine,
    config: Config,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    programme_data(db)
    matrix = segment_migration(db, config, SEPTEMBER, DECEMBER)
    rows = list(migration_csv_rows(matrix))
    assert rows[0] == ["from", "to", "customers", "share_of_row"]
    assert ["gold", "silver", "1", "0.3333"] in rows and [NONE, "gold", "0", "0.0000"] in rows
    assert len(rows) == 1 + 9
    workbook = build_migration_workbook(matrix)
    assert workbook["Customers"]["B2"].value == 2 and workbook["Customers"]["E2"].value == "=SUM(B2:D2)"
    assert workbook["Shares"]["C2"].value == '=IF(Customers!E2=0,"",Customers!C2/Customers!E2)'
    assert len(migration_table(matrix)) == 2  # legend and table

    base = ["report", "migration", "--from", "2026-09-01", "--to", "2026-12-01"]
    assert crm_main([*base, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["counts"] == matrix.counts and data["from"] == SEPTEMBER.isoformat()
    assert {"from": "gold", "to": "silver", "customers": 1, "share_of_row": "0.3333"} in data["cells"]
    assert crm_main([*base, "--segments", "silver,gold"]) == 0
    shown = capsys.readouterr().out
    assert "silver" in shown and "66.67%" not in shown and "50.00%" in shown
    book = tmp_path / "moves.xlsx"
    assert crm_main([*base, "-f", "xlsx", "-o", str(book)]) == 0
    assert load_workbook(book)["Customers"]["A4"].value == NONE
    assert crm_main(["report", "migration", "--from", "2026-12-01", "--to", "2026-09-01"]) == 1
    assert "is before --from" in capsys.readouterr().err
    assert crm_main([*base, "--segments", "gold,bronze"]) == 1
    assert "bronze" in capsys.readouterr().err
