"""Channels that hand contacts over as files people work through: one file per day and group.

A list file is a CSV in UTF-8 with a byte-order mark and ``;`` (what Excel
opens in Russian locales) plus an XLSX copy written when the channel closes.
No cell can run as a formula. A key already in the day's file is not listed
again, so a rerun after a crash adds nothing twice. Call lists, postal lists
and meeting task lists are list files with their own columns and grouping.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import openpyxl

from engine.channels.base import DeliveryResult, DeliveryStatus, OutgoingMessage, SendJournal
from engine.reporting import formula_safe


def _slug(text: str) -> str:
    return re.sub(r"[^\w.-]+", "_", text, flags=re.UNICODE).strip("_") or "unassigned"


class ListFileChannel:
    """Appends each contact to ``folder/<prefix>-<day>[-<group>].csv``; XLSX copies on close.

    ``columns`` name the file's columns (``key`` and ``customer_id`` always
    first); values come from the message's ``details`` and from
    :meth:`row_values`. ``group_by`` names the detail that splits files
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
        self._keys: dict[Path, set[str]] = {}
        folder.mkdir(parents=True, exist_ok=True)

    def path_for(self, group: str | None) -> Path:
        """The CSV of ``group`` (or of the day, when files are not grouped)."""
        suffix = f"-{_slug(group or 'unassigned')}" if self.group_by else ""
        return self.folder / f"{self.prefix}-{self.day.isoformat()}{suffix}.csv"

    def row_values(self, message: OutgoingMessage) -> Mapping[str, Any]:
        """Values computed from the message itself (beyond its details)."""
        return {}

    def _listed(self, path: Path) -> set[str]:
        if path not in self._keys:
            keys: set[str] = set()
            if path.exists():
                with path.open(encoding="utf-8-sig", newline="") as handle:
                    keys = {row["key"] for row in csv.DictReader(handle, delimiter=";")}
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
                    **{column: message.details.get(column, "") for column in self.columns},
                    **self.row_values(message),
                    "key": message.key,
                    "customer_id": message.customer_id,
                }
                rows.setdefault(path, []).append([_cell(row.get(column)) for column in self.columns])
                listed.add(message.key)
            results.append(DeliveryResult(message.key, DeliveryStatus.SENT, reference=path.name))
        for path, new_rows in rows.items():
            new_file = not path.exists()
            with path.open("a", encoding="utf-8-sig" if new_file else "utf-8", newline="") as handle:
                writer = csv.writer(handle, delimiter=";")
                if new_file:
                    writer.writerow(self.columns)
                writer.writerows(new_rows)
        return results

    async def close(self) -> None:
        """Write the XLSX copy of every day file this channel touched."""
        for path in self._keys:
            if path.exists():
                write_xlsx(path, path.with_suffix(".xlsx"))


def _cell(value: Any) -> str:
    return formula_safe("" if value is None else str(value))


def write_xlsx(source: Path, target: Path) -> None:
    """The XLSX copy of a list CSV (cells as text, already formula-safe), with a frozen header."""
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("list")
    sheet.freeze_panes = "A2"
    with source.open(encoding="utf-8-sig", newline="") as handle:
        for row in csv.reader(handle, delimiter=";"):
            sheet.append(row)
    temporary = target.with_name(f".{target.name}.part")
    workbook.save(temporary)
    temporary.replace(target)
