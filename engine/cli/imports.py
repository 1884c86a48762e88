"""``crm import customers|purchases|responses FILE``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from engine.campaigns import campaign_names
from engine.cli.common import console, print_json, state
from engine.customers.importing import ImportOptions, ImportSummary, import_customers, import_purchases
from engine.errors import ConfigValueError
from engine.responses import import_responses

group = typer.Typer(
    help="Import customers, purchases and responses from CSV or XLSX files.\n\n"
    "Example: crm import customers shop.csv --source shop",
    no_args_is_help=True,
)

EncodingOpt = typer.Option(None, "--encoding", help="utf-8, utf-8-sig, cp1251... (default: detect)")
DelimiterOpt = typer.Option(None, "--delimiter", help="';', ',', 'tab' or '|' (default: detect)")
DateFormatOpt = typer.Option(
    None, "--date-format", help="e.g. '%d.%m.%Y' (default: detect, refuse if ambiguous)"
)
DecimalOpt = typer.Option(
    None, "--decimal-comma/--decimal-point", help="decimal separator (default: detect)", show_default=False
)
SheetOpt = typer.Option(None, "--sheet", help="XLSX sheet (default: the first)")
MapOpt = typer.Option([], "--map", help="'File header=field', repeatable")
IgnoreOpt = typer.Option(False, "--ignore-unknown", help="skip columns that match no field")
RejectsOpt = typer.Option(None, "--rejects", help="where rejected rows go (default: FILE.rejects.csv)")
JsonOpt = typer.Option(False, "--json", help="print the summary as JSON")


def _options(
    encoding: str | None,
    delimiter: str | None,
    date_format: str | None,
    decimal_comma: bool | None,
    sheet: str | None,
    mapping: list[str],
    ignore_unknown: bool,
    rejects: Path | None,
) -> ImportOptions:
    column_map = {}
    for item in mapping:
        header, sep, target = item.rpartition("=")
        if not sep or not header.strip() or not target.strip():
            raise ConfigValueError("--map", "", f"expected 'File header=field', got {item!r}")
        column_map[header.strip()] = target.strip()
    if delimiter == "tab":
        delimiter = "\t"
    return ImportOptions(
        encoding=encoding,
        delimiter=delimiter,
        date_format=date_format,
        decimal_comma=decimal_comma,
        sheet=sheet,
        column_map=column_map,
        ignore_unknown=ignore_unknown,
        rejects_path=rejects,
    )


def _import(kind: str, file: Path, source: str, options: ImportOptions, as_json: bool) -> None:
    """Import ``file`` with the business settings of config.toml and print the summary."""
    config = state.config()
    engine = state.engine(config)
    settings = config.settings.engine
    if kind == "customers":
        summary = import_customers(
            engine,
            file,
            source=source,
            options=options,
            timezone=settings.timezone,
            default_region=settings.default_region,
            attributes=dict(config.settings.customers.attributes),
        )
    else:
        summary = import_purchases(
            engine,
            file,
            source=source,
            options=options,
            timezone=settings.timezone,
            default_region=settings.default_region,
            currency=settings.currency,
            programmes=config.programmes,
        )
    _print(summary, as_json)


def _print(summary: ImportSummary, as_json: bool) -> None:
    if as_json:
        print_json(summary.as_dict())
        return
    table = Table(title=escape(f"import {summary.kind}: {summary.path}"), show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    for label in ("rows", "inserted", "updated", "merged", "unchanged", "rejected"):
        table.add_row(label, str(getattr(summary, label)))
    console.print(table)
    for line in summary.describe()[1:]:
        console.print(line, style="yellow" if "rejected" in line else None, soft_wrap=True, markup=False)
    if summary.kind != "responses":
        console.print("run `crm refresh` to bring metrics, scores and segments up to date")


def customers(
    file: Path = typer.Argument(..., help="CSV or XLSX file"),
    source: str = typer.Option(..., "--source", help="where the file comes from (shop, loyalty_cards...)"),
    encoding: str | None = EncodingOpt,
    delimiter: str | None = DelimiterOpt,
    date_format: str | None = DateFormatOpt,
    decimal_comma: bool | None = DecimalOpt,
    sheet: str | None = SheetOpt,
    mapping: list[str] = MapOpt,
    ignore_unknown: bool = IgnoreOpt,
    rejects: Path | None = RejectsOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Import customers; duplicates merge by external id, then email, then phone.

    Example: crm import customers clients.csv --source shop --encoding cp1251 --date-format %d.%m.%Y
    """
    options = _options(
        encoding, delimiter, date_format, decimal_comma, sheet, mapping, ignore_unknown, rejects
    )
    _import("customers", file, source, options, as_json)


def purchases(
    file: Path = typer.Argument(..., help="CSV or XLSX file"),
    source: str = typer.Option("purchases", "--source", help="where the file comes from"),
    encoding: str | None = EncodingOpt,
    delimiter: str | None = DelimiterOpt,
    date_format: str | None = DateFormatOpt,
    decimal_comma: bool | None = DecimalOpt,
    sheet: str | None = SheetOpt,
    mapping: list[str] = MapOpt,
    ignore_unknown: bool = IgnoreOpt,
    rejects: Path | None = RejectsOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Import purchases and refunds (a refund names the purchase it refunds).

    Example: crm import purchases orders.xlsx --sheet Orders
    """
    options = _options(
        encoding, delimiter, date_format, decimal_comma, sheet, mapping, ignore_unknown, rejects
    )
    _import("purchases", file, source, options, as_json)


def responses(
    file: Path = typer.Argument(..., help="CSV or XLSX file"),
    centre: str | None = typer.Option(
        None,
        "--centre",
        help="the call centre whose codes the file uses (responses.call_centres.NAME)",
    ),
    source: str = typer.Option("responses", "--source", help="where the file comes from"),
    encoding: str | None = EncodingOpt,
    delimiter: str | None = DelimiterOpt,
    date_format: str | None = DateFormatOpt,
    decimal_comma: bool | None = DecimalOpt,
    sheet: str | None = SheetOpt,
    mapping: list[str] = MapOpt,
    ignore_unknown: bool = IgnoreOpt,
    rejects: Path | None = RejectsOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Import call outcomes, replies and survey scores; wrong numbers and refusals change the contact policy.

    Example: crm import responses calls.csv --centre main
    """
    options = _options(
        encoding, delimiter, date_format, decimal_comma, sheet, mapping, ignore_unknown, rejects
    )
    config = state.config()
    settings = config.settings.engine
    summary = import_responses(
        state.engine(config),
        file,
        source=source,
        options=options,
        settings=config.settings.responses,
        centre=centre,
        campaigns=campaign_names(config),  # a returned call list names its campaign by key or by name
        timezone=settings.timezone,
        default_region=settings.default_region,
    )
    _print(summary, as_json)


def register(app: typer.Typer) -> None:
    """Add ``crm import`` to ``app``."""
    group.command("customers")(customers)
    group.command("purchases")(purchases)
    group.command("responses")(responses)
    app.add_typer(group, name="import")
