"""The fields rules can name, and how they read in SQL and in Python.

Two catalogues:

* the **customer catalogue** (segments, scores): customer columns, built-in
  metrics, config-defined metrics (bare names such as ``shoes_orders_90d``),
  scores (``score.churn``), custom attributes (``attr.vip``) and segments;
* the **purchase catalogue** (filters of config-defined metrics): one purchase.

:class:`CustomerScope` implements the rule compiler's ``SqlBindings``: it hands
out column expressions and remembers which outer joins they need, so a rule
compiles into one ``SELECT customer.id FROM customer LEFT JOIN ... WHERE ...``.
:func:`customer_record` reads one customer through the very same expressions,
so a rule evaluated in Python sees exactly what SQL sees.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Connection,
    FromClause,
    Integer,
    Numeric,
    Select,
    and_,
    exists,
    func,
    literal,
    select,
    type_coerce,
)

from engine.models import CUSTOMER, MEMBERSHIP, METRIC_VALUE, METRICS, PURCHASE, SCORE
from engine.rules.bindings import DictRecord
from engine.rules.catalogue import Catalogue
from engine.rules.types import RuleType
from engine.sql import JsonDate

#: customer columns usable in rules, by rule name -> (column name, type)
CUSTOMER_FIELDS: dict[str, tuple[str, RuleType]] = {
    "customer_id": ("id", RuleType.INT),
    "external_id": ("external_id", RuleType.STR),
    "first_name": ("first_name", RuleType.STR),
    "last_name": ("last_name", RuleType.STR),
    "middle_name": ("middle_name", RuleType.STR),
    "company": ("company", RuleType.STR),
    "email": ("email", RuleType.STR),
    "phone": ("phone", RuleType.STR),
    "address": ("address", RuleType.STR),
    "city": ("city", RuleType.STR),
    "country": ("country", RuleType.STR),
    "timezone": ("timezone", RuleType.STR),
    "birth_date": ("birth_date", RuleType.DATE),
    "language": ("language", RuleType.STR),
    "curator": ("curator", RuleType.STR),
    "consent_email": ("consent_email", RuleType.BOOL),
    "consent_email_at": ("consent_email_at", RuleType.DATETIME),
    "consent_sms": ("consent_sms", RuleType.BOOL),
    "consent_sms_at": ("consent_sms_at", RuleType.DATETIME),
    "consent_call": ("consent_call", RuleType.BOOL),
    "consent_call_at": ("consent_call_at", RuleType.DATETIME),
    "consent_post": ("consent_post", RuleType.BOOL),
    "consent_post_at": ("consent_post_at", RuleType.DATETIME),
    "declared_stage": ("lifecycle_stage", RuleType.STR),
    "verified_at": ("verified_at", RuleType.DATETIME),
    "source": ("source", RuleType.STR),
    "created_at": ("created_at", RuleType.DATETIME),
}

#: built-in metrics (table customer_metrics), by rule name -> (column name, type)
METRIC_FIELDS: dict[str, tuple[str, RuleType]] = {
    "orders_count": ("orders_count", RuleType.INT),
    "refunds_count": ("refunds_count", RuleType.INT),
    "total_spent": ("total_spent", RuleType.NUMBER),
    "margin_total": ("margin_total", RuleType.NUMBER),
    "first_order_at": ("first_order_at", RuleType.DATETIME),
    "last_order_at": ("last_order_at", RuleType.DATETIME),
    "days_since_last_order": ("days_since_last_order", RuleType.INT),
    "avg_order_value": ("avg_order_value", RuleType.NUMBER),
    "orders_in_window": ("orders_in_window", RuleType.INT),
    "recency_score": ("recency_score", RuleType.INT),
    "frequency_score": ("frequency_score", RuleType.INT),
    "monetary_score": ("monetary_score", RuleType.INT),
    "rfm": ("rfm", RuleType.STR),
    "abc_class": ("abc_class", RuleType.STR),
    "lifecycle_stage": ("lifecycle_stage", RuleType.STR),
}

#: purchase columns usable in metric filters
PURCHASE_FIELDS: dict[str, tuple[str, RuleType]] = {
    "amount": ("amount", RuleType.NUMBER),
    "category": ("category", RuleType.STR),
    "sku": ("sku", RuleType.STR),
    "quantity": ("quantity", RuleType.NUMBER),
    "margin": ("margin", RuleType.NUMBER),
    "currency": ("currency", RuleType.STR),
    "ordered_at": ("ordered_at", RuleType.DATETIME),
    "source": ("source", RuleType.STR),
}

ATTRIBUTE_TYPES: dict[str, RuleType] = {
    "str": RuleType.STR,
    "int": RuleType.INT,
    "number": RuleType.NUMBER,
    "bool": RuleType.BOOL,
    "date": RuleType.DATE,
}


def attribute_expression(name: str, kind: str) -> ColumnElement[Any]:
    """The SQL reading custom attribute ``name`` of type ``kind`` from ``customer.attributes``."""
    item = CUSTOMER.c.attributes[name]
    if kind == "int":
        return item.as_integer()
    if kind == "number":
        return type_coerce(item.as_float(), Numeric(18, 4, asdecimal=True))
    if kind == "bool":
        return item.as_boolean()
    if kind == "date":
        return JsonDate(item.as_string())
    return item.as_string()


@dataclass(frozen=True)
class CustomerFields:
    """What the customer catalogue knows beyond the built-in columns."""

    custom_metrics: Mapping[str, str] = field(default_factory=dict)  # name -> aggregate
    scores: Collection[str] = ()
    attributes: Mapping[str, str] = field(default_factory=dict)  # name -> attribute type
    segments: Collection[str] = ()

    def catalogue(self, *, with_scores: bool = True, with_segments: bool = True) -> Catalogue:
        """The rule catalogue; scores may not name scores, nor segments."""
        fields: dict[str, RuleType] = {}
        fields.update({name: kind for name, (_, kind) in CUSTOMER_FIELDS.items()})
        fields.update({name: kind for name, (_, kind) in METRIC_FIELDS.items()})
        for name, aggregate in self.custom_metrics.items():
            fields[name] = RuleType.INT if aggregate == "count" else RuleType.NUMBER
        if with_scores:
            fields.update({f"score.{name}": RuleType.INT for name in self.scores})
        fields.update({f"attr.{name}": ATTRIBUTE_TYPES[kind] for name, kind in self.attributes.items()})
        return Catalogue(fields, segments=list(self.segments) if with_segments else [])


class CustomerScope:
    """``SqlBindings`` over the customer table and everything joined to it.

    Each field used adds the outer join it needs, once; :meth:`from_clause`
    returns the joined FROM for the query.
    """

    def __init__(self, fields: CustomerFields, today: dt.date) -> None:
        self.fields = fields
        self.today = today
        self._joins: dict[str, tuple[FromClause, ColumnElement[bool]]] = {}

    def _join(self, key: str, table: FromClause, on: ColumnElement[bool]) -> FromClause:
        if key not in self._joins:
            self._joins[key] = (table, on)
        return self._joins[key][0]

    def _metrics(self) -> FromClause:
        return self._join("metrics", METRICS, METRICS.c.customer_id == CUSTOMER.c.id)

    def field(self, name: str) -> ColumnElement[Any]:
        """The SQL expression of the rule field ``name``."""
        if name in CUSTOMER_FIELDS:
            return CUSTOMER.c[CUSTOMER_FIELDS[name][0]]
        if name in METRIC_FIELDS:
            return self._metrics().c[METRIC_FIELDS[name][0]]
        if name in self.fields.custom_metrics:
            alias = METRIC_VALUE.alias(f"metric_{name}")
            table = self._join(
                f"metric:{name}",
                alias,
                and_(alias.c.customer_id == CUSTOMER.c.id, alias.c.name == literal(name)),
            )
            value: ColumnElement[Any] = table.c.value
            if self.fields.custom_metrics[name] in ("count", "sum"):
                value = func.coalesce(value, 0)
            kind = Integer() if self.fields.custom_metrics[name] == "count" else Numeric(18, 4)
            return type_coerce(value, kind)
        if name.startswith("score."):
            score = name.removeprefix("score.")
            alias = SCORE.alias(f"score_{score}")
            table = self._join(
                name, alias, and_(alias.c.customer_id == CUSTOMER.c.id, alias.c.name == literal(score))
            )
            return type_coerce(func.coalesce(table.c.points, 0), Integer())
        if name.startswith("attr."):
            attribute = name.removeprefix("attr.")
            return attribute_expression(attribute, self.fields.attributes[attribute])
        raise KeyError(name)

    def in_segment(self, name: str) -> ColumnElement[bool]:
        """True for current members of segment ``name``."""
        return exists().where(
            MEMBERSHIP.c.segment == name,
            MEMBERSHIP.c.customer_id == CUSTOMER.c.id,
            MEMBERSHIP.c.left_at.is_(None),
        )

    def row_key(self) -> ColumnElement[int]:
        """The stable key of a customer (its id), used by ``bucket()``."""
        return CUSTOMER.c.id

    def from_clause(self) -> FromClause:
        """``customer`` with every outer join the fields handed out need."""
        joined: FromClause = CUSTOMER
        for table, on in self._joins.values():
            joined = joined.outerjoin(table, on)
        return joined

    def select_ids(self, where: ColumnElement[bool]) -> Select[Any]:
        """``SELECT customer.id FROM <joins> WHERE where``."""
        return select(CUSTOMER.c.id).select_from(self.from_clause()).where(where)


def customer_record(
    connection: Connection,
    customer_id: int,
    fields: CustomerFields,
    today: dt.date,
    names: Iterable[str] | None = None,
) -> DictRecord:
    """One customer as a rule ``Record``, read through the same SQL as the rules use."""
    scope = CustomerScope(fields, today)
    catalogue = fields.catalogue()
    wanted = list(names) if names is not None else list(catalogue.fields)
    columns = [scope.field(name).label(f"f{n}") for n, name in enumerate(wanted)]
    row = connection.execute(
        select(*columns).select_from(scope.from_clause()).where(CUSTOMER.c.id == customer_id)
    ).one()
    values = {name: _python_value(row[n], catalogue.fields[name]) for n, name in enumerate(wanted)}
    segments = set(
        connection.execute(
            select(MEMBERSHIP.c.segment).where(
                MEMBERSHIP.c.customer_id == customer_id, MEMBERSHIP.c.left_at.is_(None)
            )
        ).scalars()
    )
    return DictRecord(fields=values, segments=segments, row_key=customer_id, today=today)


def _python_value(value: Any, kind: RuleType) -> Any:
    """Normalise a value read from the database to the rule type's Python type."""
    if value is None:
        return None
    if kind is RuleType.BOOL:
        return bool(value)
    if kind is RuleType.INT:
        return int(value)
    if kind is RuleType.NUMBER:
        return value if isinstance(value, Decimal) else Decimal(str(value))
    if kind is RuleType.DATE and isinstance(value, str):
        return dt.date.fromisoformat(value[:10])
    if kind is RuleType.DATETIME and isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def purchase_catalogue() -> Catalogue:
    """The fields a custom metric's ``where`` may name: one purchase."""
    fields = {name: kind for name, (_, kind) in PURCHASE_FIELDS.items()}
    fields["is_refund"] = RuleType.BOOL
    return Catalogue(fields, segments=[])


class PurchaseScope:
    """``SqlBindings`` over the purchase table (custom metric filters)."""

    def __init__(self, today: dt.date) -> None:
        self.today = today

    def field(self, name: str) -> ColumnElement[Any]:
        """The SQL expression of purchase field ``name``."""
        if name == "is_refund":
            return type_coerce(PURCHASE.c.refund_of_id.is_not(None), Boolean())
        return PURCHASE.c[PURCHASE_FIELDS[name][0]]

    def in_segment(self, name: str) -> ColumnElement[bool]:
        """Purchase filters cannot name segments (refused when the config is checked)."""
        raise KeyError(name)

    def row_key(self) -> ColumnElement[int]:
        """The purchase id."""
        return PURCHASE.c.id


__all__ = [
    "CUSTOMER",
    "METRICS",
    "PURCHASE",
    "CustomerFields",
    "CustomerScope",
    "PurchaseScope",
    "customer_record",
    "purchase_catalogue",
]
