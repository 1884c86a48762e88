"""What every report shares: periods, charts, HTML helpers, files written whole, safe cells.

* :mod:`~engine.reporting.periods`: a month, quarter or year in the business time zone;
* :mod:`~engine.reporting.charts`: the canvas every PNG chart is drawn on;
* :mod:`~engine.reporting.html`: money and counts as pages show them, charts embedded;
* :mod:`~engine.reporting.files`: files written whole or not at all, workbooks;
* :mod:`~engine.reporting.spreadsheet`: cells that cannot run as formulas.
"""

from __future__ import annotations

from engine.reporting.charts import ACTUAL, APPROVED, PLAN, empty_chart, new_figure, png_bytes
from engine.reporting.files import safe_rows, save_workbook, write_atomically
from engine.reporting.html import Chart, format_count, format_money, png_data_uri
from engine.reporting.periods import Period
from engine.reporting.spreadsheet import formula_safe

__all__ = [
    "ACTUAL",
    "APPROVED",
    "PLAN",
    "Chart",
    "Period",
    "empty_chart",
    "format_count",
    "format_money",
    "formula_safe",
    "new_figure",
    "png_bytes",
    "png_data_uri",
    "safe_rows",
    "save_workbook",
    "write_atomically",
]
