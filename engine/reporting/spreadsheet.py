"""Files people open in spreadsheets: one cell guard for every CSV and XLSX the engine writes.

A value that a spreadsheet would run (``=HYPERLINK(...)`` as a customer's
name, an idempotency key, a campaign's name) is written as text, with a
leading ``'``. Every CSV goes through :func:`csv_writer`, whose rows are
guarded cell by cell, and every workbook through :func:`guard_workbook`
(``engine.reporting.files.save_workbook`` calls it): a formula cell is kept
only when it is one of the engine's own (arithmetic over cell references with
a few functions, no text but ``""``, no links to other files); any other
formula-looking value becomes text. tests/reporting/test_cell_guard.py checks
that no writer goes around them.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openpyxl import Workbook


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?[\d\s().,-]+$")  # a phone (+7 916 ...) or an amount (-100.50): harmless

#: the functions of the engine's own formulas (totals, ratios, rounding)
ENGINE_FUNCTIONS = frozenset({"IF(", "ROUND(", "SUM(", "SUMIFS(", "MAX(", "MIN(", "ABS(", "IFERROR("})
_REFERENCE = re.compile(
    r"^(?:[A-Za-z][A-Za-z0-9_]*!|'[^'\[\]|!]+'!)?\$?[A-Z]{1,3}\$?\d+(?::\$?[A-Z]{1,3}\$?\d+)?$"
)


def formula_safe(text: str) -> str:
    """``text`` with a leading ``'`` when a spreadsheet would run it as a formula.

    Cells starting with ``=``, ``+``, ``-``, ``@``, tab or CR are escaped,
    except plain numbers and phone numbers, which cannot call anything.
    """
    if text.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.match(text):
        return "'" + text
    return text


def safe_cell(value: Any) -> Any:
    """A cell's value as it may be written: text made :func:`formula_safe`, numbers and dates as they are."""
    return formula_safe(value) if isinstance(value, str) else value


class _GuardedWriter:
    """A ``csv.writer`` whose every cell goes through :func:`safe_cell`."""

    def __init__(self, handle: IO[str], **fmt: Any) -> None:
        self._writer = csv.writer(handle, **fmt)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([safe_cell(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(handle: IO[str], **fmt: Any) -> _GuardedWriter:
    """The CSV writer of every CSV file the engine writes: ``csv.writer`` with the cell guard."""
    return _GuardedWriter(handle, **fmt)


def is_engine_formula(formula: str) -> bool:
    """Whether ``formula`` is the engine's own: references, numbers, arithmetic, a few functions."""
    from openpyxl.formula import Tokenizer
    from openpyxl.formula.tokenizer import Token, TokenizerError

    try:
        tokens = Tokenizer(formula).items
    except (TokenizerError, IndexError, ValueError):
        return False
    for token in tokens:
        if token.type == Token.FUNC and token.subtype == Token.OPEN:
            if token.value.upper() not in ENGINE_FUNCTIONS:
                return False
        elif token.type == Token.OPERAND:
            if token.subtype == Token.TEXT and token.value != '""':
                return False
            if token.subtype == Token.RANGE and not _REFERENCE.match(token.value):
                return False
            if token.subtype not in (Token.TEXT, Token.RANGE, Token.NUMBER, Token.LOGICAL):
                return False
        elif token.type not in (
            Token.FUNC,
            Token.SEP,
            Token.OP_IN,
            Token.OP_PRE,
            Token.OP_POST,
            Token.PAREN,
            Token.WSPACE,
        ):
            return False
    return True


def guard_workbook(workbook: Workbook) -> Workbook:
    """Make every cell of ``workbook`` safe: formulas that are not the engine's own become text."""
    for sheet in workbook.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                value = cell.value
                if not isinstance(value, str):
                    continue
                if cell.data_type == "f" and is_engine_formula(value):
                    continue
                guarded = formula_safe(value)
                if guarded is not value or cell.data_type == "f":
                    cell.value = guarded
                    cell.data_type = "s"
    return workbook
