"""The rejects file: every bad row with its line number in the source file and the reasons.

CSV in UTF-8 with ``,``; columns ``line``, ``reason``, then the original header
and cells (a row with too many or too few cells is kept as it was). A cell a
spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``...) is written
with a leading ``'`` so opening the file in Excel runs nothing. The file is
written beside its final path and moved into place as the import commits, so
a failed import leaves no half-written rejects file, and no ``.part`` file.

Its path is checked before anything is read or written (:meth:`RejectsWriter.check`):
a folder, a missing folder, a file in the way, a folder ``--rejects`` names
that cannot be written stop the import before it starts. A write that fails
later (a full disk) raises :class:`~engine.errors.OutputError` inside the
import's transaction, which rolls back.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import IO, Any

from engine.customers.importing.reader import SourceRow, cell_text
from engine.errors import OutputError
from engine.reporting import check_output_file, csv_writer, formula_safe, output_error, remove_quietly

OPTION = "--rejects"


def default_rejects_path(path: Path) -> Path:
    """``<file>.rejects.csv`` beside the input."""
    return path.with_name(path.name + ".rejects.csv")


class RejectsWriter:
    """Collects rejected rows into a CSV file, created on the first reject.

    ``default``: the path is the default one beside the input (no ``--rejects``).
    """

    def __init__(self, path: Path, header: list[str], *, default: bool) -> None:
        self.path = path
        self.header = header
        self.default = default
        self.count = 0
        self._temporary = path.with_name(f".{path.name}.{os.getpid()}.part")
        self._handle: IO[str] | None = None
        self._writer: Any = None
        self._placed = False

    @property
    def option(self) -> str | None:
        """``--rejects`` when the path was given, for messages; None for the default path."""
        return None if self.default else OPTION

    def check(self) -> None:
        """Raise :class:`OutputError` now if the rejects file could not be written.

        A path given with ``--rejects`` must be a file in a folder that can be
        written or made (a missing folder is made on the first reject). The
        default path (beside the input) must not be a folder; whether its
        folder can be written is found on the first reject (an input may well
        lie in a read-only folder and have none).
        """
        if not self.default:
            check_output_file(self.path, option=OPTION, create_folders=True)
        elif self.path.is_dir():
            raise OutputError(
                str(self.path), "is a folder: give the rejects file another path with --rejects FILE"
            )

    def add(self, row: SourceRow, reasons: list[str]) -> None:
        """Write one bad row with its reasons (:class:`OutputError` if the file cannot be written)."""
        try:
            if self._writer is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._handle = self._temporary.open("w", encoding="utf-8", newline="")
                self._writer = csv_writer(self._handle)
                self._writer.writerow(["line", "reason", *self.header])
            cells = (formula_safe(cell_text(cell)) for cell in row.cells)
            self._writer.writerow([row.line, formula_safe("; ".join(reasons)), *cells])
        except OSError as exc:
            self.discard()
            raise self._error(exc) from exc
        self.count += 1

    def commit(self) -> Path | None:
        """Move the file into place; return its path, or None when no row was rejected.

        Called inside the import's transaction, before it commits: a file that
        cannot be put in place rolls the import back. Without rejects, a
        default rejects file of an earlier import of the same file is removed.
        """
        try:
            self._close()
            if self.count == 0:
                if self.default and self.path.is_file():
                    self.path.unlink()  # a stale rejects file of an earlier import of this file
                return None
            self._temporary.replace(self.path)
        except OSError as exc:
            self.discard()
            raise self._error(exc) from exc
        self._placed = True
        return self.path

    def discard(self) -> None:
        """Drop the partial file (the import failed); a file :meth:`commit` put in place goes too."""
        with contextlib.suppress(OSError):  # the file is dropped anyway
            self._close()
        remove_quietly(self._temporary)
        if self._placed:
            remove_quietly(self.path)
            self._placed = False

    def _close(self) -> None:
        if self._handle is not None:
            handle, self._handle, self._writer = self._handle, None, None
            handle.close()

    def _error(self, error: OSError) -> OutputError:
        made = output_error(self.path, error, option=self.option)
        if self.default:
            return OutputError(made.path, f"{made.reason} (or pass --rejects FILE)")
        return made
