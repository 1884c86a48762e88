"""The demo's budget: an approved budget for the demo's quarter, and the reports finance reads.

The example budget (``engine/defaults/budgets/quarter.toml``) is copied into
the workspace for the quarter that contains the demo's day, before the
campaigns fire, so the runner enforces it. After the campaign day the
quarter's contact matrix and budget (plan, approved, actual) are computed and
written as an XLSX workbook and an HTML report.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from engine.budget import BudgetReport, budget_report
from engine.config import Config
from engine.reporting import Period

EXAMPLE = Path(__file__).parents[1] / "defaults" / "budgets" / "quarter.toml"


@dataclass(frozen=True)
class DemoBudget:
    """The demo quarter's budget report and where its files are."""

    report: BudgetReport
    workbook: Path
    html: Path


def write_demo_budget(folder: Path, day: dt.date) -> Path:
    """The example budget as ``folder/budgets/<quarter>.toml`` for the quarter of ``day``."""
    period = Period.containing(day, "quarter")
    target = folder / "budgets"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    text = EXAMPLE.read_text(encoding="utf-8")
    text = re.sub(r'^period = ".*"$', f'period = "{period.label}"', text, count=1, flags=re.M)
    text = re.sub(r"quarter of \d{4}", f"quarter {period.label}", text, count=1)
    text = re.sub(r"--period \S+", f"--period {period.label}", text, count=1)
    approved = re.search(r"^approved_at = (\S+)$", text, flags=re.M)
    if approved:
        text = text.replace(approved.group(0), f"approved_at = {period.start - dt.timedelta(days=17)}", 1)
    path = target / f"{period.label}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def demo_budget_reports(engine: Engine, config: Config, day: dt.date) -> DemoBudget:
    """The budget of the demo's quarter, written as budget.xlsx and budget.html beside config.toml."""
    from engine.budget import write_html, write_workbook

    report = budget_report(engine, config, period=Period.containing(day, "quarter"))
    folder = config.path.parent
    workbook = write_workbook(report, folder / "budget.xlsx")
    html = write_html(report, folder / "budget.html")
    return DemoBudget(report, workbook, html)
