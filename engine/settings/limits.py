"""The engine's limits on money, points, whole numbers, dates and durations: one set, for every door.

Every value that comes in, from config.toml, a campaign or budget file, a
``crm`` option, an import file or the HTTP API, is held to the same ranges, so
nothing out of range reaches the database or the arithmetic of a report.
docs/configuration.md ("Limits") is the user's page of this module.

* **one amount of money** (a purchase, refund or order, a unit cost, a price,
  the cost of preparing a campaign, the value of a point): ``0 .. 100,000,000``
  with two decimal places (a purchase or refund at least ``0.01``). Far above
  any one order, and a customer's total of 10,000 of them still fits the
  ``NUMERIC(14, 2)`` money columns;
* **a total of money** (a budget, an allocation, a campaign's budget line, a
  tier's spend): ``0 .. 999,999,999,999.99``, the largest ``NUMERIC(14, 2)``;
* **a quantity**: ``0.001 .. 1,000,000``, three places (``NUMERIC(12, 3)``);
* **points of one command** (earn, redeem, adjust, transfer, a reward, an earn
  rule's fixed points, a limit per transaction or day): up to ``10,000,000``.
  Balances are ``INTEGER`` columns (2,147,483,647): 200 commands at the limit
  still fit;
* **points of a total** (a lifetime limit, a tier's threshold): up to ``1,000,000,000``;
* **points of a score**: ``-1,000,000 .. 1,000,000`` for each indicator and
  for all of a score's indicators together (``customer_score.points`` is ``INTEGER``);
* **a factor** (a multiplier, a rate, a variant's weight, contacts per client): ``0 .. 1,000``;
* **a business date or time** (purchases, the ledger, consent, campaigns,
  budgets, times given to the CLI and the API): ``1970-01-01 .. 2199-12-31``,
  the date as written in its own offset. No system recorded a purchase before
  1970, and 2199 leaves every zone and duration room below the year 9999;
* **a customer's own date** (a birth date, a date attribute): ``1900-01-01 .. 2199-12-31``;
* **a duration** and **a number of days**: ``0 .. 3650`` days (ten years);
  a calendar lag ``0 .. 120`` months;
* **a priority**: ``-1,000,000 .. 1,000,000``; **a count** (a capacity, an
  audience, a threshold, a frequency cap): ``0 .. 1,000,000,000``.

Three ways to use them:

* the constants (:data:`MAX_AMOUNT`...);
* pydantic ``Annotated`` types for models (:data:`Money`, :data:`Points`,
  :data:`Day`...): config sections, campaign and budget files, API requests.
  A yes/no value is never taken for a number;
* plain functions raising :class:`~engine.errors.InvalidValueError`
  (:func:`check_money`, :func:`parse_money`, :func:`check_points`,
  :func:`check_date`, :func:`check_instant`...), for the CLI and the importers.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field

from engine.errors import InvalidValueError

EARLIEST_DATE = dt.date(1900, 1, 1)
"""The earliest date of a customer's own: a birth date, a date attribute."""
EARLIEST_BUSINESS_DATE = dt.date(1970, 1, 1)
"""The earliest date of anything the business did or plans: purchases, the ledger, campaigns, budgets."""
LATEST_DATE = dt.date(2199, 12, 31)
"""The latest date of anything."""

MAX_AMOUNT = Decimal("100000000.00")
"""The largest single amount of money: an order, a refund, a unit cost, a price."""
MAX_TOTAL = Decimal("999999999999.99")
"""The largest total of money: a budget, an allocation, a tier's spend (NUMERIC(14, 2))."""
MONEY_PLACES = 2
MAX_QUANTITY = Decimal("1000000")
QUANTITY_PLACES = 3

MAX_POINTS = 10_000_000
"""The most points one command moves (earn, redeem, adjust, transfer)."""
MAX_POINTS_TOTAL = 1_000_000_000
"""The most points of a total: a lifetime limit, a tier's threshold (balances are 32-bit)."""
MAX_SCORE_POINTS = 1_000_000
"""The most points a score can add up to, either way."""
MAX_FACTOR = Decimal(1000)
"""The largest multiplier, rate, weight or number of contacts per client."""

MAX_DAYS = 3650
"""The longest duration, window or number of days: ten years."""
MAX_DURATION = dt.timedelta(days=MAX_DAYS)
MAX_LAG_MONTHS = 120
"""The longest calendar lag in months: ten years."""

MAX_PRIORITY = 1_000_000
MAX_COUNT = 1_000_000_000
"""The largest count in config: a capacity, an audience, a threshold."""


# --- plain checks --------------------------------------------------------------------------------


def _grouped(value: Decimal | int) -> str:
    return f"{value:,}"


def _decimal(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise InvalidValueError(f"{what} {value!r} is not a number")
    if isinstance(value, str):
        try:
            value = Decimal(value.strip())
        except (InvalidOperation, ValueError):
            raise InvalidValueError(f"{what} {value!r} is not a number (e.g. 2400.00)") from None
    number = Decimal(value)
    if not number.is_finite():
        raise InvalidValueError(f"{what} {value} is not a finite number")
    return number


def _within(number: Decimal, what: str, minimum: Decimal, maximum: Decimal, places: int) -> Decimal:
    if number > maximum:
        raise InvalidValueError(f"{what} {number} is above the limit of {_grouped(maximum)}")
    if number < minimum:
        if minimum > 0:
            raise InvalidValueError(f"{what} must be at least {minimum}, not {number}")
        raise InvalidValueError(f"{what} {number} is below the limit of {_grouped(minimum)}")
    if number != number.quantize(Decimal(1).scaleb(-places)):  # within the limits: no overflow
        raise InvalidValueError(f"{what} {number} has more than {places} decimal places")
    return number


def check_money(
    value: Decimal,
    *,
    what: str = "amount",
    maximum: Decimal = MAX_AMOUNT,
    positive: bool = False,
) -> Decimal:
    """``value`` if it is money within ``0 .. maximum`` (``0.01 ..`` when ``positive``), two places.

    Raises :class:`~engine.errors.InvalidValueError` naming ``what`` otherwise.
    """
    minimum = Decimal("0.01") if positive else Decimal(0)
    return _within(_decimal(value, what), what, minimum, maximum, MONEY_PLACES)


def parse_money(text: str, *, what: str = "amount", positive: bool = True) -> Decimal:
    """An amount written as ``2400`` or ``2400.00`` (a point for decimals): at least 0.01 unless not
    ``positive``, at most 100,000,000, two places; :class:`~engine.errors.InvalidValueError` otherwise."""
    return check_money(_decimal(text, what), what=what, positive=positive)


def check_quantity(value: Decimal, *, what: str = "quantity") -> Decimal:
    """``value`` if it is a quantity within ``0.001 .. 1,000,000``, three places."""
    return _within(_decimal(value, what), what, Decimal("0.001"), MAX_QUANTITY, QUANTITY_PLACES)


def parse_quantity(text: str, *, what: str = "quantity") -> Decimal:
    """A quantity written as ``2`` or ``1.5``, within ``0.001 .. 1,000,000``, three places."""
    return check_quantity(_decimal(text, what), what=what)


def check_integer(value: int, *, what: str, minimum: int, maximum: int) -> int:
    """``value`` if it is a whole number within ``minimum .. maximum`` (a yes/no value is not)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValueError(f"{what} {value!r} is not a whole number")
    if value > maximum:
        raise InvalidValueError(f"{what} {_grouped(value)} is above the limit of {_grouped(maximum)}")
    if value < minimum:
        if minimum > 0:
            raise InvalidValueError(f"{what} must be at least {_grouped(minimum)}, not {_grouped(value)}")
        raise InvalidValueError(f"{what} {_grouped(value)} is below the limit of {_grouped(minimum)}")
    return value


def check_points(value: int, *, what: str = "points", minimum: int = 1, maximum: int = MAX_POINTS) -> int:
    """``value`` if it is whole points within ``minimum .. maximum`` (default ``1 .. 10,000,000``)."""
    return check_integer(value, what=what, minimum=minimum, maximum=maximum)


def parse_integer(text: str, *, what: str, minimum: int, maximum: int) -> int:
    """A whole number written in digits (``-250``, ``1000``), within ``minimum .. maximum``."""
    stripped = text.strip()
    digits = stripped[1:] if stripped[:1] in "+-" else stripped
    if not digits.isascii() or not digits.isdigit() or len(digits) > 30:
        raise InvalidValueError(f"{what} {text!r} is not a whole number")
    return check_integer(int(stripped), what=what, minimum=minimum, maximum=maximum)


def parse_points(text: str, *, what: str = "points", minimum: int = 1, maximum: int = MAX_POINTS) -> int:
    """Points written in digits, within ``minimum .. maximum`` (default ``1 .. 10,000,000``)."""
    return parse_integer(text, what=what, minimum=minimum, maximum=maximum)


def check_date(value: dt.date, *, what: str = "date", earliest: dt.date = EARLIEST_BUSINESS_DATE) -> dt.date:
    """``value`` if its date lies within ``earliest .. 2199-12-31`` (a datetime: the date as written)."""
    day = value.date() if isinstance(value, dt.datetime) else value
    if not earliest <= day <= LATEST_DATE:
        raise InvalidValueError(
            f"{what} {value.isoformat()} is outside {earliest.isoformat()} .. {LATEST_DATE.isoformat()}"
        )
    return value


def check_instant(value: dt.datetime, *, what: str = "time") -> dt.datetime:
    """``value`` if its date, as written in its own offset, lies within 1970-01-01 .. 2199-12-31."""
    check_date(value, what=what, earliest=EARLIEST_BUSINESS_DATE)
    return value


def check_duration(value: dt.timedelta, *, what: str = "duration") -> dt.timedelta:
    """``value`` if it lies within ``0 .. 3650 days``."""
    if value < dt.timedelta(0):
        raise InvalidValueError(f"{what} must not be negative")
    if value > MAX_DURATION:
        raise InvalidValueError(f"{what} is longer than {MAX_DAYS} days (ten years)")
    return value


# --- pydantic types ------------------------------------------------------------------------------


def _not_a_yes_no(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"{str(value).lower()} is a yes/no value, not a number")
    return value


_NUMBER = BeforeValidator(_not_a_yes_no)


def _not_a_number(value: Any) -> Any:
    if isinstance(value, bool | int | float | Decimal):
        raise ValueError(f"{value!r} is not a date or time (e.g. 2027-03-01)")
    return value


_NO_NUMBER = BeforeValidator(_not_a_number)


def _business_date(value: dt.date) -> dt.date:
    return check_date(value)


# pydantic never reads a yes/no value as a Decimal; whole numbers need the check (_NUMBER)
Money = Annotated[Decimal, Field(ge=0, le=MAX_AMOUNT)]
"""One amount of money, ``0 .. 100,000,000``."""
Total = Annotated[Decimal, Field(ge=0, le=MAX_TOTAL)]
"""A total of money, ``0 .. 999,999,999,999.99``."""
Factor = Annotated[Decimal, Field(ge=0, le=MAX_FACTOR)]
"""A multiplier, rate, weight or number of contacts per client, ``0 .. 1,000``."""
Points = Annotated[int, Field(ge=0, le=MAX_POINTS), _NUMBER]
"""Points of one command, ``0 .. 10,000,000``."""
PointsTotal = Annotated[int, Field(ge=0, le=MAX_POINTS_TOTAL), _NUMBER]
"""Points of a total, ``0 .. 1,000,000,000``."""
ScorePoints = Annotated[int, Field(ge=-MAX_SCORE_POINTS, le=MAX_SCORE_POINTS), _NUMBER]
"""Points of a score's indicator, ``-1,000,000 .. 1,000,000``."""
Days = Annotated[int, Field(ge=0, le=MAX_DAYS), _NUMBER]
"""A number of days, ``0 .. 3650``."""
Priority = Annotated[int, Field(ge=-MAX_PRIORITY, le=MAX_PRIORITY), _NUMBER]
"""A priority, ``-1,000,000 .. 1,000,000``."""
Count = Annotated[int, Field(ge=0, le=MAX_COUNT), _NUMBER]
"""A count, ``0 .. 1,000,000,000``."""
Day = Annotated[dt.date, _NO_NUMBER, AfterValidator(_business_date)]
"""A business date, ``1970-01-01 .. 2199-12-31`` (a number is no date, not seconds since 1970)."""
Moment = Annotated[dt.datetime, _NO_NUMBER, AfterValidator(check_instant)]
"""A business time, with or without an offset; its date as written ``1970-01-01 .. 2199-12-31``."""
