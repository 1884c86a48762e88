"""``crm report programme``, ``funnel``, ``migration`` and ``html``: how the programme as a whole is doing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import typer

from engine.cli.common import check_output_format, console, parse_instant, state
from engine.cli.report_emit import check_output, emit_report
from engine.clock import utcnow
from engine.config import Config
from engine.errors import ConfigValueError
from engine.evaluation import lifecycle_funnel, programme_indicators, segment_migration
from engine.reporting import check_output_folder

FORMAT = typer.Option("table", "--format", "-f", help="table | json | csv | xlsx")
OUTPUT = typer.Option(None, "--output", "-o", help="file to write (required for xlsx)")


def _zone(config: Config) -> ZoneInfo:
    return ZoneInfo(config.settings.engine.timezone)


def _instant(config: Config, text: str | None, option: str) -> dt.datetime | None:
    """A day (at its close, business time) or an ISO instant; None when not given."""
    return None if text is None else parse_instant(text, _zone(config), option, day_closes=True)


def _segments(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise ConfigValueError("--segments", "segments", "name at least one segment: --segments large,medium")
    return names


def programme(
    by: str | None = typer.Option(None, "--by", help="segment: one table per configured segment"),
    periods: int = typer.Option(
        12, "--periods", "-n", min=1, max=120, help="how many periods, up to the current one"
    ),
    segments: str | None = typer.Option(None, "--segments", help="with --by segment: these, in this order"),
    as_of: str | None = typer.Option(
        None, "--as-of", help="report as of a day's close (business time) or an ISO instant; default now"
    ),
    output_format: str = FORMAT,
    output: Path | None = OUTPUT,
) -> None:
    """Programme indicators per period (evaluation.period of config.toml): churn, revenue and profit per
    customer, share of wallet, read rate of mailings, satisfaction; over all customers or per segment.

    Active = an order in the churn_days before; churn rate = customers active at the period's start and
    not at its end / active at its start; per customer = per buyer of the period; profit = margin -
    contact cost. By segment, members at each period's end count (docs/evaluation.md).

    Example: crm report programme
    Example: crm report programme --by segment --periods 4
    Example: crm report programme --periods 12 --format xlsx -o programme.xlsx
    """
    from engine.evaluation import programme_output as output_forms

    check_output_format(output_format, output)
    check_output(output)
    if by not in (None, "segment"):
        raise ConfigValueError("--by", "by", f"{by!r}: the indicators are by segment or over all customers")
    config = state.config()
    report = programme_indicators(
        state.engine(config),
        config,
        periods=periods,
        by_segment=by == "segment",
        segments=_segments(segments),
        now=_instant(config, as_of, "--as-of"),
    )
    emit_report(
        output_format,
        output,
        tables=lambda: output_forms.indicator_tables(report),
        data=report.as_dict,
        rows=lambda: output_forms.indicator_csv_rows(report),
        workbook=lambda: output_forms.build_indicator_workbook(report),
    )


def funnel(output_format: str = FORMAT, output: Path | None = OUTPUT) -> None:
    """The lifecycle funnel: visitor -> identified -> client -> regular -> partner, each stage's conversion
    from the one before against its target (evaluation.funnel_targets of config.toml), with the gap.

    Stages come from the last metrics refresh (crm refresh).

    Example: crm report funnel
    Example: crm report funnel --format csv -o funnel.csv
    """
    from engine.evaluation import programme_output as output_forms

    check_output_format(output_format, output)
    check_output(output)
    config = state.config()
    result = lifecycle_funnel(state.engine(config), config)
    emit_report(
        output_format,
        output,
        tables=lambda: output_forms.funnel_table(result),
        data=result.as_dict,
        rows=lambda: output_forms.funnel_csv_rows(result),
        workbook=lambda: output_forms.build_funnel_workbook(result),
    )


def migration(
    start: str = typer.Option(..., "--from", help="a day (at its close, business time) or an ISO instant"),
    end: str | None = typer.Option(None, "--to", help="a later day or instant (default: now)"),
    segments: str | None = typer.Option(
        None,
        "--segments",
        help="ordered list: a customer in several counts in the first (default: config order)",
    ),
    output_format: str = FORMAT,
    output: Path | None = OUTPUT,
) -> None:
    """Segment migration matrix: customers by segment at --from (rows) and at --to (columns), with row shares.

    Example: crm report migration --from 2026-09-01 --to 2026-12-01
    Example: crm report migration --from 2026-09-01 --segments large,medium,small --format xlsx -o moves.xlsx
    """
    from engine.evaluation import programme_output as output_forms

    check_output_format(output_format, output)
    check_output(output)
    config = state.config()
    before = _instant(config, start, "--from")
    assert before is not None
    after = _instant(config, end, "--to") or utcnow()
    matrix = segment_migration(state.engine(config), config, before, after, _segments(segments))
    emit_report(
        output_format,
        output,
        tables=lambda: output_forms.migration_table(matrix),
        data=matrix.as_dict,
        rows=lambda: output_forms.migration_csv_rows(matrix),
        workbook=lambda: output_forms.build_migration_workbook(matrix),
    )


def html(
    folder: Path = typer.Argument(..., help="folder for index.html, the campaign pages and their charts"),
    periods: int = typer.Option(
        12, "--periods", "-n", min=1, max=120, help="periods of the programme indicators"
    ),
    as_of: str | None = typer.Option(
        None, "--as-of", help="the report as of a day (at its close) or an ISO instant; default now"
    ),
) -> None:
    """Static HTML reports: one page per campaign (results, uplift, charts) and index.html, the overview of
    the programme (indicators, funnel, segment migration) linking to them. Open index.html in a browser.

    A campaign whose goal window is still open shows how many of its days were
    observed and no verdict.

    Example: crm report html reports/
    Example: crm report html /tmp/crm-report --periods 6 --as-of 2027-01-31
    """
    from engine.evaluation import campaign_report, write_campaign_pages, write_overview

    check_output_folder(folder, option="FOLDER")
    config = state.config()
    engine = state.engine(config)
    zone = ZoneInfo(config.settings.engine.timezone)
    now = parse_instant(as_of, zone, "--as-of", day_closes=True) if as_of is not None else None
    results = campaign_report(engine, config, now=now)
    pages = write_campaign_pages(results, folder, currency=config.settings.engine.currency)
    index = write_overview(engine, config, folder, pages, periods=periods, now=now)
    console.print(
        f"wrote {index} and {len(pages)} campaign page{'' if len(pages) == 1 else 's'}",
        soft_wrap=True,
        markup=False,
    )


def register(app: typer.Typer) -> None:
    """Add ``programme``, ``funnel``, ``migration`` and ``html`` to the ``crm report`` group."""
    app.command("programme")(programme)
    app.command("funnel")(funnel)
    app.command("migration")(migration)
    app.command("html")(html)
