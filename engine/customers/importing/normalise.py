"""Parsing and normalising one cell: text, email, phone, country, time zone, dates, numbers.

Every parser takes a non-empty cell and returns the normalised value or raises
:class:`FieldError` with a reason that quotes the value; the caller prefixes the
field name. Empty cells never reach a parser: an empty cell means "not given".
Dates are held to the engine's limits (:mod:`engine.settings.limits`): a date
1900-01-01 .. 2199-12-31, a time 1970-01-01 .. 2199-12-31; a cell outside them
rejects its row, never the file.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from engine.customers.importing.reader import Cell, cell_text
from engine.errors import ConfigValueError, FieldError, InvalidValueError
from engine.settings import EARLIEST_BUSINESS_DATE, EARLIEST_DATE, LATEST_DATE, time_zone

UTC = dt.UTC


def is_empty(cell: Cell | None) -> bool:
    """True for a missing or blank cell."""
    return cell is None or (isinstance(cell, str) and not cell.strip())


def clean_text(cell: Cell, max_length: int | None = None) -> str:
    """Text with surrounding space trimmed and inner runs of space collapsed."""
    text = " ".join(cell_text(cell).split())
    if max_length is not None and len(text) > max_length:
        raise FieldError(f"longer than {max_length} characters ({len(text)})")
    return text


# --- booleans, enumerations --------------------------------------------------------------------

_TRUE = {"да", "д", "yes", "y", "true", "t", "1", "+", "истина", "on", "x", "✓"}
_FALSE = {"нет", "н", "no", "n", "false", "f", "0", "-", "ложь", "off"}


def parse_bool(cell: Cell) -> bool:
    """да/нет, yes/no, true/false, 1/0, y/n, +/- (any case)."""
    text = clean_text(cell).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise FieldError(f"not a yes/no value: {text!r} (expected да/нет, yes/no, true/false, 1/0, y/n, +/-)")


def parse_choice(cell: Cell, aliases: dict[str, str], known: tuple[str, ...]) -> str:
    """One of ``known``, given by its name or an alias (case- and space-insensitive)."""
    text = " ".join(clean_text(cell).lower().replace("ё", "е").split())
    if text in known:
        return text
    if text in aliases:
        return aliases[text]
    raise FieldError(f"unknown value {clean_text(cell)!r} (known: {', '.join(known)})")


# --- contact data ------------------------------------------------------------------------------


_PLAIN_EMAIL = re.compile(
    r"^[a-z0-9_%+-]+(?:\.[a-z0-9_%+-]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+([a-z]{2,63})$",
    re.IGNORECASE,
)
_SPECIAL_USE_TLDS = {"arpa", "invalid", "local", "localhost", "onion", "test"}


def parse_email(cell: Cell) -> str:
    """A syntactically valid address, lower-case (no DNS lookup).

    Plain ASCII addresses are checked by a pattern (the common case, fast);
    anything else goes through email-validator.
    """
    text = clean_text(cell)
    plain = _PLAIN_EMAIL.match(text)
    local = text.partition("@")[0]
    if plain and plain.group(1).lower() not in _SPECIAL_USE_TLDS and len(text) <= 254 and len(local) <= 64:
        return text.lower()
    try:
        normalised = validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise FieldError(f"invalid email {text!r} ({exc})") from exc
    if len(normalised) > 320:
        raise FieldError(f"invalid email {text!r} (longer than 320 characters)")
    return normalised.lower()


def phone_region(region: str) -> str:
    """``region`` upper-cased, if phonenumbers knows it; else :class:`ConfigValueError`."""
    if region.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigValueError("config.toml", "engine.default_region", f"unknown phone region {region!r}")
    return region.upper()


def parse_phone(cell: Cell, region: str) -> str:
    """A valid phone number in E.164 (``+79161234567``); national numbers read in ``region``."""
    text = clean_text(cell)
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise FieldError(f"invalid phone {text!r} ({exc})") from exc
    if not phonenumbers.is_valid_number(number):
        raise FieldError(f"invalid phone {text!r} (not a valid number for region {region})")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_COUNTRY_NAMES = {
    "россия": "RU", "российская федерация": "RU", "рф": "RU", "russia": "RU", "russian federation": "RU",
    "беларусь": "BY", "белоруссия": "BY", "belarus": "BY", "казахстан": "KZ", "kazakhstan": "KZ",
    "украина": "UA", "ukraine": "UA", "узбекистан": "UZ", "uzbekistan": "UZ", "армения": "AM",
    "armenia": "AM", "грузия": "GE", "georgia": "GE", "азербайджан": "AZ", "azerbaijan": "AZ",
    "киргизия": "KG", "кыргызстан": "KG", "kyrgyzstan": "KG", "таджикистан": "TJ", "tajikistan": "TJ",
    "молдова": "MD", "moldova": "MD", "туркменистан": "TM", "turkmenistan": "TM",
    "сша": "US", "usa": "US", "united states": "US", "германия": "DE", "germany": "DE",
    "китай": "CN", "china": "CN", "турция": "TR", "turkey": "TR", "turkiye": "TR",
    "великобритания": "GB", "united kingdom": "GB", "uk": "GB", "франция": "FR", "france": "FR",
}  # fmt: skip


def parse_country(cell: Cell) -> str:
    """An ISO 3166 alpha-2 code (``RU``), given as a code or a common Russian/English name."""
    text = clean_text(cell)
    code = text.upper()
    if len(code) == 2 and code in phonenumbers.SUPPORTED_REGIONS:
        return code
    name = _COUNTRY_NAMES.get(" ".join(text.lower().replace("ё", "е").split()))
    if name:
        return name
    raise FieldError(f"unknown country {text!r} (expected an ISO 3166 alpha-2 code like RU)")


@lru_cache(maxsize=1)
def _zones() -> dict[str, str]:
    return {name.lower(): name for name in available_timezones()}


def parse_timezone(cell: Cell) -> str:
    """An IANA time zone name (``Europe/Moscow``), any case."""
    text = clean_text(cell)
    name = _zones().get(text.lower().replace(" ", "_"))
    if name is None:
        raise FieldError(f"unknown time zone {text!r} (expected an IANA name like Europe/Moscow)")
    zone(name)
    return name


_LANGUAGE_NAMES = {
    "русский": "ru", "russian": "ru", "рус": "ru", "английский": "en", "english": "en", "англ": "en",
    "немецкий": "de", "german": "de", "французский": "fr", "french": "fr", "казахский": "kk",
    "украинский": "uk", "белорусский": "be", "китайский": "zh", "испанский": "es", "spanish": "es",
}  # fmt: skip
_LANGUAGE_TAG = re.compile(r"^([a-z]{2,3})(?:[-_]([a-z0-9]{2,8}))?$", re.IGNORECASE)


def parse_language(cell: Cell) -> str:
    """A language tag: ``ru``, ``en``, ``ru-RU`` (or a language name: русский, English)."""
    text = clean_text(cell)
    name = _LANGUAGE_NAMES.get(text.lower())
    if name:
        return name
    match = _LANGUAGE_TAG.match(text)
    if not match:
        raise FieldError(f"unknown language {text!r} (expected a tag like ru or en-US)")
    language, region = match.groups()
    return language.lower() + (f"-{region.upper() if len(region) == 2 else region}" if region else "")


# --- dates and times ---------------------------------------------------------------------------

_SEPARATED = re.compile(
    r"^(\d{1,2})([./-])(\d{1,2})\2(\d{4})"
    r"(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,6}))?)?)?$"
)
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}")
_SIMPLE_FORMAT = re.compile(r"^%([dm])([./-])%([dm])\2%Y$")


def zone(name: str) -> ZoneInfo:
    """The ZoneInfo of an IANA name (:func:`engine.settings.time_zone`); FieldError for anything else."""
    try:
        return time_zone(name)
    except InvalidValueError as exc:
        raise FieldError(str(exc)) from exc


def _within(day: dt.date, earliest: dt.date, text: str) -> None:
    if not earliest <= day <= LATEST_DATE:
        raise FieldError(f"{text!r} is outside {earliest.isoformat()} .. {LATEST_DATE.isoformat()}")


def separated_date_parts(text: str) -> tuple[int, int] | None:
    """The first two numbers of a ``NN.NN.YYYY`` value, or None for any other shape."""
    match = _SEPARATED.match(text)
    if not match:
        return None
    return int(match.group(1)), int(match.group(3))


class DateReader:
    """Reads dates and datetimes in one convention.

    ``order`` is ``"dmy"`` or ``"mdy"`` for ``NN.NN.YYYY`` values (any of ``. / -``
    between them), or None when the file has none; ``date_format`` (a strptime
    format) replaces it for other shapes. ISO values are always understood.
    Datetimes without an offset are read in ``timezone`` and returned in UTC.
    """

    def __init__(self, *, order: str | None, date_format: str | None, timezone: str) -> None:
        self.order = order
        self.custom_format: str | None = None
        if date_format is not None:
            simple = _SIMPLE_FORMAT.match(date_format)
            if simple and simple.group(1) != simple.group(3):
                self.order = "dmy" if simple.group(1) == "d" else "mdy"
            else:
                self.custom_format = date_format
        self.zone = zone(timezone)

    def expected(self) -> str:
        if self.custom_format:
            return self.custom_format
        return {"dmy": "dd.mm.yyyy", "mdy": "mm.dd.yyyy"}.get(self.order or "", "yyyy-mm-dd")

    def _parts(self, cell: Cell) -> tuple[dt.date, dt.time | None, dt.tzinfo | None]:
        if isinstance(cell, dt.datetime):
            return cell.date(), cell.timetz().replace(tzinfo=None), cell.tzinfo
        if isinstance(cell, dt.date):
            return cell, None, None
        text = clean_text(cell)
        if isinstance(cell, str) and _ISO.match(text):
            try:
                if len(text) == 10:
                    return dt.date.fromisoformat(text), None, None
                value = dt.datetime.fromisoformat(text)
            except ValueError:
                raise FieldError(f"not a valid date {text!r}") from None
            return value.date(), value.time(), value.tzinfo
        if isinstance(cell, str) and self.custom_format is None:
            match = _SEPARATED.match(text)
            if match:
                if self.order is None:
                    raise FieldError(f"ambiguous date {text!r}: pass --date-format")
                first, second, year = int(match.group(1)), int(match.group(3)), int(match.group(4))
                day, month = (first, second) if self.order == "dmy" else (second, first)
                try:
                    date = dt.date(year, month, day)
                    if match.group(5) is None:
                        return date, None, None
                    fraction = (match.group(8) or "0").ljust(6, "0")
                    time = dt.time(int(match.group(5)), int(match.group(6)), int(match.group(7) or 0),
                                   int(fraction))  # fmt: skip
                except ValueError:
                    raise FieldError(f"not a valid date {text!r} (expected {self.expected()})") from None
                return date, time, None
        if isinstance(cell, str) and self.custom_format is not None:
            for suffix in ("", " %H:%M:%S", " %H:%M", "T%H:%M:%S"):
                try:
                    value = dt.datetime.strptime(text, self.custom_format + suffix)
                except ValueError:
                    continue
                return value.date(), (value.time() if suffix else None), None
        raise FieldError(f"not a date {cell_text(cell)!r} (expected {self.expected()})")

    def date(self, cell: Cell) -> dt.date:
        """A calendar date (a midnight time part is allowed), 1900-01-01 .. 2199-12-31."""
        date, time, _zone = self._parts(cell)
        if time is not None and time != dt.time(0):
            raise FieldError(f"expected a date, got a date and time {cell_text(cell)!r}")
        _within(date, EARLIEST_DATE, cell_text(cell))
        return date

    def datetime(self, cell: Cell) -> dt.datetime:
        """An aware UTC datetime, dated 1970-01-01 .. 2199-12-31 as written; a bare date means its
        midnight in the business time zone."""
        date, time, tzinfo = self._parts(cell)
        _within(date, EARLIEST_BUSINESS_DATE, cell_text(cell))
        value = dt.datetime.combine(date, time or dt.time(0), tzinfo=tzinfo or self.zone)
        return value.astimezone(UTC)


# --- numbers -----------------------------------------------------------------------------------

_GROUP = " \u00a0\u202f\u2009'"
_COMMA_DECIMAL = re.compile(rf"^(?:\d{{1,3}}(?:[{_GROUP}.]\d{{3}})+|\d+)(?:,\d+)?$")
_DOT_DECIMAL = re.compile(rf"^(?:\d{{1,3}}(?:[{_GROUP},]\d{{3}})+|\d+)(?:\.\d+)?$")
_GROUP_CHARS = re.compile(rf"[{_GROUP}]")


def number_under(text: str, decimal_comma: bool) -> Decimal | None:
    """The value of ``text`` under one convention, or None when it does not fit it."""
    text = text.strip().replace("\u2212", "-")
    sign = ""
    if text[:1] in "+-":
        sign, text = text[0], text[1:].lstrip()
    pattern = _COMMA_DECIMAL if decimal_comma else _DOT_DECIMAL
    if not pattern.match(text):
        return None
    text = _GROUP_CHARS.sub("", text)
    text = text.replace(".", "").replace(",", ".") if decimal_comma else text.replace(",", "")
    try:
        return Decimal(sign + text)
    except InvalidOperation:
        return None


class NumberReader:
    """Reads decimals with a decimal comma or point; thousand separators are spaces
    (also non-breaking), apostrophes, or the other of comma/point."""

    def __init__(self, decimal_comma: bool | None) -> None:
        self.decimal_comma = decimal_comma

    def decimal(self, cell: Cell) -> Decimal:
        if isinstance(cell, Decimal):
            return cell
        text = clean_text(cell)
        if self.decimal_comma is None:
            comma, dot = number_under(text, True), number_under(text, False)
            if comma is not None and dot is not None and comma != dot:
                raise FieldError(f"ambiguous number {text!r}: pass --decimal-comma or --decimal-point")
            value = comma if comma is not None else dot
        else:
            value = number_under(text, self.decimal_comma)
        if value is None:
            raise FieldError(f"not a number {text!r}")
        return value

    def integer(self, cell: Cell) -> int:
        value = self.decimal(cell)
        if value != value.to_integral_value():
            raise FieldError(f"not a whole number {cell_text(cell)!r}")
        return int(value)
