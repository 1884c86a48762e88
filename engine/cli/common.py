"""The helpers every command shares (JSON output, option parsers); the application itself is in root.py."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import typer

from engine.cli.root import State, app, console, console_err, state  # noqa: F401
from engine.clock import local_instant
from engine.errors import ConfigValueError, InvalidValueError
from engine.settings import (
    MAX_POINTS,
    check_date,
    check_instant,
    parse_money,
    parse_points,
    parse_quantity,
)

T = TypeVar("T")


def to_jsonable(value: Any) -> Any:
    """Dataclasses, Decimals, dates and paths as JSON values."""
    if is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(asdict(value))
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def print_json(value: Any, output: Path | None = None) -> None:
    """``value`` as indented JSON: on stdout, or written whole to ``output`` (``--output``) when given."""
    text = json.dumps(to_jsonable(value), ensure_ascii=False, indent=2)
    if output is None:
        typer.echo(text)
        return
    from engine.reporting import write_atomically

    write_atomically(output, (text + "\n").encode("utf-8"), option="--output")
    console.print(f"wrote {output}", markup=False, soft_wrap=True)


def parse_instant(text: str, zone: ZoneInfo, option: str, *, day_closes: bool = False) -> dt.datetime:
    """A time given on the command line, as aware UTC.

    A day (``2026-12-31``) is its first instant in ``zone``, or with ``day_closes``
    its close (the next midnight); an ISO time without an offset is read in ``zone``.
    Days and times lie within the engine's dates (1970-01-01 .. 2199-12-31, as
    written); anything else raises :class:`~engine.errors.ConfigValueError` naming ``option``.
    """
    try:
        if len(text) == 10:
            day = check_date(dt.date.fromisoformat(text), what="day")
            return local_instant(day + dt.timedelta(days=1 if day_closes else 0), dt.time(0), zone)
        moment = check_instant(dt.datetime.fromisoformat(text))
    except InvalidValueError as exc:
        raise ConfigValueError(option, "", str(exc)) from exc
    except ValueError as exc:
        raise ConfigValueError(
            option, "", f"{text!r} is not a day (2026-12-31) or an instant (2026-12-31T18:00+03:00)"
        ) from exc
    return (moment if moment.tzinfo else moment.replace(tzinfo=zone)).astimezone(dt.UTC)


def option_parser(parse: Callable[[str], T]) -> Callable[[str], T]:
    """A typer ``parser=`` from a parse function of :mod:`engine.settings` (the engine's limits).

    Its ``ValueError`` becomes a usage error that names the option and exits 1:
    ``Invalid value for '--amount': amount 1E+30 is above the limit of 100,000,000.00``.
    A value that is no text (an option's default) is taken as it is.

    Example: ``amount: Decimal = typer.Option(..., "--amount", parser=AMOUNT)``
    """

    def parser(text: Any) -> T:
        if not isinstance(text, str):
            return text
        try:
            return parse(text)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc

    return parser


#: ``--amount``: one amount of money, 0.01 .. 100,000,000, two decimal places
AMOUNT = option_parser(parse_money)
#: ``--quantity``: 0.001 .. 1,000,000, three decimal places
QUANTITY = option_parser(parse_quantity)
#: ``--points`` spent or moved: 1 .. 10,000,000
POINTS = option_parser(parse_points)
#: ``--points`` added or taken: -10,000,000 .. 10,000,000
SIGNED_POINTS = option_parser(lambda text: parse_points(text, minimum=-MAX_POINTS))


#: what ``--format`` of the reports accepts
OUTPUT_FORMATS = ("table", "json", "csv", "xlsx")


def check_output_format(output_format: str, output: Path | None) -> None:
    """``--format`` and ``--output`` of a report fit together: xlsx needs a file, a table takes none."""
    if output_format not in OUTPUT_FORMATS:
        raise ConfigValueError(
            "--format", "format", f"{output_format!r} is not one of {', '.join(OUTPUT_FORMATS)}"
        )
    if output_format == "xlsx" and output is None:
        raise ConfigValueError(
            "--output", "output", "--format xlsx writes a file: give it with --output FILE.xlsx"
        )
    if output_format == "table" and output is not None:
        raise ConfigValueError("--output", "output", "--output is for --format json, csv or xlsx")
