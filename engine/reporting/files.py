"""Files the reports write: whole or not at all, CSV cells that cannot run as formulas, workbooks."""

from __future__ import annotations

import io
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from openpyxl import Workbook

from engine.reporting.spreadsheet import formula_safe


def write_atomically(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a new temporary file in the same folder, then rename.

    Readers see the old file or the whole new one, never half of it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    try:
        with temporary.open("xb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def save_workbook(workbook: Workbook, path: Path) -> Path:
    """Save ``workbook`` to ``path`` atomically."""
    buffer = io.BytesIO()
    workbook.save(buffer)
    return write_atomically(path, buffer.getvalue())


def safe_rows(rows: Iterable[list[str]]) -> Iterable[list[str]]:
    """``rows`` with every cell made formula-safe, for files people open in spreadsheets."""
    for row in rows:
        yield [formula_safe(cell) for cell in row]
