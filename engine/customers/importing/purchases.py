"""Purchase import: resolve customers and refunds in bulk, insert in chunks.

Each row needs an external id, a customer reference, a time and an amount.
The customer is referenced by external id (``customer.external_id``, else a
source record key of any source naming one customer), email or phone, in
separate columns or one ``customer`` column (an ``@`` makes it an email,
otherwise an external id, else a phone number), matched as
:mod:`engine.customers.importing.references` does. A refund (``refund_of`` = the
external id of an earlier purchase, in the database or earlier in the file) is
stored with a negative amount whatever the sign in the file; it inherits the
original's customer when it names none, and all refunds of a purchase together
may not exceed it.

Outcomes: ``inserted``; ``unchanged`` (the external id exists with the same
content); ``rejected`` (anything else, including an existing external id with
different content). Purchases are never updated nor merged.

Per chunk of 5,000 rows: a handful of bulk queries (customers by each kind of
reference, existing purchases by external id, refunded sums), then one
``executemany`` for purchases and one for refunds.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select
from sqlalchemy.orm import aliased

from engine.customers.importing.columns import PURCHASE_FIELDS
from engine.customers.importing.normalise import clean_text, is_empty, parse_email, parse_phone, phone_region
from engine.customers.importing.options import ImportOptions
from engine.customers.importing.pipeline import (
    PreparedImport,
    Rejected,
    prepare_import,
    read_chunk,
    run_import,
    wrong_width,
)
from engine.customers.importing.reader import Cell, SourceRow
from engine.customers.importing.references import (
    CustomerReference,
    References,
    customer_of,
    generic_reference,
    resolve_references,
    row_reference,
)
from engine.customers.importing.summary import ImportSummary
from engine.errors import FieldError, ImportFileError
from engine.loyalty.batch import AccrualResult, accrue_purchases, refund_imported
from engine.loyalty.programme import Programme
from engine.models import PURCHASE
from engine.settings import MAX_AMOUNT, MAX_QUANTITY

REFERENCES = ("customer", "customer_external_id", "customer_email", "customer_phone")
REQUIRED = ("external_id", "ordered_at", "amount")
CURRENCY_ALIASES = {
    "руб": "RUB", "руб.": "RUB", "р.": "RUB", "р": "RUB", "₽": "RUB", "rur": "RUB", "рубль": "RUB",
    "рубли": "RUB", "$": "USD", "долл": "USD", "usd$": "USD", "€": "EUR", "евро": "EUR",
    "тенге": "KZT", "₸": "KZT",
}  # fmt: skip
CENT = Decimal("0.01")
MILLI = Decimal("0.001")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


def import_purchases(
    engine: Engine,
    path: Path,
    *,
    source: str = "purchases",
    options: ImportOptions = ImportOptions(),
    currency: str = "RUB",
    timezone: str = "Europe/Moscow",
    default_region: str = "RU",
    now: dt.datetime | None = None,
    programmes: Mapping[str, Programme] | None = None,
) -> PurchaseImportSummary:
    """Import the purchases and refunds of a CSV or XLSX file; return what happened.

    ``currency`` is used where a row names none; ``default_region`` reads
    customer phone numbers written without ``+country``; ``timezone`` reads times
    without an offset (a bare date is its midnight there). Raises
    :class:`~engine.errors.ImportFileError` (nothing imported) when the file
    cannot be read or lacks a required column; bad rows go to the rejects file.
    Once the import has committed, each of ``programmes`` (loyalty) gives its
    points for the new purchases and takes them back for the new refunds.

    Example::

        summary = import_purchases(engine, Path("orders.csv"), currency="RUB")
    """
    prepared = prepare_import(
        path,
        kind="purchases",
        source=source,
        options=options,
        fields=PURCHASE_FIELDS,
        attributes=None,
        date_fields={"ordered_at"},
        number_fields={"amount", "quantity", "margin"},
        timezone=timezone,
        now=now,
    )
    missing = [name for name in REQUIRED if name not in prepared.mapping.fields]
    if not any(name in prepared.mapping.fields for name in REFERENCES):
        missing.append("a customer reference (" + " or ".join(REFERENCES) + ")")
    if missing:
        raise ImportFileError(str(path), "missing required columns: " + ", ".join(missing))
    try:
        default_currency = _currency(currency)
    except FieldError as exc:
        raise ImportFileError(str(path), f"default currency: {exc}") from exc
    importer = _PurchaseImport(prepared, source, default_currency, phone_region(default_region))
    summary = run_import(engine, prepared, importer.process_chunk)
    return _with_loyalty(engine, summary, programmes or {}, now)


def _currency(cell: Cell) -> str:
    text = clean_text(cell)
    code = CURRENCY_ALIASES.get(text.lower(), text.upper())
    if not _CURRENCY.match(code):
        raise FieldError(f"unknown currency {text!r} (expected an ISO 4217 code like RUB)")
    return code


def _fixed(value: Decimal, step: Decimal, largest: Decimal) -> Decimal:
    """``value`` rounded to ``step`` if it is finite, within ``-largest .. largest``, with no more places."""
    if not value.is_finite():
        raise FieldError(f"{value} is not a finite number")
    if abs(value) > largest:
        raise FieldError(f"{value} is more than the largest allowed, {largest:,}")
    rounded = value.quantize(step)
    if abs(rounded - value) > Decimal("0.000001"):
        raise FieldError(f"{value} has more than {-step.as_tuple().exponent} decimal places")  # type: ignore[operator]
    return rounded


@dataclass
class _Row:
    """One parsed purchase row, customer not yet resolved."""

    source: SourceRow
    external_id: str
    ordered_at: dt.datetime
    amount: Decimal
    currency: str
    category: str | None
    sku: str | None
    quantity: Decimal
    margin: Decimal | None
    refund_of: str | None
    customer: CustomerReference
    customer_id: int | None = None

    def content(self, refund_of: str | None) -> tuple[Any, ...]:
        return (
            self.customer_id, self.ordered_at, self.amount, self.currency, self.category, self.sku,
            self.quantity, self.margin, refund_of,
        )  # fmt: skip


@dataclass
class _Known:
    """A purchase that exists (in the database or accepted earlier in this import)."""

    id: int | None
    customer_id: int
    amount: Decimal
    currency: str
    refund_of: str | None
    content: tuple[Any, ...]
    line: int | None = None


class _PurchaseImport:
    """The state of one purchase import across its chunks."""

    def __init__(self, prepared: PreparedImport, source: str, currency: str, region: str) -> None:
        self.prepared = prepared
        self.summary = prepared.summary
        self.source = source
        self.currency = currency
        self.region = region
        dates, numbers = prepared.dates, prepared.numbers
        self.parsers: dict[str, Callable[[Cell], Any]] = {
            "external_id": lambda cell: clean_text(cell, 200),
            "refund_of": lambda cell: clean_text(cell, 200),
            "customer_external_id": lambda cell: clean_text(cell, 200),
            "customer_email": parse_email,
            "customer_phone": lambda cell: parse_phone(cell, self.region),
            "ordered_at": dates.datetime,
            "amount": lambda cell: _fixed(numbers.decimal(cell), CENT, MAX_AMOUNT),
            "margin": lambda cell: _fixed(numbers.decimal(cell), CENT, MAX_AMOUNT),
            "quantity": lambda cell: _fixed(numbers.decimal(cell), MILLI, MAX_QUANTITY),
            "currency": _currency,
            "category": lambda cell: clean_text(cell, 200),
            "sku": lambda cell: clean_text(cell, 200),
        }

    # --- reading -------------------------------------------------------------------------------

    def _read(self, row: SourceRow) -> tuple[_Row | None, list[str]]:
        width_problem = wrong_width(row, self.prepared.width)
        if width_problem:
            return None, [width_problem]
        columns = self.prepared.mapping.fields
        cells = {name: row.cells[index] for name, index in columns.items() if not is_empty(row.cells[index])}
        values: dict[str, Any] = {}
        reasons: list[str] = []
        for name, cell in cells.items():
            if name == "customer":
                continue
            try:
                values[name] = self.parsers[name](cell)
            except FieldError as exc:
                reasons.append(f"{name}: {exc}")
        if "customer" in cells:
            try:
                values["customer"] = generic_reference(cells["customer"], self.region)
            except FieldError as exc:
                reasons.append(f"customer: {exc}")
        for name in REQUIRED:
            if name not in cells:
                reasons.append(f"{name}: missing")
        if not any(name in cells for name in REFERENCES) and "refund_of" not in values:
            reasons.append("customer: missing (give the customer's external id, email or phone)")
        quantity = values.get("quantity", Decimal(1))
        if "refund_of" in values:
            quantity = abs(quantity)
        if quantity <= 0:
            reasons.append(f"quantity: must be positive, not {quantity}")
        amount = values.get("amount")
        if amount is not None and amount < 0 and "refund_of" not in values:
            reasons.append("amount: negative amount without refund_of (a refund must name the purchase)")
        if reasons:
            return None, reasons
        margin = values.get("margin")
        if "refund_of" in values:
            amount = -abs(values["amount"])
            margin = -abs(margin) if margin is not None else None
        return _Row(
            source=row,
            external_id=values["external_id"],
            ordered_at=values["ordered_at"],
            amount=values["amount"] if amount is None else amount,
            currency=values.get("currency", self.currency),
            category=values.get("category"),
            sku=values.get("sku"),
            quantity=quantity,
            margin=margin,
            refund_of=values.get("refund_of"),
            customer=row_reference(values),
        ), []

    # --- a chunk -------------------------------------------------------------------------------

    def process_chunk(self, connection: Connection, rows: list[SourceRow]) -> None:
        read_chunk(
            rows,
            self._read,
            self.summary,
            self.prepared.rejects,
            lambda parsed, rejected: self._process(connection, parsed, rejected),
        )

    def _process(self, connection: Connection, parsed: list[_Row], rejected: Rejected) -> None:
        customers = resolve_references(connection, (item.customer for item in parsed))
        wanted = {p.external_id for p in parsed} | {p.refund_of for p in parsed if p.refund_of}
        known = self._load_purchases(connection, wanted)
        refunded = self._refunded(connection, known)
        accepted: dict[str, _Known] = {}
        purchases: list[_Row] = []
        refunds: list[_Row] = []
        for item in parsed:
            verdict = self._check(item, customers, known, accepted, refunded)
            if verdict is None:
                self.summary.unchanged += 1
            elif verdict:
                rejected.append((item.source, verdict))
            else:
                (refunds if item.refund_of else purchases).append(item)
        self._insert(connection, purchases, refunds, known, accepted)

    def _check(
        self,
        item: _Row,
        customers: References,
        known: dict[str, _Known],
        accepted: dict[str, _Known],
        refunded: dict[str, Decimal],
    ) -> list[str] | None:
        """Reasons to reject ``item``; [] to insert it; None when it exists unchanged."""
        original = None
        if item.refund_of:
            original = accepted.get(item.refund_of) or known.get(item.refund_of)
        customer_id, problem = customer_of(item.customer, customers)
        if problem:
            return [problem]
        if customer_id is None and original is not None:
            customer_id = original.customer_id
        if customer_id is None:
            return [_unknown_original(item.refund_of)]
        item.customer_id = customer_id
        content = item.content(item.refund_of)
        earlier = accepted.get(item.external_id) or known.get(item.external_id)
        if earlier is not None:
            if earlier.content == content:
                return None
            where = f"line {earlier.line}" if earlier.line else "the database"
            return [f"external_id: purchase {item.external_id!r} already exists ({where}) with different "
                    f"content ({_difference(earlier.content, content)})"]  # fmt: skip
        if item.refund_of:
            if original is None:
                return [_unknown_original(item.refund_of)]
            if original.refund_of:
                return [f"refund_of: {item.refund_of!r} is itself a refund"]
            if original.customer_id != customer_id:
                return [f"refund_of: purchase {item.refund_of!r} belongs to another customer"]
            if original.currency != item.currency:
                return [f"currency: {item.currency} differs from the refunded purchase's {original.currency}"]
            left = original.amount + refunded.get(item.refund_of, Decimal(0))
            if -item.amount > left:
                return [f"amount: refund of {-item.amount} exceeds what is left of purchase "
                        f"{item.refund_of!r} ({left} of {original.amount})"]  # fmt: skip
            refunded[item.refund_of] = refunded.get(item.refund_of, Decimal(0)) + item.amount
        accepted[item.external_id] = _Known(
            None, customer_id, item.amount, item.currency, item.refund_of, content, item.source.line
        )
        return []

    def _load_purchases(self, connection: Connection, external_ids: set[str]) -> dict[str, _Known]:
        original = aliased(PURCHASE)
        query = (
            select(
                PURCHASE.c.id, PURCHASE.c.external_id, PURCHASE.c.customer_id, PURCHASE.c.ordered_at,
                PURCHASE.c.amount, PURCHASE.c.currency, PURCHASE.c.category, PURCHASE.c.sku,
                PURCHASE.c.quantity, PURCHASE.c.margin, original.c.external_id.label("refund_of"),
            )
            .outerjoin(original, original.c.id == PURCHASE.c.refund_of_id)
            .where(PURCHASE.c.external_id.in_(sorted(external_ids)))
        )  # fmt: skip
        known: dict[str, _Known] = {}
        for row in connection.execute(query):
            content = (
                row.customer_id, row.ordered_at, row.amount, row.currency, row.category, row.sku,
                row.quantity, row.margin, row.refund_of,
            )  # fmt: skip
            known[row.external_id] = _Known(
                row.id, row.customer_id, row.amount, row.currency, row.refund_of, content
            )
        return known

    def _refunded(self, connection: Connection, known: dict[str, _Known]) -> dict[str, Decimal]:
        """External id of a known purchase -> the (negative) sum of its refunds so far."""
        ids = {item.id: key for key, item in known.items() if item.id is not None and not item.refund_of}
        if not ids:
            return {}
        query = (
            select(PURCHASE.c.refund_of_id, func.sum(PURCHASE.c.amount))
            .where(PURCHASE.c.refund_of_id.in_(sorted(ids)))
            .group_by(PURCHASE.c.refund_of_id)
        )
        return {ids[refund_of_id]: Decimal(total) for refund_of_id, total in connection.execute(query)}

    def _insert(
        self,
        connection: Connection,
        purchases: list[_Row],
        refunds: list[_Row],
        known: dict[str, _Known],
        accepted: dict[str, _Known],
    ) -> None:
        import_id, now = self.summary.import_id, self.prepared.now

        def values(item: _Row, refund_of_id: int | None) -> dict[str, Any]:
            return {
                "external_id": item.external_id, "customer_id": item.customer_id,
                "ordered_at": item.ordered_at, "amount": item.amount, "currency": item.currency,
                "category": item.category, "sku": item.sku, "quantity": item.quantity,
                "margin": item.margin, "refund_of_id": refund_of_id, "source": self.source,
                "import_id": import_id, "created_at": now,
            }  # fmt: skip

        if purchases:
            connection.execute(insert(PURCHASE), [values(item, None) for item in purchases])
        if refunds:
            ids = {key: item.id for key, item in known.items() if item.id is not None}
            wanted = sorted(
                {item.refund_of for item in refunds if item.refund_of and item.refund_of not in ids}
            )
            if wanted:
                query = select(PURCHASE.c.external_id, PURCHASE.c.id).where(
                    PURCHASE.c.external_id.in_(wanted)
                )
                ids.update({key: int(value) for key, value in connection.execute(query)})
            connection.execute(
                insert(PURCHASE), [values(item, ids[item.refund_of]) for item in refunds if item.refund_of]
            )
        self.summary.inserted += len(purchases) + len(refunds)


CONTENT = (
    "customer",
    "ordered_at",
    "amount",
    "currency",
    "category",
    "sku",
    "quantity",
    "margin",
    "refund_of",
)


def _difference(before: tuple[Any, ...], after: tuple[Any, ...]) -> str:
    pairs = zip(CONTENT, before, after, strict=True)
    return ", ".join(f"{name} {old} -> {new}" for name, old, new in pairs if old != new)


def _unknown_original(refund_of: str | None) -> str:
    return f"refund_of: unknown purchase {refund_of!r} (not in the database nor earlier in the file)"


# --- loyalty: after the import has committed, points for what it brought -------------------------


@dataclass
class PurchaseImportSummary(ImportSummary):
    """A purchase import, with what each loyalty programme did after it (by programme name)."""

    loyalty: dict[str, AccrualResult] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready values, with ``loyalty`` per programme."""
        data = super().as_dict()
        data["loyalty"] = {name: result.as_dict() for name, result in self.loyalty.items()}
        return data

    def describe(self) -> list[str]:
        """The import's lines, then one line per programme."""
        return [*super().describe(), *(result.describe() for result in self.loyalty.values())]


def _with_loyalty(
    engine: Engine, summary: ImportSummary, programmes: Mapping[str, Programme], now: dt.datetime | None
) -> PurchaseImportSummary:
    """Accrue points for the purchases (every programme), hand the refunds to the ledger."""
    imported = {item.name: getattr(summary, item.name) for item in fields(ImportSummary)}
    result = PurchaseImportSummary(**imported)
    for name, programme in programmes.items():
        accrual = accrue_purchases(engine, programme, now=now)
        if accrual.refunds:
            accrual.refunds_applied = refund_imported(engine, programme, accrual.refunds, now)
        result.loyalty[name] = accrual
    return result
