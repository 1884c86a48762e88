"""Customer import: normalise each row, merge duplicates, keep provenance, all set-based.

Matching, for each good row in file order: the customer this source's record
with the row's key points at (the key is the row's external id, else
``email:<email>``, else ``phone:<phone>``), else the customer with that
external id, else the one with that email, else the one with that phone
(lowest id first when several share it). Lookups are bulk queries per chunk of
5,000 rows; earlier chunks of the same import are already written (in the same
transaction), so duplicates across chunks are found the same way.

A matching row updates only the fields it gives (empty cells never erase);
the external id of a customer, once set, is kept (the source record keeps the
row's own key). Attributes are merged key by key. Consent given without a time
is stamped with the import time when it changes.

Outcome of each row (they sum to ``rows``):

- ``inserted``: no customer matched; a new one was created;
- ``merged``: the row joined a customer of another source that this source had
  no record for (by external id, email or phone), or it repeats a customer an
  earlier row of this import created or already touched and changes it;
- ``updated``: the first row of this import for an existing customer, changing
  the customer or what this source said about it;
- ``unchanged``: nothing changed (re-importing a file gives only these);
- ``rejected``: written to the rejects file with the reasons.

Provenance: one ``customer_source_record`` per (source, key) holding the
normalised fields that source gave (several rows with one key accumulate in
file order) and their hash; ``last_seen_at`` moves on each import that sees it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, bindparam, insert, or_, select, update

from engine.customers.importing.columns import CUSTOMER_FIELDS
from engine.customers.importing.normalise import (
    clean_text,
    is_empty,
    parse_bool,
    parse_choice,
    parse_country,
    parse_email,
    parse_language,
    parse_phone,
    parse_timezone,
    phone_region,
)
from engine.customers.importing.options import ImportOptions
from engine.customers.importing.pipeline import PreparedImport, prepare_import, run_import, wrong_width
from engine.customers.importing.reader import Cell, SourceRow
from engine.customers.importing.summary import ImportSummary
from engine.errors import ConfigValueError, FieldError
from engine.models import CONSENT_CHANNELS, CUSTOMER, LIFECYCLE_STAGES, SOURCE_RECORD
from engine.settings import MAX_COUNT, MAX_TOTAL
from engine.sql import allocate_ids

ATTRIBUTE_TYPES = ("bool", "date", "int", "number", "str")
DATETIME_FIELDS = {"verified_at", *(f"consent_{channel}_at" for channel in CONSENT_CHANNELS)}
DATE_FIELDS = {"birth_date", *DATETIME_FIELDS}
TEXT_LIMITS = {
    "external_id": 200, "first_name": 200, "last_name": 200, "middle_name": 200, "full_name": 600,
    "company": 300, "address": 500, "city": 200, "curator": 200,
}  # fmt: skip
LIFECYCLE_ALIASES = {
    "посетитель": "visitor", "лид": "visitor", "prospect": "visitor", "lead": "visitor",
    "клиент": "client", "customer": "client", "покупатель": "client",
    "постоянный": "regular", "постоянный клиент": "regular", "regular client": "regular",
    "партнер": "partner",
}  # fmt: skip
COLUMNS = (
    "external_id", "first_name", "last_name", "middle_name", "company", "email", "phone", "address", "city",
    "country", "timezone", "birth_date", "language", "curator",
    *(name for channel in CONSENT_CHANNELS for name in (f"consent_{channel}", f"consent_{channel}_at")),
    "lifecycle_stage", "verified_at", "attributes",
)  # fmt: skip
IDENTIFIERS = ("external_id", "email", "phone")
NumberT = TypeVar("NumberT", int, Decimal)


def import_customers(
    engine: Engine,
    path: Path,
    *,
    source: str,
    options: ImportOptions = ImportOptions(),
    default_region: str = "RU",
    timezone: str = "Europe/Moscow",
    attributes: Mapping[str, str] = {},
    now: dt.datetime | None = None,
) -> ImportSummary:
    """Import the customers of a CSV or XLSX file from ``source``; return what happened.

    ``default_region`` reads national phone numbers; ``timezone`` reads times
    without an offset; ``attributes`` declares custom attributes
    (``{"vip": "bool", "since": "date"}``; types: bool, date, int, number, str).
    Raises :class:`~engine.errors.ImportFileError` (nothing imported) when the
    file cannot be read, its columns cannot be mapped or its conventions cannot
    be told; bad rows go to the rejects file instead.

    Example::

        summary = import_customers(engine, Path("shop.csv"), source="shop")
        print("\\n".join(summary.describe()))
    """
    for name, kind in attributes.items():
        if kind not in ATTRIBUTE_TYPES:
            raise ConfigValueError(
                "config.toml", f"customers.attributes.{name}",
                f"unknown type {kind!r} (known: {', '.join(ATTRIBUTE_TYPES)})",
            )  # fmt: skip
    region = phone_region(default_region)
    prepared = prepare_import(
        path,
        kind="customers",
        source=source,
        options=options,
        fields=CUSTOMER_FIELDS,
        attributes=attributes,
        date_fields=DATE_FIELDS,
        number_fields=set(),
        timezone=timezone,
        now=now,
    )
    importer = _CustomerImport(prepared, source, region, attributes)
    return run_import(engine, prepared, importer.process_chunk)


# --- reading one row ---------------------------------------------------------------------------


class _RowReader:
    """Turns the cells of one row into normalised customer fields, or reasons to reject it."""

    def __init__(self, prepared: PreparedImport, region: str, attributes: Mapping[str, str]) -> None:
        self.prepared = prepared
        dates, numbers = prepared.dates, prepared.numbers
        parsers: dict[str, Callable[[Cell], Any]] = {
            "email": parse_email,
            "phone": lambda cell: parse_phone(cell, region),
            "country": parse_country,
            "timezone": parse_timezone,
            "birth_date": dates.date,
            "language": parse_language,
            "lifecycle_stage": lambda cell: parse_choice(cell, LIFECYCLE_ALIASES, LIFECYCLE_STAGES),
        }
        for name, limit in TEXT_LIMITS.items():
            parsers[name] = partial(clean_text, max_length=limit)
        for name in DATETIME_FIELDS:
            parsers[name] = dates.datetime
        for channel in CONSENT_CHANNELS:
            parsers[f"consent_{channel}"] = parse_bool
        self.parsers = parsers
        by_type: dict[str, Callable[[Cell], Any]] = {
            "bool": parse_bool,
            "str": clean_text,
            "int": lambda cell: _bounded(numbers.integer(cell), MAX_COUNT),
            "number": lambda cell: _json_number(_bounded(numbers.decimal(cell), MAX_TOTAL)),
            "date": lambda cell: dates.date(cell).isoformat(),
        }
        self.attribute_parsers = {name: by_type[kind] for name, kind in attributes.items()}

    def read(self, row: SourceRow) -> tuple[dict[str, Any], list[str]]:
        width_problem = wrong_width(row, self.prepared.width)
        if width_problem:
            return {}, [width_problem]
        fields: dict[str, Any] = {}
        reasons: list[str] = []
        for name, index in self.prepared.mapping.fields.items():
            cell = row.cells[index]
            if is_empty(cell):
                continue
            try:
                fields[name] = self.parsers[name](cell)
            except FieldError as exc:
                reasons.append(f"{name}: {exc}")
        attributes: dict[str, Any] = {}
        for name, index in self.prepared.mapping.attributes.items():
            cell = row.cells[index]
            if is_empty(cell):
                continue
            try:
                attributes[name] = self.attribute_parsers[name](cell)
            except FieldError as exc:
                reasons.append(f"attr.{name}: {exc}")
        if attributes:
            fields["attributes"] = attributes
        _split_full_name(fields)
        city = fields.get("city")
        if city:  # a field of its own (rules name it), and part of the postal address letters carry
            address = fields.get("address")
            if not address:
                fields["address"] = city
            elif city.lower() not in address.lower():
                fields["address"] = f"{city}, {address}"
            if len(fields["address"]) > TEXT_LIMITS["address"]:
                reasons.append(f"address: with the city, longer than {TEXT_LIMITS['address']} characters")
        if not reasons and not any(name in fields for name in IDENTIFIERS):
            reasons.append("no external_id, email or phone: nothing identifies the customer")
        return fields, reasons


def _split_full_name(fields: dict[str, Any]) -> None:
    """ФИО in Russian order: last name, first name, middle name(s); given parts win."""
    full = fields.pop("full_name", None)
    if not full:
        return
    parts = full.split()
    for name, value in zip(
        ("last_name", "first_name", "middle_name"), (*parts[:2], " ".join(parts[2:])), strict=True
    ):
        if value and name not in fields:
            fields[name] = value[: TEXT_LIMITS[name]]


def _bounded(value: NumberT, largest: int | Decimal) -> NumberT:
    """An attribute's number within ``-largest .. largest`` (whole numbers: what rules read as INTEGER)."""
    if isinstance(value, Decimal) and not value.is_finite():
        raise FieldError(f"{value} is not a finite number")
    if not -largest <= value <= largest:
        raise FieldError(f"{value} is outside -{largest:,} .. {largest:,}")
    return value


def _json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    return value


def _hash(data: dict[str, Any]) -> str:
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _row_key(fields: dict[str, Any]) -> str:
    if "external_id" in fields:
        return str(fields["external_id"])
    if "email" in fields:
        return f"email:{fields['email']}"
    return f"phone:{fields['phone']}"


# --- merging a chunk ---------------------------------------------------------------------------


@dataclass(eq=False)
class _State:
    """One customer as this chunk sees it: as loaded (``original``) and as the rows leave it."""

    id: int | None
    source: str
    original: dict[str, Any]
    current: dict[str, Any]
    touched: bool = False

    @property
    def changed(self) -> bool:
        return self.id is None or self.current != self.original


@dataclass
class _Record:
    id: int
    customer_id: int
    data: dict[str, Any]
    data_hash: str


@dataclass
class _Pending:
    """The source record of one key as this chunk leaves it."""

    data: dict[str, Any]
    line: int
    state: _State


class _CustomerImport:
    """The state of one customer import across its chunks."""

    def __init__(
        self, prepared: PreparedImport, source: str, region: str, attributes: Mapping[str, str]
    ) -> None:
        self.prepared = prepared
        self.summary = prepared.summary
        self.source = source
        self.now = prepared.now
        self.reader = _RowReader(prepared, region, attributes)
        self.inserted_ids: set[int] = set()
        self.touched_ids: set[int] = set()
        self.keys_seen: set[str] = set()

    def process_chunk(self, connection: Connection, rows: list[SourceRow]) -> None:
        good: list[tuple[SourceRow, dict[str, Any], str]] = []
        for row in rows:
            self.summary.rows += 1
            fields, reasons = self.reader.read(row)
            if reasons:
                self.prepared.rejects.add(row, reasons)
            else:
                good.append((row, fields, _row_key(fields)))
        if not good:
            return
        records = self._load_records(connection, {key for _, _, key in good})
        states = self._load_customers(connection, good, records)
        outcomes, pending, new = self._merge(good, records, states)
        self._write(connection, list(states.values()), new, records, pending)
        for state, kind, key in outcomes:
            record = records.get(key)
            record_changed = record is None or record.data_hash != _hash(pending[key].data)
            if kind in ("inserted", "merged"):
                self._count(kind)
            elif kind == "new duplicate":
                self._count("merged")
            elif kind == "duplicate":
                self._count("merged" if state.changed or record_changed else "unchanged")
            else:
                self._count("updated" if state.changed or record_changed else "unchanged")
        self.keys_seen.update(pending)

    def _count(self, outcome: str) -> None:
        setattr(self.summary, outcome, getattr(self.summary, outcome) + 1)

    def _load_records(self, connection: Connection, keys: set[str]) -> dict[str, _Record]:
        record = SOURCE_RECORD.c
        query = select(record.id, record.source_key, record.customer_id, record.data, record.data_hash).where(
            record.source == self.source, record.source_key.in_(sorted(keys))
        )
        return {
            row.source_key: _Record(row.id, row.customer_id, dict(row.data or {}), row.data_hash)
            for row in connection.execute(query)
        }

    def _load_customers(
        self,
        connection: Connection,
        good: list[tuple[SourceRow, dict[str, Any], str]],
        records: dict[str, _Record],
    ) -> dict[int, _State]:
        conditions = []
        ids = {record.customer_id for record in records.values()}
        if ids:
            conditions.append(CUSTOMER.c.id.in_(sorted(ids)))
        for name in IDENTIFIERS:
            values = sorted({fields[name] for _, fields, _ in good if name in fields})
            if values:
                conditions.append(CUSTOMER.c[name].in_(values))
        columns = [CUSTOMER.c.id, CUSTOMER.c.source, *(CUSTOMER.c[name] for name in COLUMNS)]
        query = select(*columns).where(or_(*conditions)).order_by(CUSTOMER.c.id)
        states: dict[int, _State] = {}
        for row in connection.execute(query):
            loaded = {name: getattr(row, name) for name in COLUMNS}
            loaded["attributes"] = dict(loaded["attributes"] or {})
            current = dict(loaded, attributes=dict(loaded["attributes"]))
            states[row.id] = _State(row.id, row.source, loaded, current, touched=row.id in self.touched_ids)
        return states

    def _merge(
        self,
        good: list[tuple[SourceRow, dict[str, Any], str]],
        records: dict[str, _Record],
        states: dict[int, _State],
    ) -> tuple[list[tuple[_State, str, str]], dict[str, _Pending], list[_State]]:
        indexes: dict[str, dict[str, _State]] = {name: {} for name in IDENTIFIERS}
        for loaded in states.values():  # ordered by id: the lowest id wins a shared email or phone
            for name in IDENTIFIERS:
                if loaded.current[name] is not None:
                    indexes[name].setdefault(loaded.current[name], loaded)
        by_key: dict[str, _State] = {}
        outcomes: list[tuple[_State, str, str]] = []
        pending: dict[str, _Pending] = {}
        new_states: list[_State] = []
        for row, fields, key in good:
            state: _State | None = by_key.get(key)
            if state is None and key in records:
                state = states[records[key].customer_id]
            for name in IDENTIFIERS:
                if state is None and name in fields:
                    state = indexes[name].get(fields[name])
            if state is None:
                state = _State(None, self.source, {}, _blank_customer())
                new_states.append(state)
                kind = "inserted"
            elif state.id is None or state.id in self.inserted_ids:
                kind = "new duplicate"
            elif state.touched:
                kind = "duplicate"
            elif key not in records and state.source != self.source:
                kind = "merged"
            else:
                kind = "first"
            state.touched = True
            self._apply(state, fields)
            for name in IDENTIFIERS:
                if name in fields:
                    indexes[name].setdefault(fields[name], state)
            by_key[key] = state
            data = _jsonable(fields)
            if key in pending:
                pending[key].data.update(data)
                pending[key].line = row.line
            else:
                base = records[key].data if key in records and key in self.keys_seen else {}
                pending[key] = _Pending({**base, **data}, row.line, state)
            outcomes.append((state, kind, key))
        return outcomes, pending, new_states

    def _apply(self, state: _State, fields: dict[str, Any]) -> None:
        current = state.current
        for name, value in fields.items():
            if name == "attributes":
                current["attributes"] = {**current["attributes"], **value}
            elif name == "external_id":
                if current["external_id"] is None:
                    current["external_id"] = value
            elif not name.startswith("consent_"):
                current[name] = value
        for channel in CONSENT_CHANNELS:
            given = fields.get(f"consent_{channel}")
            at = fields.get(f"consent_{channel}_at")
            if given is None and at is None:
                continue
            if given is None:
                given = True  # a consent time without a yes/no means consent was given then
            if given != current[f"consent_{channel}"]:
                current[f"consent_{channel}"] = given
                current[f"consent_{channel}_at"] = at or self.now
            elif at is not None:
                current[f"consent_{channel}_at"] = at

    def _write(
        self,
        connection: Connection,
        existing: list[_State],
        new: list[_State],
        records: dict[str, _Record],
        pending: dict[str, _Pending],
    ) -> None:
        if new:
            for state, new_id in zip(new, allocate_ids(connection, CUSTOMER.name, len(new)), strict=True):
                state.id = new_id
                self.inserted_ids.add(new_id)
            connection.execute(
                insert(CUSTOMER),
                [
                    {**state.current, "id": state.id, "source": self.source, "created_at": self.now,
                     "updated_at": self.now}
                    for state in new
                ],
            )  # fmt: skip
        changed = [state for state in existing if state.changed]
        if changed:
            statement = (
                update(CUSTOMER)
                .where(CUSTOMER.c.id == bindparam("b_id"))
                .values({name: bindparam(f"b_{name}") for name in (*COLUMNS, "updated_at")})
            )
            connection.execute(
                statement,
                [
                    {
                        "b_id": state.id,
                        "b_updated_at": self.now,
                        **{f"b_{k}": v for k, v in state.current.items()},
                    }
                    for state in changed
                ],
            )
        self.touched_ids.update(state.id for state in existing if state.touched and state.id is not None)
        self._write_records(connection, records, pending)

    def _write_records(
        self, connection: Connection, records: dict[str, _Record], pending: dict[str, _Pending]
    ) -> None:
        import_id = self.summary.import_id
        inserts, changes, seen = [], [], []
        for key, item in pending.items():
            data_hash = _hash(item.data)
            record = records.get(key)
            if record is None:
                inserts.append({
                    "customer_id": item.state.id, "source": self.source, "source_key": key,
                    "data": item.data, "data_hash": data_hash, "import_id": import_id, "line": item.line,
                    "first_seen_at": self.now, "last_seen_at": self.now,
                })  # fmt: skip
            elif record.data_hash != data_hash or record.customer_id != item.state.id:
                changes.append({
                    "b_id": record.id, "b_customer_id": item.state.id, "b_data": item.data,
                    "b_data_hash": data_hash, "b_import_id": import_id, "b_line": item.line,
                    "b_last_seen_at": self.now,
                })  # fmt: skip
            else:
                seen.append({"b_id": record.id, "b_last_seen_at": self.now})
        if inserts:
            connection.execute(insert(SOURCE_RECORD), inserts)
        if changes:
            connection.execute(
                update(SOURCE_RECORD)
                .where(SOURCE_RECORD.c.id == bindparam("b_id"))
                .values({name: bindparam(f"b_{name}") for name in
                         ("customer_id", "data", "data_hash", "import_id", "line", "last_seen_at")}),
                changes,
            )  # fmt: skip
        if seen:
            connection.execute(
                update(SOURCE_RECORD)
                .where(SOURCE_RECORD.c.id == bindparam("b_id"))
                .values(last_seen_at=bindparam("b_last_seen_at")),
                seen,
            )


def _prefixed(values: dict[str, Any]) -> dict[str, Any]:
    return {f"b_{name}": value for name, value in values.items()}


def _blank_customer() -> dict[str, Any]:
    values: dict[str, Any] = dict.fromkeys(COLUMNS)
    for channel in CONSENT_CHANNELS:
        values[f"consent_{channel}"] = False
    values["attributes"] = {}
    return values
