"""Channels that hand contacts over as files people work through: one file per day and group.

A list file is a CSV in UTF-8 with a byte-order mark and ``;`` (what Excel
opens in Russian locales) plus an XLSX copy written when the channel closes.
No cell can run as a formula. A key already in the day's file is not listed
again, so a rerun after a crash adds nothing twice. Call lists, postal lists
and meeting task lists are list files with their own columns and grouping.

A folder that cannot be written (missing, read only, a file in the way, a
full disk) is no failure of one contact: :meth:`ListFileChannel.send` raises
:class:`~engine.errors.OutputError` for the batch, naming
``channels.<name>.folder``. A file it could not append to whole is cut back
to what it held, so it never ends in half a row; the rows of files written
before it are recognised when the batch is sent again. A day file that can
no longer be read back (saved over by a spreadsheet in another encoding or
without its ``key`` column) stops the channel the same way, rather than
listing its contacts twice.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from engine.channels.base import DeliveryResult, DeliveryStatus, OutgoingMessage, SendJournal
from engine.errors import OutputError
from engine.reporting import csv_writer, formula_safe, output_error, remove_quietly, safe_cell, save_workbook


def _slug(text: str) -> str:
    return re.sub(r"[^\w.-]+", "_", text, flags=re.UNICODE).strip("_") or "unassigned"


class ListFileChannel:
    """Appends each contact to ``folder/<prefix>-<day>[-<group>].csv``; XLSX copies on close.

    ``columns`` name the file's columns (``key`` among them; ``customer_id``
    is the internal id when listed); values come from the message's
    ``details`` and from :meth:`row_values`; :meth:`ordered` sorts the rows
    a batch adds. ``group_by`` names the detail that splits files
    (e.g. the curator), or None for one file a day.
    """

    columns: tuple[str, ...] = ("key", "customer_id")
    prefix = "list"
    group_by: str | None = None
    missing_recipient = "no recipient"

    def __init__(self, folder: Path, day: dt.date, *, name: str) -> None:
        self.name = name
        self.folder = folder
        self.day = day
        self.option = f"channels.{name}.folder"
        self._keys: dict[Path, set[str]] = {}
        self._headers: dict[Path, list[str]] = {}  # of files that were there: an older version's columns
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._unwritable(folder / "x", exc) from exc

    def _unwritable(self, path: Path, error: OSError) -> OutputError:
        """The folder cannot be written (met at ``path`` in it): a fault of the folder, not of a contact."""
        return OutputError(str(self.folder), output_error(path, error).reason, option=self.option)

    def path_for(self, group: str | None) -> Path:
        """The CSV of ``group`` (or of the day, when files are not grouped)."""
        suffix = f"-{_slug(group or 'unassigned')}" if self.group_by else ""
        return self.folder / f"{self.prefix}-{self.day.isoformat()}{suffix}.csv"

    def row_values(self, message: OutgoingMessage) -> Mapping[str, Any]:
        """Values computed from the message itself (beyond its details)."""
        return {}

    def ordered(self, rows: list[list[str]]) -> list[list[str]]:
        """``rows`` (cells in the order of ``columns``) in the order people work through them."""
        return rows

    def _listed(self, path: Path) -> set[str]:
        if path not in self._keys:
            keys: set[str] = set()
            try:
                if path.exists():
                    with path.open(encoding="utf-8-sig", newline="") as handle:
                        reader = csv.DictReader(handle, delimiter=";")
                        keys = {row["key"] for row in reader}
                        self._headers[path] = list(reader.fieldnames or ())
            except OSError as exc:
                raise self._unwritable(path, exc) from exc
            except (UnicodeDecodeError, csv.Error, KeyError) as exc:
                reason = "no 'key' column" if isinstance(exc, KeyError) else str(exc)
                raise OutputError(
                    str(path),
                    f"cannot read back the contacts it lists ({reason}): another program saved over it; "
                    "put back the file crm wrote (UTF-8, ';', a key column), then run the worker again",
                    option=self.option,
                ) from exc
            self._keys[path] = keys
        return self._keys[path]

    async def send(
        self, messages: Sequence[OutgoingMessage], *, journal: SendJournal | None = None
    ) -> list[DeliveryResult]:
        """List each contact once per key in its file for the day; each file is opened once per batch."""
        results = []
        rows: dict[Path, list[list[str]]] = {}
        for message in messages:
            if not message.recipient:
                results.append(
                    DeliveryResult(
                        message.key, DeliveryStatus.PERMANENT_FAILURE, detail=self.missing_recipient
                    )
                )
                continue
            path = self.path_for(message.details.get(self.group_by) if self.group_by else None)
            listed = self._listed(path)
            if message.key not in listed:
                row = {
                    "customer_id": message.customer_id,
                    **{column: message.details.get(column, "") for column in self.columns},
                    **self.row_values(message),
                    "key": message.key,
                }
                rows.setdefault(path, []).append([_cell(row.get(column)) for column in self.columns])
                listed.add(message.key)
            results.append(DeliveryResult(message.key, DeliveryStatus.SENT, reference=path.name))
        pending = [(path, self.ordered(new_rows)) for path, new_rows in rows.items()]
        for done, (path, new_rows) in enumerate(pending):
            try:
                self._append(path, new_rows)
            except OSError as exc:
                for unwritten, _ in pending[done:]:
                    self._keys.pop(unwritten, None)  # read again from the file next time
                raise self._unwritable(path, exc) from exc
        return results

    def _append(self, path: Path, rows: list[list[str]]) -> None:
        """Append ``rows`` to ``path`` whole: a write that fails is cut back to what the file held."""
        new_file = not path.exists()
        header = self._headers.get(path, list(self.columns))
        if not new_file and header != list(self.columns):  # written by an older version: its columns
            at = {column: index for index, column in enumerate(self.columns)}
            rows = [[row[at[column]] if column in at else "" for column in header] for row in rows]
        buffer = io.StringIO()
        writer = csv_writer(buffer, delimiter=";")
        if new_file:
            writer.writerow(self.columns)
            self._headers.pop(path, None)
        writer.writerows(rows)
        data = (("\ufeff" if new_file else "") + buffer.getvalue()).encode("utf-8")
        size = 0 if new_file else path.stat().st_size
        try:
            with path.open("ab") as handle:
                handle.write(data)
                handle.flush()
        except OSError:
            if new_file:
                remove_quietly(path)
            else:
                with contextlib.suppress(OSError):  # the original error says what to fix
                    os.truncate(path, size)
            raise

    async def close(self) -> None:
        """Write the XLSX copy of every day file this channel touched (:class:`OutputError` if it cannot)."""
        for path in self._keys:
            if path.exists():
                write_xlsx(path, path.with_suffix(".xlsx"), option=self.option)


def _cell(value: Any) -> str:
    return formula_safe("" if value is None else str(value))


def read_list(source: Path, *, option: str | None = None) -> list[list[str]]:
    """The rows of a list CSV the channel wrote, header first (:class:`OutputError` if it cannot be read)."""
    try:
        with source.open(encoding="utf-8-sig", newline="") as handle:
            return list(csv.reader(handle, delimiter=";"))
    except OSError as exc:
        raise output_error(source, exc, option=option) from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        reason = f"cannot read it for its XLSX copy ({exc}): it was saved over by another program"
        raise OutputError(str(source), reason, option=option) from exc


def write_xlsx(source: Path, target: Path, *, option: str | None = None) -> None:
    """The XLSX copy of a list CSV (cells as text, already formula-safe), with a frozen header.

    Written whole or not at all; a folder that cannot be written raises :class:`OutputError`.
    """
    import openpyxl

    rows = read_list(source, option=option)
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("list")
    sheet.freeze_panes = "A2"
    for row in rows:
        sheet.append([safe_cell(cell) for cell in row])
    save_workbook(workbook, target, option=option)
