"""Reading an import file: CSV (encoding and delimiter detected or given) or XLSX.

A file that cannot be read at all raises :class:`~engine.errors.ImportFileError`;
reading never guesses silently: when the encoding or the delimiter cannot be told
with confidence, the error names the option to pass.

Encoding detection, in order: a byte-order mark (``utf-8-sig``, ``utf-16``);
the whole file decoding as UTF-8 (``utf-8``; pure ASCII counts as UTF-8); else
``cp1251`` when the non-ASCII characters of the first megabyte read as Russian
text (Cyrillic letters, ``№ « » — …``, no control characters, hardly any
Latin letter glued to a Cyrillic one, word case that does not look like KOI8-R
read as cp1251). Anything else is refused.

Delimiter detection: among ``; , TAB |`` the ones that split the header into at
least two cells and give (almost) every sample row the same number of cells;
when several do, the one whose header cells are known column names wins; a
tie is refused.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.errors import ImportFileError

Cell = str | Decimal | dt.datetime | dt.date
"""One cell: CSV gives text; XLSX also gives numbers (Decimal), datetimes and dates."""

DELIMITERS = (";", ",", "\t", "|")
SAMPLE_BYTES = 1 << 20
CHUNK_BYTES = 1 << 20
ZIP_MAGIC = b"PK\x03\x04"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_RUSSIAN = re.compile("[А-яЁё№«»–—…’‘“”„\u00a0€₽°§©®™•]")
_MIXED_SCRIPT = re.compile("[A-Za-z][А-яЁё]|[А-яЁё][A-Za-z]")
_CYRILLIC_WORD = re.compile("[А-яЁё]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_KOI8_CASE = re.compile(r"[а-яё][А-ЯЁ]{2,}")
_CP1251_CASE = re.compile(r"[А-ЯЁ][а-яё]{2,}")


@dataclass
class SourceRow:
    """One data row: its first line number in the file and its cells."""

    line: int
    cells: list[Cell]


@dataclass
class TableFile:
    """An opened import file: its header and a way to stream its data rows (re-iterable)."""

    path: Path
    header: list[str]
    header_line: int
    sha256: str
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    detected: list[str] = field(default_factory=list)
    _rows: Callable[[], Iterator[SourceRow]] | None = None

    def rows(self) -> Iterator[SourceRow]:
        """Stream the data rows after the header; fully empty rows are skipped."""
        assert self._rows is not None
        return self._rows()


def cell_text(cell: Cell | None) -> str:
    """A cell as the text a person would have typed (for rejects files and text fields)."""
    if cell is None:
        return ""
    if isinstance(cell, Decimal):
        if not cell.is_finite():
            return str(cell)
        # fixed-point whatever the size (a spreadsheet's 1E+30 is 1 followed by 30 zeros to a person)
        return format(cell.normalize(), "f")
    if isinstance(cell, dt.datetime | dt.date):
        return cell.isoformat()
    return cell


def open_table(
    path: Path,
    *,
    encoding: str | None,
    delimiter: str | None,
    sheet: str | None,
    header_score: Callable[[list[str]], int],
) -> TableFile:
    """Open ``path`` as CSV or XLSX (told by its content); raise ImportFileError if unreadable.

    ``header_score`` counts the known column names in a candidate header; it
    settles a delimiter that several candidates would fit.
    """
    path = Path(path)
    if not path.exists():
        where = "" if path.is_absolute() else f" (relative to the current folder {Path.cwd()})"
        raise ImportFileError(str(path), f"no such file{where}: check the path")
    if path.is_dir():
        raise ImportFileError(str(path), "is a folder, not a file: name the file to import")
    if not path.is_file():
        raise ImportFileError(
            str(path), "not a regular file (a device or a pipe?): save the data to a file first"
        )
    try:
        with path.open("rb") as handle:
            head = handle.read(8)
    except OSError as exc:
        raise ImportFileError(str(path), f"cannot read the file: {exc.strerror or exc}") from exc
    if not head:
        raise ImportFileError(str(path), "the file is empty (0 bytes)")
    if head.startswith(ZIP_MAGIC):
        return _open_xlsx(path, sheet)
    if head.startswith(OLE2_MAGIC):
        raise ImportFileError(
            str(path), "old binary Excel (.xls) files are not read: save it as .xlsx or CSV"
        )
    if sheet is not None:
        raise ImportFileError(str(path), f"sheet {sheet!r} given, but the file is CSV, not XLSX")
    return _open_csv(path, encoding, delimiter, header_score)


# --- CSV ---------------------------------------------------------------------------------------


def _scan(path: Path) -> tuple[str, bool, bytes]:
    """Hash the file, tell whether it is all valid UTF-8, and keep the first megabyte."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    utf8 = True
    sample = bytearray()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
            if len(sample) < SAMPLE_BYTES:
                sample += chunk[: SAMPLE_BYTES - len(sample)]
            if utf8:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    utf8 = False
    if utf8:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8 = False
    return digest.hexdigest(), utf8, bytes(sample)


def _reads_as_russian(sample: bytes) -> bool:
    text = sample.decode("cp1251", errors="replace")
    non_ascii = len(_NON_ASCII.findall(text))
    if not non_ascii or "\ufffd" in text or _CONTROL.search(text):
        return False
    if len(_RUSSIAN.findall(text)) / non_ascii < 0.97:
        return False
    if len(_MIXED_SCRIPT.findall(text)) > 0.05 * len(_CYRILLIC_WORD.findall(text)):
        return False  # Latin letters glued to Cyrillic ones: another 8-bit code page read as cp1251
    return len(_KOI8_CASE.findall(text)) <= len(_CP1251_CASE.findall(text))


def detect_encoding(path: Path, sample: bytes, utf8: bool) -> str:
    """The encoding of a text file by the rules of the module docstring."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in sample:
        raise ImportFileError(str(path), "binary data (NUL bytes): not a CSV text file nor an XLSX workbook")
    if utf8:
        return "utf-8"
    if _reads_as_russian(sample):
        return "cp1251"
    raise ImportFileError(
        str(path),
        "cannot tell the encoding: the file is not UTF-8 and does not read as Russian cp1251 text; "
        "pass --encoding (e.g. --encoding cp1251)",
    )


def _decoded_sample(path: Path, encoding: str, sample: bytes) -> str:
    text = sample.decode(encoding, errors="replace")
    if len(sample) >= SAMPLE_BYTES and "\n" in text:
        text = text[: text.rindex("\n")]
    return text.lstrip("\ufeff")


def _first_row(rows: list[list[str]]) -> int | None:
    for index, row in enumerate(rows):
        if any(cell.strip() for cell in row):
            return index
    return None


def detect_delimiter(path: Path, text: str, header_score: Callable[[list[str]], int]) -> str:
    """The delimiter of a CSV sample by the rules of the module docstring."""
    viable: list[tuple[int, int, str]] = []
    split_header = False
    for candidate in DELIMITERS:
        try:
            rows = list(csv.reader(io.StringIO(text), delimiter=candidate))[:200]
        except csv.Error:
            continue
        start = _first_row(rows)
        if start is None:
            raise ImportFileError(str(path), "no header row: the file holds only empty lines")
        header = rows[start]
        width = len(_trim_header(header))
        if width < 2:
            continue
        split_header = True
        data = [row for row in rows[start + 1 :] if any(cell.strip() for cell in row)]
        consistent = sum(1 for row in data if len(_trim_row(row, width)) == width)
        if data and consistent / len(data) < 0.8:
            continue
        viable.append((header_score(header), width, candidate))
    if not viable:
        if split_header:
            raise ImportFileError(
                str(path),
                "cannot tell the delimiter: no candidate (; , tab |) splits the rows evenly; "
                "pass --delimiter (e.g. --delimiter ';')",
            )
        return ","  # one column: nothing to split
    viable.sort(reverse=True)
    if len(viable) > 1 and viable[0][:2] == viable[1][:2]:
        names = " or ".join(repr(v[2]) for v in viable if v[:2] == viable[0][:2])
        raise ImportFileError(
            str(path), f"cannot tell the delimiter ({names}); pass --delimiter (e.g. --delimiter ';')"
        )
    return viable[0][2]


def _trim_header(header: list[str]) -> list[str]:
    """Drop trailing empty header cells (a trailing delimiter, common in 1C exports)."""
    end = len(header)
    while end > 0 and not header[end - 1].strip():
        end -= 1
    return header[:end]


def _trim_row(row: list[str], width: int) -> list[str]:
    """Drop empty cells beyond the header width (trailing delimiters)."""
    end = len(row)
    while end > width and not row[end - 1].strip():
        end -= 1
    return row[:end]


def _open_csv(
    path: Path, encoding: str | None, delimiter: str | None, header_score: Callable[[list[str]], int]
) -> TableFile:
    try:
        sha256, utf8, sample = _scan(path)
    except OSError as exc:
        raise ImportFileError(str(path), f"cannot read the file: {exc.strerror or exc}") from exc
    detected: list[str] = []
    if encoding is None:
        encoding = detect_encoding(path, sample, utf8)
        detected.append("encoding")
    else:
        try:
            codecs.lookup(encoding)
        except LookupError as exc:
            raise ImportFileError(str(path), f"unknown encoding {encoding!r}") from exc
        if encoding.replace("_", "-").lower() in ("utf-8", "utf8") and sample.startswith(codecs.BOM_UTF8):
            encoding = "utf-8-sig"
    text = _decoded_sample(path, encoding, sample)
    if not text.strip():
        raise ImportFileError(str(path), "no header row: the file holds only empty lines")
    if delimiter is None:
        delimiter = detect_delimiter(path, text, header_score)
        detected.append("delimiter")
    elif len(delimiter) != 1:
        raise ImportFileError(str(path), f"the delimiter must be one character, not {delimiter!r}")

    chosen_encoding, chosen_delimiter = encoding, delimiter
    header, header_line = _read_csv_header(path, chosen_encoding, chosen_delimiter)

    def rows() -> Iterator[SourceRow]:
        yield from _csv_rows(path, chosen_encoding, chosen_delimiter, len(header))

    return TableFile(
        path=path,
        header=header,
        header_line=header_line,
        sha256=sha256,
        encoding=encoding,
        delimiter=delimiter,
        detected=detected,
        _rows=rows,
    )


def _csv_records(path: Path, encoding: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(first line number, cells) of every record, wrapping decode and csv errors."""
    line = 1
    try:
        with path.open(encoding=encoding, newline="") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            for record in reader:
                yield line, record
                line = reader.line_num + 1
    except UnicodeDecodeError as exc:
        raise ImportFileError(
            str(path),
            f"cannot decode the file as {encoding} near line {line} ({exc.reason}); "
            "pass the right --encoding (e.g. --encoding cp1251)",
        ) from exc
    except csv.Error as exc:
        raise ImportFileError(str(path), f"line {line}: cannot parse CSV ({exc})") from exc
    except OSError as exc:
        raise ImportFileError(str(path), f"cannot read the file: {exc.strerror or exc}") from exc


def _read_csv_header(path: Path, encoding: str, delimiter: str) -> tuple[list[str], int]:
    for line, record in _csv_records(path, encoding, delimiter):
        if any(cell.strip() for cell in record):
            record[0] = record[0].lstrip("\ufeff")
            return [cell.strip() for cell in _trim_header(record)], line
    raise ImportFileError(str(path), "no header row: the file holds only empty lines")


def _csv_rows(path: Path, encoding: str, delimiter: str, width: int) -> Iterator[SourceRow]:
    records = _csv_records(path, encoding, delimiter)
    for _line, record in records:
        if any(cell.strip() for cell in record):
            break
    for line, record in records:
        if any(cell.strip() for cell in record):
            yield SourceRow(line, list(_trim_row(record, width)))


# --- XLSX --------------------------------------------------------------------------------------


def _xlsx_cell(value: Any) -> Cell:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, Decimal | dt.datetime | dt.date):
        return value
    if isinstance(value, dt.time):
        return value.isoformat()
    return str(value)


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _open_xlsx(path: Path, sheet: str | None) -> TableFile:
    import openpyxl  # imported here: only XLSX imports pay for it

    def load() -> Any:
        try:
            return openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # zipfile, XML and openpyxl errors alike: the file is broken
            raise ImportFileError(str(path), f"cannot read the XLSX workbook: {exc}") from exc

    workbook = load()
    try:
        names = list(workbook.sheetnames)
        if not names:
            raise ImportFileError(str(path), "the workbook has no sheets")
        if sheet is not None and sheet not in names:
            raise ImportFileError(str(path), f"no sheet {sheet!r} (sheets: {', '.join(names)})")
        chosen = sheet if sheet is not None else names[0]
        header: list[str] | None = None
        header_line = 0
        for number, values in _xlsx_values(path, workbook[chosen]):
            if any(cell_text(cell).strip() for cell in values):
                header = [cell_text(cell).strip() for cell in values]
                header_line = number
                break
    finally:
        workbook.close()
    if header is None:
        raise ImportFileError(str(path), f"no header row: sheet {chosen!r} is empty")
    header = _trim_header(header)
    width = len(header)

    def rows() -> Iterator[SourceRow]:
        book = load()
        try:
            for number, values in _xlsx_values(path, book[chosen]):
                if number <= header_line or not any(cell_text(cell).strip() for cell in values):
                    continue
                cells = list(values)
                end = len(cells)
                while end > width and not cell_text(cells[end - 1]).strip():
                    end -= 1
                yield SourceRow(number, cells[:end])
        finally:
            book.close()

    try:
        sha256 = _hash_file(path)
    except OSError as exc:
        raise ImportFileError(str(path), f"cannot read the file: {exc.strerror or exc}") from exc
    return TableFile(
        path=path,
        header=header,
        header_line=header_line,
        sha256=sha256,
        sheet=chosen,
        _rows=rows,
    )


def _xlsx_values(path: Path, worksheet: Any) -> Iterator[tuple[int, list[Cell]]]:
    try:
        for number, values in enumerate(worksheet.iter_rows(values_only=True), start=1):
            yield number, [_xlsx_cell(value) for value in values]
    except ImportFileError:
        raise
    except Exception as exc:
        raise ImportFileError(str(path), f"cannot read the XLSX workbook: {exc}") from exc
