"""``crm report campaigns``: what each campaign and variant did, its uplift over control, did it pay off."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import typer

from engine.cli.common import check_output_format, parse_instant, state
from engine.cli.report_emit import check_output, emit_report
from engine.evaluation import campaign_report


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
    from engine.evaluation import report_output

    check_output_format(output_format, output)
    check_output(output)
    config = state.config()
    zone = ZoneInfo(config.settings.engine.timezone)
    now = parse_instant(as_of, zone, "--as-of", day_closes=True) if as_of is not None else None
    results = campaign_report(
        state.engine(config), config, names or None, attribute_first=not no_attribute, now=now
    )
    campaigns_written = f"{len(results)} campaign{'' if len(results) == 1 else 's'}"
    emit_report(
        output_format,
        output,
        tables=lambda: report_output.campaign_tables(results, config.settings.engine.currency),
        data=lambda: report_output.results_as_dict(results),
        rows=lambda: report_output.csv_rows(results),
        workbook=lambda: report_output.build_workbook(results),
        written=campaigns_written if output_format == "xlsx" else None,
    )


def register(app: typer.Typer) -> None:
    """Add ``campaigns`` to the ``crm report`` group."""
    app.command("campaigns")(campaigns)
