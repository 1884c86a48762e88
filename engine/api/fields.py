"""Field types of the API's requests: texts, money, instants and free JSON the database will always accept.

Every bound here keeps bad input a 422 rather than a database error, and the
numbers and dates are the engine's limits (:mod:`engine.settings.limits`), the
same as config, the CLI and the importers hold: texts without control
characters and no longer than their columns, money as a decimal (a JSON string
like ``"2400.00"``, or a number) from 0.01 to 100,000,000 with at most two
places, points as JSON integers from 1 to 10,000,000 (``true`` is no number),
instants as ISO 8601 text with an offset (a naive time or a bare number such as
``0`` is refused) dated 1970-01-01 .. 2199-12-31, free JSON without NUL
characters, lone surrogates or non-finite numbers.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, Strict, StringConstraints

from engine.settings import MAX_AMOUNT, MAX_POINTS, MAX_QUANTITY, check_instant

PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
NAME = r"^[a-z0-9_.-]+$"

Order = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=PRINTABLE),
    Field(description="the order (POS transaction) id", examples=["POS-2027-000123"]),
]
Label = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=PRINTABLE)]
ShortName = Annotated[str, StringConstraints(min_length=1, max_length=50, pattern=PRINTABLE)]
EventName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100, pattern=NAME),
    Field(description="a-z, 0-9, _ . -", examples=["cart_abandoned"]),
]


_ISO_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _iso_text(value: Any) -> Any:
    """Only ISO 8601 text is a time: a number (``0``, ``1700000000``) is not read as seconds since 1970."""
    if isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str) or not _ISO_INSTANT.match(value):
        raise ValueError("an ISO 8601 time with an offset is expected, e.g. 2027-03-01T12:30:00+03:00")
    return value


def _utc(value: dt.datetime) -> dt.datetime:
    return check_instant(value).astimezone(dt.UTC)


Instant = Annotated[
    AwareDatetime,
    BeforeValidator(_iso_text),
    AfterValidator(_utc),
    Field(
        description="ISO-8601 with an offset, e.g. 2027-03-01T12:30:00+03:00",
        examples=["2027-03-01T12:30:00+03:00"],
    ),
]
Amount = Annotated[
    Decimal,
    Field(gt=0, le=MAX_AMOUNT, max_digits=11, decimal_places=2, description="money, as a decimal string"),
]
Quantity = Annotated[Decimal, Field(gt=0, le=MAX_QUANTITY, max_digits=10, decimal_places=3)]
Points = Annotated[int, Strict(), Field(ge=1, le=MAX_POINTS, description="whole points (a JSON integer)")]

CustomerRef = Annotated[
    str,
    StringConstraints(min_length=1, max_length=320, pattern=PRINTABLE),
    Field(
        description="the customer: external id, email, phone (+7...) or #id",
        examples=["C-1001"],
    ),
]


def _json_safe(value: Any, depth: int = 0) -> None:
    if depth > 20:
        raise ValueError("nested more than 20 levels")
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("a text with a NUL character")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError("a text that is not valid Unicode") from exc
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError("a number that is not finite")
    elif isinstance(value, dict):
        for key, item in value.items():
            _json_safe(key, depth + 1)
            _json_safe(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _json_safe(item, depth + 1)


def _checked_json(value: dict[str, Any]) -> dict[str, Any]:
    _json_safe(value)
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(_checked_json)]


__all__ = [
    "Amount",
    "CustomerRef",
    "EventName",
    "Instant",
    "JsonObject",
    "Label",
    "Order",
    "Points",
    "Quantity",
    "ShortName",
]
