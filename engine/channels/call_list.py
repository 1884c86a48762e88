"""Call lists for the call centre: one file per day and curator (see :mod:`engine.channels.list_file`).

A call list goes out and comes back: agents work through it top down and
fill in two empty columns per row, ``called_at`` and ``outcome`` (``note``
too, if they like), and the centre hands the file to ``crm import responses``
as it saved it, CSV or XLSX.

Each row carries what the agent needs: the customer as the business knows
them (external id), name, the phone in international (``+7 916 123-45-67``)
and national (``8 (916) 123-45-67``) form, the calling window in the
customer's time and in the centre's, the campaign's priority, the curator,
the points the customer can spend now and their tier, the last purchases,
and the campaign's key (what the importer reads back) and name. Rows are in
calling order: the window that opens first in the centre's time, then the
highest priority. The ``centre`` column names the call centre whose codes
the outcomes are in, when ``[responses.call_centres]`` has exactly one.

The script is the list's, not the row's: ``<list>.script.txt`` holds each
campaign's script once (once per language), the rows naming their
campaign, then the outcome codes. The XLSX copy, written when the channel
closes, has all three as sheets (``calls``, ``script``, ``outcomes``), the
outcome column offering the codes as a list, column widths, an autofilter,
a frozen header and a landscape print setup fitting the page width with the
header repeated on every page.

Phones are written grouped (``+7 916 123-45-67``): the E.164 digits, which a
spreadsheet opening the CSV keeps as text, where ``+79161234567`` would
become the number 79161234567. A returned row names its contact by ``key``,
so the importer never needs the phone to find the customer.

:func:`schedule_calls` spreads calls over days by the agents' daily
capacity, highest priority first.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import phonenumbers

from engine.channels.base import DeliveryResult, DeliveryStatus, OutgoingMessage, SendJournal
from engine.channels.list_file import ListFileChannel, read_list
from engine.errors import OutputError
from engine.reporting import save_workbook, write_atomically
from engine.settings import CALL_OUTCOMES, CallCentreSection

if TYPE_CHECKING:
    from openpyxl.worksheet.worksheet import Worksheet

T = TypeVar("T")

#: the columns the call centre fills in; the importer reads them back
RETURNED = ("called_at", "outcome", "centre", "note")
SCRIPT_COLUMNS = ("campaign", "campaign_name", "script")  # the XLSX copy's script sheet
#: widest column of the XLSX copy, in characters
MAX_WIDTH = 40


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


def _formatted(phone: str, style: int) -> str:
    try:
        return phonenumbers.format_number(phonenumbers.parse(phone), style)
    except phonenumbers.NumberParseException:
        return phone


def national(phone: str) -> str:
    """``+79161234567`` as the country writes it (``8 (916) 123-45-67``)."""
    return _formatted(phone, phonenumbers.PhoneNumberFormat.NATIONAL)


def international(phone: str) -> str:
    """``+79161234567`` grouped (``+7 916 123-45-67``): E.164's digits, which spreadsheets keep as text."""
    return _formatted(phone, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def _priority(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0


def calling_order(header: Sequence[str]) -> Callable[[Sequence[str]], tuple[Any, ...]]:
    """The sort key of a call list's rows (columns as in ``header``): window first, then priority."""
    at = {name: index for index, name in enumerate(header)}

    def cell(row: Sequence[str], name: str) -> str:
        index = at.get(name)
        return row[index] if index is not None and index < len(row) else ""

    return lambda row: (
        cell(row, "centre_window"),
        -_priority(cell(row, "priority")),
        cell(row, "customer"),
        cell(row, "key"),
    )


class CallListChannel(ListFileChannel):
    """Appends each call to ``folder/calls-<day>-<curator>.csv``, its script once to ``....script.txt``;
    the XLSX copies on close.

    ``centres`` are ``[responses.call_centres]``: with exactly one, the list
    offers its codes and names it in each row's ``centre``; otherwise it
    offers the outcome names, which every import understands.
    """

    columns = (
        "customer",
        "name",
        "phone",
        "phone_national",
        "calling_window",
        "timezone",
        "centre_window",
        "priority",
        "curator",
        "loyalty_balance",
        "tier",
        "last_purchases",
        "segment",
        "campaign",
        "campaign_name",
        *RETURNED,
        "key",
    )
    prefix = "calls"
    group_by = "curator"
    missing_recipient = "no phone"

    def __init__(
        self,
        folder: Path,
        day: dt.date,
        *,
        name: str = "call",
        centres: Mapping[str, CallCentreSection] | None = None,
    ) -> None:
        super().__init__(folder, day, name=name)
        centres = centres or {}
        self.centre = next(iter(centres)) if len(centres) == 1 else ""
        codes = centres[self.centre].codes if self.centre else {}
        #: (what the agent writes, the outcome it stands for)
        self.outcomes: list[tuple[str, str]] = list(codes.items()) or [(name, name) for name in CALL_OUTCOMES]
        #: each list's scripts: (campaign, script) -> campaign name; a campaign has one per language
        self._scripts: dict[Path, dict[tuple[str, str], str]] = {}

    def row_values(self, message: OutgoingMessage) -> Mapping[str, Any]:
        """The phone in both forms; the centre whose codes the outcome is in; the script is not a column."""
        return {
            "phone": international(message.recipient),
            "phone_national": national(message.recipient),
            "centre": self.centre,
        }

    def ordered(self, rows: list[list[str]]) -> list[list[str]]:
        """Calling order: the window that opens first in the centre's time, then the highest priority."""
        return sorted(rows, key=calling_order(self.columns))

    def script_path(self, path: Path) -> Path:
        """The scripts and outcome codes of the list ``path``: ``calls-<day>-<curator>.script.txt``."""
        return path.with_suffix(".script.txt")

    async def send(
        self, messages: Sequence[OutgoingMessage], *, journal: SendJournal | None = None
    ) -> list[DeliveryResult]:
        """List each call once per key (see :class:`ListFileChannel`), and each campaign's script once."""
        results = await super().send(messages, journal=journal)
        changed: set[Path] = set()
        for message, result in zip(messages, results, strict=True):
            if result.status is not DeliveryStatus.SENT:
                continue
            path = self.script_path(self.path_for(message.details.get("curator")))
            details = message.details
            scripts = self._known_scripts(path)
            script = (str(details.get("campaign", "")), str(details.get("script", "")).strip())
            name = str(details.get("campaign_name", ""))
            if scripts.get(script) != name:
                scripts[script] = name
                changed.add(path)
        for path in changed:
            text = self._script_text(path.name.removesuffix(".script.txt"), self._scripts[path])
            try:
                write_atomically(path, ("\ufeff" + text).encode("utf-8"), option=self.option)
            except OutputError:
                self._scripts.pop(path, None)
                raise
        return results

    def _known_scripts(self, path: Path) -> dict[tuple[str, str], str]:
        if path not in self._scripts:
            try:
                text = path.read_text(encoding="utf-8-sig") if path.exists() else ""
            except UnicodeDecodeError:
                text = ""  # saved over in another encoding: written again with the scripts met from now on
            except OSError as exc:
                raise self._unwritable(path, exc) from exc
            self._scripts[path] = read_scripts(text)
        return self._scripts[path]

    def _script_text(self, title: str, scripts: Mapping[tuple[str, str], str]) -> str:
        """The list's script file: each campaign's script once, then the outcome codes."""
        parts = [f"{title}: the call script of each campaign, then the outcome codes\n"]
        for (campaign, script), name in sorted(scripts.items()):
            parts.append(f"=== campaign {campaign}: {name} ===\n{script}\n")
        centre = f" of call centre {self.centre}" if self.centre else ""
        codes = "\n".join(f"{code}\t{outcome}" for code, outcome in self.outcomes)
        parts.append(f"=== outcome codes{centre} ===\n{codes}\n")
        return "\n".join(parts)

    async def close(self) -> None:
        """Write the XLSX copy of every day file this channel touched."""
        for path in self._keys:
            if path.exists():
                self._write_workbook(path)

    def _write_workbook(self, path: Path) -> None:
        """The XLSX copy: calls in calling order, the script, the outcome codes; set up to work and print."""
        import openpyxl
        from openpyxl.styles import Alignment, Font
        from openpyxl.worksheet.datavalidation import DataValidation

        header, *rows = read_list(path, option=self.option) or [list(self.columns)]
        rows.sort(key=calling_order(header))
        workbook = openpyxl.Workbook()
        calls = workbook.active
        assert calls is not None
        calls.title = "calls"
        calls.append(header)
        for row in rows:
            calls.append([_xlsx_value(name, cell) for name, cell in zip(header, row, strict=False)])
        last = calls.max_row
        for index, name in enumerate(header, start=1):
            letter = calls.cell(1, index).column_letter
            if name == "called_at":
                for number in range(2, last + 1):
                    calls.cell(number, index).number_format = "DD.MM.YYYY HH:MM"
            if name == "outcome" and rows:
                choice = DataValidation(
                    type="list",
                    formula1=f"=outcomes!$A$2:$A${len(self.outcomes) + 1}",
                    allow_blank=True,
                    errorStyle="warning",
                    errorTitle="Outcome",
                    error="Not one of the codes on the outcomes sheet",
                )
                choice.add(f"{letter}2:{letter}{last}")
                calls.add_data_validation(choice)
        _set_up(calls, header, rows)
        script = workbook.create_sheet("script")
        script.append(SCRIPT_COLUMNS)
        for (campaign, text), name in sorted(self._known_scripts(self.script_path(path)).items()):
            script.append((campaign, name, text))
        for cells in script.iter_rows(min_row=2, min_col=3, max_col=3):
            for cell in cells:
                cell.alignment = Alignment(wrap_text=True, vertical="top")
        _set_up(script, SCRIPT_COLUMNS, [], widths={"script": 100})
        outcomes = workbook.create_sheet("outcomes")
        outcomes.append(("code", "outcome"))
        for code, outcome in self.outcomes:
            outcomes.append((code, outcome))
        _set_up(outcomes, ("code", "outcome"), self.outcomes)
        for sheet in workbook.worksheets:
            for cell in sheet[1]:
                cell.font = Font(bold=True)
        save_workbook(workbook, path.with_suffix(".xlsx"), option=self.option)


_SCRIPT_HEADER = re.compile(r"^=== campaign (\S+): (.*) ===$")


def read_scripts(text: str) -> dict[tuple[str, str], str]:
    """The scripts of a list's script file: (campaign, script) -> campaign name."""
    found: dict[tuple[str, str], str] = {}
    current: tuple[str, str] | None = None
    lines: list[str] = []
    for line in [*text.splitlines(), "=== end ==="]:
        if line.startswith("=== ") and line.endswith(" ==="):
            if current is not None:
                found[current[0], "\n".join(lines).strip()] = current[1]
            header = _SCRIPT_HEADER.match(line)
            current = (header.group(1), header.group(2)) if header else None
            lines = []
        elif current is not None:
            lines.append(line)
    return found


def _xlsx_value(column: str, cell: str) -> Any:
    """A list cell as the XLSX shows it: the priority as a number, everything else as written."""
    if column == "priority" and cell.lstrip("-").isdigit():
        return int(cell)
    return cell


def _set_up(
    sheet: Worksheet,
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    widths: Mapping[str, int] | None = None,
) -> None:
    """Widths from the contents, autofilter, frozen header, landscape A4 fit to width, header repeated."""
    for index, name in enumerate(header, start=1):
        longest = max((len(str(row[index - 1])) for row in rows if index <= len(row)), default=0)
        width = (widths or {}).get(name) or min(max(len(name), longest) + 2, MAX_WIDTH)
        sheet.column_dimensions[sheet.cell(1, index).column_letter].width = width
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = sheet.dimensions
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.print_title_rows = "1:1"
