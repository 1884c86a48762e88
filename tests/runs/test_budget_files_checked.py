"""A budget file that `crm validate` refuses is refused by `crm plan` and `crm run` before anything is done"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import Engine

from engine.budget import load_budgets
from engine.config import load_config
from engine.errors import ConfigErrors
from tests.fuzz.hostile import row_counts, run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def workspace(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copy(ROOT / "config.toml", tmp_path / "config.toml")
    shutil.copytree(ROOT / "campaigns", tmp_path / "campaigns")
    shutil.copytree(ROOT / "budgets", tmp_path / "budgets")
    monkeypatch.setenv("CRM_DATABASE_URL", db_url)
    monkeypatch.delenv("CRM_CONFIG", raising=False)
    return tmp_path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("churn_call = 400000", "unknown campaign 'churn_cal'"),
        ("loyalty = 1200000", "more than the strategy's 0"),
    ],
)
def test_plan_and_run_refuse_what_validate_refuses(
    db: Engine, workspace: Path, change: str, message: str
) -> None:
    budget = workspace / "budgets" / "2027-Q1.toml"
    changed = change.replace("churn_call", "churn_cal") if "churn" in change else "loyalty = 0"
    budget.write_text(budget.read_text(encoding="utf-8").replace(change, changed), encoding="utf-8")
    config = str(workspace / "config.toml")
    before = row_counts(db)
    for args in (("validate",), ("plan", "--days", "7"), ("run", "winback", "--now")):
        outcome = run("--config", config, *args)
        assert outcome.code == 1, (args, outcome.err)
        assert "2027-Q1.toml" in outcome.err and message in outcome.err, (args, outcome.err)
    assert row_counts(db) == before


def test_budgets_are_checked_against_the_campaigns_folder_by_default(workspace: Path) -> None:
    budget = workspace / "budgets" / "2027-Q1.toml"
    budget.write_text(
        budget.read_text(encoding="utf-8").replace("churn_call =", "nobody ="), encoding="utf-8"
    )
    with pytest.raises(ConfigErrors, match="unknown campaign 'nobody'"):
        load_budgets(load_config(workspace / "config.toml"))
