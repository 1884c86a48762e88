"""Call lists for the call centre: one file per day and curator, CSV (Excel-ready) and XLSX.

Each call is a row: the customer, the phone in E.164 and national format, the
local calling window, segment, campaign, script, last purchases, loyalty
balance. CSV files are UTF-8 with a byte-order mark and ``;`` (what Excel
opens in Russian locales); the XLSX copy is written when the channel is
closed. No cell can run as a formula. A key already in the day's file is not
listed again, so a rerun after a crash adds nothing twice.

:func:`schedule_calls` spreads calls over days by the agents' daily capacity,
highest priority first.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import openpyxl
import phonenumbers

from engine.channels.base import DeliveryResult, DeliveryStatus, OutgoingMessage
from engine.spreadsheet import formula_safe

COLUMNS: tuple[str, ...] = (
    "key",
    "customer_id",
    "name",
    "phone",
    "phone_national",
    "calling_window",
    "timezone",
    "segment",
    "campaign",
    "script",
    "last_purchases",
    "loyalty_balance",
    "curator",
)

T = TypeVar("T")


def schedule_calls(
    calls: Sequence[T], capacity: int, first_day: dt.date, priority: Callable[[T], Any]
) -> dict[dt.date, list[T]]:
    """Calls by day: at most ``capacity`` a day, highest ``priority`` first, the rest on later days."""
    if capacity < 1:
        raise ValueError(f"capacity per day must be at least 1, got {capacity}")
    ordered = sorted(calls, key=priority, reverse=True)
    return {
        first_day + dt.timedelta(days=n): ordered[start : start + capacity]
        for n, start in enumerate(range(0, len(ordered), capacity))
    }


def _slug(text: str) -> str:
    return re.sub(r"[^\w.-]+", "_", text, flags=re.UNICODE).strip("_") or "unassigned"


def _national(phone: str) -> str:
    try:
        return phonenumbers.format_number(phonenumbers.parse(phone), phonenumbers.PhoneNumberFormat.NATIONAL)
    except phonenumbers.NumberParseException:
        return phone


class CallListChannel:
    """Appends each call to ``folder/calls-<day>-<curator>.csv`` and writes its XLSX copy on close."""

    def __init__(self, folder: Path, day: dt.date, *, name: str = "call") -> None:
        self.name = name
        self.folder = folder
        self.day = day
        self._keys: dict[Path, set[str]] = {}
        folder.mkdir(parents=True, exist_ok=True)

    def path_for(self, curator: str | None) -> Path:
        """The CSV of ``curator`` (or of calls nobody is assigned) for the channel's day."""
        return self.folder / f"calls-{self.day.isoformat()}-{_slug(curator or 'unassigned')}.csv"

    def _listed(self, path: Path) -> set[str]:
        if path not in self._keys:
            keys: set[str] = set()
            if path.exists():
                with path.open(encoding="utf-8-sig", newline="") as handle:
                    keys = {row["key"] for row in csv.DictReader(handle, delimiter=";")}
            self._keys[path] = keys
        return self._keys[path]

    async def send(self, messages: Sequence[OutgoingMessage]) -> list[DeliveryResult]:
        """List each call once per key in its curator's file for the day."""
        results = []
        for message in messages:
            if not message.recipient:
                results.append(
                    DeliveryResult(message.key, DeliveryStatus.PERMANENT_FAILURE, detail="no phone")
                )
                continue
            path = self.path_for(message.details.get("curator"))
            listed = self._listed(path)
            if message.key not in listed:
                row = {
                    **{column: message.details.get(column, "") for column in COLUMNS},
                    "key": message.key,
                    "customer_id": message.customer_id,
                    "phone": message.recipient,
                    "phone_national": _national(message.recipient),
                }
                new_file = not path.exists()
                with path.open("a", encoding="utf-8-sig" if new_file else "utf-8", newline="") as handle:
                    writer = csv.writer(handle, delimiter=";")
                    if new_file:
                        writer.writerow(COLUMNS)
                    writer.writerow([_cell(row[column]) for column in COLUMNS])
                listed.add(message.key)
            results.append(DeliveryResult(message.key, DeliveryStatus.SENT, reference=path.name))
        return results

    async def close(self) -> None:
        """Write the XLSX copy of every day file this channel touched."""
        for path in self._keys:
            if path.exists():
                write_xlsx(path, path.with_suffix(".xlsx"))


def _cell(value: Any) -> str:
    return formula_safe("" if value is None else str(value))


def write_xlsx(source: Path, target: Path) -> None:
    """The XLSX copy of a call-list CSV (cells as text, already formula-safe), with a frozen header."""
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("calls")
    sheet.freeze_panes = "A2"
    with source.open(encoding="utf-8-sig", newline="") as handle:
        for row in csv.reader(handle, delimiter=";"):
            sheet.append(row)
    temporary = target.with_name(f".{target.name}.part")
    workbook.save(temporary)
    temporary.replace(target)
