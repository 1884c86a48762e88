"""The contact matrix and the budget of all CRM actions: plan, approved, actual, variance.

See docs/budget.md for the exact semantics and the JSON schema.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.budget.actual import RAN_STATES, first_runs
from engine.budget.budget_diff import BudgetDiff, budget_diff
from engine.budget.budget_files import budgets_folder, load_budgets
from engine.budget.contact_matrix import budget_report
from engine.budget.enforcement import SpendingLimits, binding
from engine.budget.report import BudgetReport, Total, csv_rows
from engine.budget.what_if import apply_overrides
from engine.lazy import lazy_names

if TYPE_CHECKING:  # matplotlib and openpyxl: imported when a page or a workbook is written
    from engine.budget.html_report import write_html
    from engine.budget.workbook import write_workbook

__getattr__ = lazy_names(
    __name__, {"write_html": "engine.budget.html_report", "write_workbook": "engine.budget.workbook"}
)

__all__ = [
    "RAN_STATES",
    "BudgetDiff",
    "BudgetReport",
    "SpendingLimits",
    "Total",
    "apply_overrides",
    "binding",
    "budget_diff",
    "budget_report",
    "budgets_folder",
    "csv_rows",
    "first_runs",
    "load_budgets",
    "write_html",
    "write_workbook",
]
