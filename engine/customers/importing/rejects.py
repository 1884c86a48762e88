"""The rejects file: every bad row with its line number in the source file and the reasons.

CSV in UTF-8 with ``,``; columns ``line``, ``reason``, then the original header
and cells (a row with too many or too few cells is kept as it was). A cell a
spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``...) is written
with a leading ``'`` so opening the file in Excel runs nothing. The file is
written beside its final path and moved into place only when the import
commits, so a failed import leaves no half-written rejects file.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import IO

from engine.customers.importing.reader import SourceRow, cell_text
from engine.reporting import formula_safe


def default_rejects_path(path: Path) -> Path:
    """``<file>.rejects.csv`` beside the input."""
    return path.with_name(path.name + ".rejects.csv")


class RejectsWriter:
    """Collects rejected rows into a CSV file, created on the first reject."""

    def __init__(self, path: Path, header: list[str], *, default: bool) -> None:
        self.path = path
        self.header = header
        self.default = default
        self.count = 0
        self._temporary = path.with_name(f".{path.name}.{os.getpid()}.part")
        self._handle: IO[str] | None = None
        self._writer: csv.Writer | None = None  # type: ignore[name-defined]

    def add(self, row: SourceRow, reasons: list[str]) -> None:
        """Write one bad row with its reasons."""
        if self._writer is None:
            self._temporary.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self._temporary.open("w", encoding="utf-8", newline="")
            self._writer = csv.writer(self._handle)
            self._writer.writerow(["line", "reason", *self.header])
        cells = (formula_safe(cell_text(cell)) for cell in row.cells)
        self._writer.writerow([row.line, formula_safe("; ".join(reasons)), *cells])
        self.count += 1

    def commit(self) -> Path | None:
        """Move the file into place; return its path, or None when no row was rejected."""
        self._close()
        if self.count == 0:
            if self.default and self.path.exists():
                self.path.unlink()  # a stale rejects file of an earlier import of this file
            return None
        self._temporary.replace(self.path)
        return self.path

    def discard(self) -> None:
        """Drop the partial file (the import failed)."""
        self._close()
        self._temporary.unlink(missing_ok=True)

    def _close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
            self._writer = None
