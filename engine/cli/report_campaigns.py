"""``crm report campaigns``: what each campaign and variant did, its uplift over control, did it pay off."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import typer

from engine.cli.app import check_output_format, console, parse_instant, print_json, state, to_jsonable
from engine.evaluation import report_output
from engine.evaluation.campaign_report import campaign_report
from engine.spreadsheet import formula_safe


def campaigns(
    names: list[str] | None = typer.Argument(
        None, help="campaign keys (file names); default: every campaign that ran"
    ),
    output_format: str = typer.Option("table", "--format", "-f", help="table | json | csv | xlsx"),
    output: Path | None = typer.Option(None, "--output", "-o", help="file to write (required for xlsx)"),
    as_of: str | None = typer.Option(
        None,
        "--as-of",
        help="attribute purchases known by then: a day (at its close) or an ISO instant; default now",
    ),
    no_attribute: bool = typer.Option(
        False, "--no-attribute", help="read the attributed conversions as they are, do not rebuild them first"
    ),
) -> None:
    """Per campaign and variant: audience, control, contacts, responses, conversions, revenue, cost, ROI,
    and the uplift of the treated group over the control group with confidence intervals and p-values.

    Purchases are attributed to contacts first, unless --no-attribute: within each campaign's goal
    window, last or first touch as the attribution setting of config.toml says.

    Example: crm report campaigns
    Example: crm report campaigns winback spring --format json
    Example: crm report campaigns --as-of 2026-12-31 --format xlsx -o campaigns.xlsx
    """
    check_output_format(output_format, output)
    config = state.config()
    zone = ZoneInfo(config.settings.engine.timezone)
    now = parse_instant(as_of, zone, "--as-of", day_closes=True) if as_of is not None else None
    results = campaign_report(
        state.engine(config), config, names or None, attribute_first=not no_attribute, now=now
    )
    if output_format == "table":
        for renderable in report_output.campaign_tables(results, config.settings.engine.currency):
            console.print(renderable)
    elif output_format == "json":
        data = report_output.results_as_dict(results)
        if output is None:
            print_json(data)
        else:
            output.write_text(
                json.dumps(to_jsonable(data), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
            )
            console.print(f"wrote {output}")
    elif output_format == "csv":
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=";").writerows(
            [formula_safe(cell) for cell in row] for row in report_output.csv_rows(results)
        )
        if output is None:
            sys.stdout.write(buffer.getvalue())
        else:
            output.write_text("\ufeff" + buffer.getvalue(), encoding="utf-8")
            console.print(f"wrote {output}")
    else:
        assert output is not None
        report_output.write_workbook(report_output.build_workbook(results), output)
        console.print(f"wrote {output} ({len(results)} campaign{'' if len(results) == 1 else 's'})")


def register(app: typer.Typer) -> None:
    """Add ``campaigns`` to the ``crm report`` group."""
    app.command("campaigns")(campaigns)
