"""Budget files held to the engine's limits: totals of money and business dates, with file, line and field."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from engine.budget.budget_files import load_budgets
from engine.config.checked import load_config
from engine.errors import ConfigErrors

ROOT = Path(__file__).resolve().parents[2]
BUDGET = (ROOT / "budgets" / "2027-Q1.toml").read_text(encoding="utf-8")


def _load(tmp_path: Path, text: str) -> Path:
    shutil.copy(ROOT / "config.toml", tmp_path / "config.toml")
    shutil.copytree(ROOT / "campaigns", tmp_path / "campaigns", dirs_exist_ok=True)
    (tmp_path / "budgets").mkdir(exist_ok=True)
    path = tmp_path / "budgets" / "2027-Q1.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "reason"),
    [
        ('period = "2027-Q1"', 'period = "9999"', 4, "period", "first day 9999-01-01 is outside"),
        (
            'period = "2027-Q1"',
            "period = { start = 0001-01-01, end = 2027-03-31 }",
            4,
            "period",
            "first day 0001-01-01 is outside 1970-01-01 .. 2199-12-31",
        ),
        ("approved = 1500000", "approved = 1e13", 5, "approved", "999999999999.99"),
        ("approved = 1500000", "approved = true", 5, "approved", "Decimal input should be"),
        ("approved_at = 2026-12-15", "approved_at = 9999-12-31", 7, "approved_at", "is outside"),
        ("loyalty = 1200000", "loyalty = 1e30", 10, "allocations.strategy.loyalty", "999999999999.99"),
    ],
)
def test_values_beyond_the_limits_name_file_line_and_field(
    tmp_path: Path, old: str, new: str, line: int, field: str, reason: str
) -> None:
    assert old in BUDGET
    path = _load(tmp_path, BUDGET.replace(old, new))
    with pytest.raises(ConfigErrors) as caught:
        load_budgets(load_config(tmp_path / "config.toml"))
    errors = str(caught.value).splitlines()
    assert any(e.startswith(f"{path}:{line} {field}: ") and reason in e for e in errors), errors


def test_totals_and_dates_at_the_limits_are_accepted(tmp_path: Path) -> None:
    text = (
        BUDGET.replace('period = "2027-Q1"', 'period = "2199-Q4"')
        .replace("approved = 1500000", "approved = 999999999999.99")
        .replace("approved_at = 2026-12-15", "approved_at = 1970-01-01")
    )
    _load(tmp_path, text)
    budget = load_budgets(load_config(tmp_path / "config.toml")).files[0]
    assert (budget.period.end.isoformat(), budget.approved) == ("2199-12-31", Decimal("999999999999.99"))
