"""The steps every import shares: open and map the file, decide its conventions, then stream its
rows in chunks through one transaction that also records the ``import_batch`` row.

The file is read twice: a first pass collects the evidence for the date order
and the decimal separator (and surfaces any unreadable part before anything
is written), the second pass imports. Neither pass holds the file in memory.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Connection, Engine

from engine.clock import utcnow
from engine.customers.importing.batch import finish_batch, start_batch
from engine.customers.importing.columns import ColumnMapping, header_scorer, map_columns
from engine.customers.importing.detection import DateEvidence, DecimalEvidence
from engine.customers.importing.normalise import DateReader, NumberReader, zone
from engine.customers.importing.options import ImportOptions
from engine.customers.importing.reader import SourceRow, TableFile, open_table
from engine.customers.importing.rejects import RejectsWriter, default_rejects_path
from engine.customers.importing.summary import ImportSummary
from engine.errors import ConfigValueError, FieldError, ImportFileError

CHUNK_ROWS = 5000
ItemT = TypeVar("ItemT")


@dataclass
class PreparedImport:
    """An opened, mapped file with its reading conventions decided, ready to import."""

    table: TableFile
    mapping: ColumnMapping
    dates: DateReader
    numbers: NumberReader
    summary: ImportSummary
    rejects: RejectsWriter
    now: dt.datetime
    clock_given: bool

    @property
    def width(self) -> int:
        return len(self.table.header)


def check_now(now: dt.datetime | None) -> dt.datetime:
    """``now`` as aware UTC (default: the current time); naive datetimes are refused."""
    if now is None:
        return utcnow()
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now={now.isoformat()} is naive: pass an aware datetime")
    return now.astimezone(dt.UTC)


def prepare_import(
    path: Path,
    *,
    kind: str,
    source: str,
    options: ImportOptions,
    fields: Mapping[str, Sequence[str]],
    attributes: Mapping[str, str] | None,
    date_fields: set[str],
    number_fields: set[str],
    timezone: str,
    now: dt.datetime | None,
) -> PreparedImport:
    """Open ``path``, map its header and decide its conventions; raise ImportFileError if it cannot be."""
    path = Path(path)
    if not source or len(source) > 100:
        raise ImportFileError(str(path), f"the source name must have 1 to 100 characters, not {source!r}")
    try:
        zone(timezone)
    except FieldError as exc:
        raise ConfigValueError("config.toml", "engine.timezone", str(exc)) from exc
    clock = check_now(now)
    table = open_table(
        path,
        encoding=options.encoding,
        delimiter=options.delimiter,
        sheet=options.sheet,
        header_score=header_scorer(fields),
    )
    rejects = RejectsWriter(
        Path(options.rejects_path or default_rejects_path(path)),
        table.header,
        default=options.rejects_path is None,
    )
    rejects.check()  # before anything is read further or written
    mapping = map_columns(
        path,
        table.header,
        fields,
        column_map=options.column_map,
        ignore_unknown=options.ignore_unknown,
        attributes=attributes,
    )
    attribute_types = attributes or {}
    date_columns = [i for name, i in mapping.fields.items() if name in date_fields]
    date_columns += [i for name, i in mapping.attributes.items() if attribute_types[name] == "date"]
    number_columns = [i for name, i in mapping.fields.items() if name in number_fields]
    number_columns += [
        i for name, i in mapping.attributes.items() if attribute_types[name] in ("number", "int")
    ]

    date_evidence, decimal_evidence = DateEvidence(), DecimalEvidence()
    for row in table.rows():  # the first pass: evidence, and any unreadable part surfaces now
        for index in date_columns:
            if index < len(row.cells) and isinstance(cell := row.cells[index], str) and cell:
                date_evidence.add(cell, row.line)
        for index in number_columns:
            if index < len(row.cells) and isinstance(cell := row.cells[index], str) and cell:
                decimal_evidence.add(cell, row.line)

    detected = list(table.detected)
    date_format = options.date_format
    order: str | None = None
    if date_format is None:
        order, date_format = date_evidence.decide(path)
        if date_format is not None:
            detected.append("date_format")
    decimal_comma = options.decimal_comma
    if decimal_comma is None:
        decimal_comma = decimal_evidence.decide(path)
        if decimal_comma is not None:
            detected.append("decimal_comma")

    summary = ImportSummary(
        kind=kind,
        path=path,
        source=source,
        encoding=table.encoding,
        delimiter=table.delimiter,
        sheet=table.sheet,
        date_format=date_format,
        decimal_comma=decimal_comma,
        detected=detected,
    )
    return PreparedImport(
        table=table,
        mapping=mapping,
        dates=DateReader(order=order, date_format=options.date_format, timezone=timezone),
        numbers=NumberReader(decimal_comma),
        summary=summary,
        rejects=rejects,
        now=clock,
        clock_given=now is not None,
    )


Rejected = list[tuple[SourceRow, list[str]]]
"""Rows of a chunk refused so far, each with its reasons."""


def read_chunk(
    rows: list[SourceRow],
    read: Callable[[SourceRow], tuple[ItemT | None, list[str]]],
    summary: ImportSummary,
    rejects: RejectsWriter,
    process: Callable[[list[ItemT], Rejected], None],
) -> None:
    """Read each row of a chunk (counted in ``summary``); ``process`` takes the readable ones and may
    refuse more into the rejected list; then every refused row goes to ``rejects`` in file order."""
    parsed: list[ItemT] = []
    rejected: Rejected = []
    for row in rows:
        summary.rows += 1
        item, reasons = read(row)
        if item is None:
            rejected.append((row, reasons))
        else:
            parsed.append(item)
    if parsed:
        process(parsed, rejected)
    for row, reasons in sorted(rejected, key=lambda pair: pair[0].line):
        rejects.add(row, reasons)


def chunked(rows: Iterator[SourceRow], size: int = CHUNK_ROWS) -> Iterator[list[SourceRow]]:
    """The rows in lists of at most ``size``."""
    while chunk := list(islice(rows, size)):
        yield chunk


def run_import(
    engine: Engine,
    prepared: PreparedImport,
    process_chunk: Callable[[Connection, list[SourceRow]], None],
) -> ImportSummary:
    """Feed every chunk of rows to ``process_chunk`` inside one transaction; record the batch.

    The rejects file is put in place just before the transaction commits: on
    any error (the rejects file that cannot be written too) the transaction
    rolls back and no rejects file, whole or partial, is left behind.
    """
    summary = prepared.summary
    try:
        with engine.begin() as connection:
            summary.import_id = start_batch(connection, summary, prepared.table.sha256, prepared.now)
            for chunk in chunked(prepared.table.rows()):
                process_chunk(connection, chunk)
            summary.rejected = prepared.rejects.count
            summary.rejects_path = prepared.rejects.path if prepared.rejects.count else None
            finished = prepared.now if prepared.clock_given else utcnow()
            finish_batch(connection, summary, finished)
            prepared.rejects.commit()
    except BaseException:
        prepared.rejects.discard()
        raise
    return summary


def wrong_width(row: SourceRow, width: int) -> str | None:
    """The reason a row with too many or too few cells is rejected, or None."""
    if len(row.cells) == width:
        return None
    return f"the row has {len(row.cells)} cells, the header has {width}"
