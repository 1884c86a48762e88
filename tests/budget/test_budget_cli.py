"""``crm budget`` as a user runs it: every format, what-if, diff against git, bad input."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import subprocess
from decimal import Decimal
from pathlib import Path

import openpyxl

from engine.cli.budget import resolve_period
from engine.config.checked import load_config
from engine.reporting.periods import Period
from tests.budget.test_contact_matrix import BUDGET, prepared, weekly
from tests.cli.test_cli import crm


def _env(config_path: Path, db_url: str) -> dict[str, str]:
    return {"CRM_CONFIG": str(config_path), "CRM_DATABASE_URL": db_url}


def test_every_format(db, db_url: str, write_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = prepared(db, write_config, tmp_path, {"weekly": weekly()})
    (tmp_path / "budgets").mkdir()
    (tmp_path / "budgets" / "2027-Q1.toml").write_text(BUDGET, encoding="utf-8")
    env = _env(config.path, db_url)

    table = crm("budget", "--period", "2027-Q1", env=env)
    assert table.returncode == 0, table.stderr
    assert "contact matrix" in table.stdout and "90,353.20" in table.stdout
    assert "M. Ivanova, CFO" in table.stdout and "4,646.80" in table.stdout  # loyalty headroom

    shown = crm("budget", "--period", "2027-Q1", "--format", "json", env=env)
    data = json.loads(shown.stdout)
    assert data["totals"]["plan"] == "90353.20" and data["totals"]["approved"] == "100000.00"
    assert data["approved"]["by_campaign"] == {"weekly": "92000"}
    assert data["fingerprint"]["matches"] is None

    as_csv = crm("budget", "--period", "2027-Q1", "--format", "csv", env=env)
    rows = list(csv.reader(io.StringIO(as_csv.stdout), delimiter=";"))
    assert rows[0][:3] == ["period", "campaign", "strategy"]
    assert [row[16] for row in rows[1:]] == ["15473.20", "74880.00"]

    written = crm("budget", "-p", "2027-Q1", "-f", "xlsx", "-o", str(tmp_path / "q1.xlsx"), env=env)
    assert written.returncode == 0, written.stderr
    book = openpyxl.load_workbook(tmp_path / "q1.xlsx")
    assert {"Summary", "Lines", "Matrix", "Actual"} <= set(book.sheetnames)
    html = crm("budget", "-p", "2027-Q1", "-f", "html", "-o", str(tmp_path / "q1.html"), env=env)
    assert html.returncode == 0, html.stderr
    assert "90,353.20" in (tmp_path / "q1.html").read_text(encoding="utf-8")

    # the fingerprint finance approved on, written into the budget file, is recognised
    approved = BUDGET.replace("approved_at", f'fingerprint = "{data["fingerprint"]["report"]}"\napproved_at')
    (tmp_path / "budgets" / "2027-Q1.toml").write_text(approved, encoding="utf-8")
    again = json.loads(crm("budget", "-p", "2027-Q1", "-f", "json", env=env).stdout)
    assert again["fingerprint"] == {
        **data["fingerprint"],
        "approved_on": data["fingerprint"]["report"],
        "matches": True,
    }
    config.path.write_text(config.path.read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")
    changed = crm("budget", "-p", "2027-Q1", env=env)
    assert "the config changed since" in changed.stdout


def test_what_if_and_diff_against_git(db, db_url: str, write_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = prepared(db, write_config, tmp_path, {"weekly": weekly()})
    env = _env(config.path, db_url)
    changed = crm(
        "budget", "-p", "2027-Q1", "-f", "json",
        "--set", "channels.call.unit_cost=55", "--set", "campaigns.weekly.steps[1].contacts_per_client=1",
        env=env,
    )  # fmt: skip
    assert changed.returncode == 0, changed.stderr
    data = json.loads(changed.stdout)
    call = data["lines"][1]
    assert (call["unit_cost"], call["contacts"], call["cost"]) == ("55.00", "624", "34320.00")
    assert data["overrides"] == [
        "channels.call.unit_cost=55",
        "campaigns.weekly.steps[1].contacts_per_client=1",
    ]
    bad = crm("budget", "-p", "2027-Q1", "--set", "channels.call.unit_cost=cheap", env=env)
    assert bad.returncode == 1 and "--set channels.call.unit_cost:" in bad.stderr

    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*git, "add", "config.toml", "campaigns"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "budget"], cwd=tmp_path, check=True)
    text = config.path.read_text(encoding="utf-8").replace("unit_cost = 60", "unit_cost = 70")
    config.path.write_text(text, encoding="utf-8")
    diff = crm("budget", "-p", "2027-Q1", "--diff", "HEAD", "-f", "json", env=env)
    assert diff.returncode == 0, diff.stderr
    found = json.loads(diff.stdout)
    assert Decimal(found["change"]) == 13 * 48 * 2 * 10
    assert [(line["campaign"], line["step"]) for line in found["lines"]] == [("weekly", 1)]
    shown = crm("budget", "-p", "2027-Q1", "--diff", "HEAD", env=env)
    assert "74,880.00 -> 87,360.00" in shown.stdout


def test_bad_input_is_named(db, db_url: str, write_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = prepared(db, write_config, tmp_path, {"weekly": weekly()})
    env = _env(config.path, db_url)
    wrong = crm("budget", "--period", "2027-Q5", env=env)
    assert wrong.returncode == 1 and "'2027-Q5' is not a period" in wrong.stderr
    (tmp_path / "budgets").mkdir()
    (tmp_path / "budgets" / "q1.toml").write_text('period = "2027-Q1"\napproved = "lots"\n', encoding="utf-8")
    broken = crm("budget", "--period", "2027-Q1", env=env)
    assert broken.returncode == 1 and "q1.toml:2 approved:" in broken.stderr
    validated = crm("validate", env=env)
    assert validated.returncode == 1 and "q1.toml:2 approved:" in validated.stderr
    prices = config.path.read_text(encoding="utf-8") + (
        "\n[[channels.call.prices]]\nfrom = 2027-01-01\nunit_cost = 61\n"
        "\n[[channels.call.prices]]\nfrom = 2027-01-01\nunit_cost = 62\n"
    )
    config.path.write_text(prices, encoding="utf-8")
    twice = crm("validate", env=env)
    assert twice.returncode == 1 and "prices[0] and prices[1] both apply from 2027-01-01" in twice.stderr


def test_period_words(write_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = load_config(write_config())
    today = dt.date(2027, 2, 10)
    assert resolve_period("current", config, today) == Period.parse("2027-Q1")
    assert resolve_period("next", config, today) == Period.parse("2027-Q2")
    assert resolve_period("previous", config, today) == Period.parse("2026-Q4")
    assert resolve_period(None, config, today) == Period.parse("2027-Q1")
    assert resolve_period("2027-01-15..2027-02-14", config, today).days == 31
    assert Period.parse("2027-02").months() == 1 and Period.parse("2027").previous().label == "2026"
