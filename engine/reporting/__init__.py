"""What every report shares: periods, charts, HTML helpers, files written whole, safe cells.

* :mod:`~engine.reporting.periods`: a month, quarter or year in the business time zone;
* :mod:`~engine.reporting.charts`: the canvas every PNG chart is drawn on;
* :mod:`~engine.reporting.html`: money and counts as pages show them, charts embedded;
* :mod:`~engine.reporting.files`: output paths checked before the work, files written whole or not
  at all (errors as :class:`~engine.errors.OutputError`), workbooks;
* :mod:`~engine.reporting.spreadsheet`: the cell guard of every CSV and XLSX file (no formulas from data).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.lazy import lazy_names
from engine.reporting.files import (
    check_output_file,
    check_output_folder,
    output_error,
    remove_quietly,
    save_workbook,
    write_atomically,
)
from engine.reporting.html import Chart, format_count, format_money, png_data_uri
from engine.reporting.periods import Period
from engine.reporting.spreadsheet import csv_writer, formula_safe, guard_workbook, safe_cell

if TYPE_CHECKING:
    from engine.reporting.charts import ACTUAL, APPROVED, PLAN, empty_chart, new_figure, png_bytes

__getattr__ = lazy_names(
    __name__,
    dict.fromkeys(
        ["ACTUAL", "APPROVED", "PLAN", "empty_chart", "new_figure", "png_bytes"], "engine.reporting.charts"
    ),
)


__all__ = [
    "ACTUAL",
    "APPROVED",
    "PLAN",
    "Chart",
    "Period",
    "check_output_file",
    "check_output_folder",
    "csv_writer",
    "empty_chart",
    "format_count",
    "format_money",
    "formula_safe",
    "guard_workbook",
    "new_figure",
    "output_error",
    "png_bytes",
    "png_data_uri",
    "remove_quietly",
    "safe_cell",
    "save_workbook",
    "write_atomically",
]
