"""``crm loyalty liability`` and ``crm loyalty settlement``: what the points are worth, and who pays whom."""

from __future__ import annotations

from pathlib import Path

import typer

from engine.cli.common import check_output_format, parse_instant, state
from engine.cli.report_emit import emit_report
from engine.config import Config
from engine.errors import ConfigValueError, InvalidValueError
from engine.loyalty.finance import reports as finance
from engine.loyalty.programme import Programme, programme_named
from engine.reporting import Period
from engine.settings import check_date, time_zone


def _period(text: str, option: str) -> Period:
    """The period ``text`` names, its days within the engine's dates (1970-01-01 .. 2199-12-31)."""
    try:
        period = Period.parse(text)
        check_date(period.start, what="its first day")
        check_date(period.end, what="its last day")
    except InvalidValueError as exc:
        raise ConfigValueError(option, "", f"period {text!r}: {exc}") from exc
    except ValueError as exc:
        raise ConfigValueError(option, "period", str(exc)) from exc
    return period


def _chosen(config: Config, name: str | None) -> list[Programme]:
    """The programme ``name``, or every programme without a name."""
    if name is not None or not config.programmes:
        return [programme_named(config.programmes, name)]
    return list(config.programmes.values())


def liability(
    programme: str | None = typer.Option(
        None, "--programme", "-p", help="one programme (default: every programme)"
    ),
    as_of: str | None = typer.Option(
        None, "--as-of", help="a day (at its close, programme time) or an ISO instant; default now"
    ),
    period: str | None = typer.Option(
        None, "--period", help="breakage period: 2027-03, 2027-Q1, 2027, START..END (default: as-of's year)"
    ),
    output_format: str = typer.Option("table", "--format", "-f", help="table | json | csv | xlsx"),
    output: Path | None = typer.Option(None, "--output", "-o", help="file to write (required for xlsx)"),
) -> None:
    """Outstanding points and what they are worth, by programme and issuing partner, with breakage.

    Outstanding = pending + available + held, from the entries posted before --as-of.
    Value = outstanding x point_value. Debt (points customers owe) is shown apart, never deducted.
    Breakage = expired / issued, over --period and over the programme's lifetime.

    Example: crm loyalty liability
    Example: crm loyalty liability --programme bonus --as-of 2026-12-31 --format xlsx -o liability.xlsx
    Example: crm loyalty liability --period 2026-Q4 --format json
    """
    from engine.loyalty.finance import output as finance_output

    check_output_format(output_format, output)
    config = state.config()
    chosen = _chosen(config, programme)
    zones = {p.zone.key for p in chosen}
    zone = chosen[0].zone if len(zones) == 1 else time_zone(config.settings.engine.timezone)
    moment = parse_instant(as_of, zone, "--as-of", day_closes=True) if as_of is not None else None
    report = finance.liability(
        state.engine(config),
        chosen,
        as_of=moment,
        period=_period(period, "--period") if period is not None else None,
    )
    emit_report(
        output_format,
        output,
        tables=lambda: finance_output.liability_tables(report),
        data=report.as_dict,
        rows=lambda: finance_output.liability_csv_rows(report),
        workbook=lambda: finance_output.build_liability_workbook(report),
        written=f"liability {report.value:,.2f} {report.currency}",
    )


def settlement(
    period: str = typer.Argument(
        ..., help="2027-03, 2027-Q1, 2027 or 2027-01-15..2027-02-14 (programme time)"
    ),
    programme: str | None = typer.Option(None, "--programme", "-p", help="default: the only programme"),
    partner: str | None = typer.Option(None, "--partner", help="one partner (default: every partner)"),
    output_format: str = typer.Option("table", "--format", "-f", help="table | json | csv | xlsx"),
    output: Path | None = typer.Option(None, "--output", "-o", help="file to write (required for xlsx)"),
) -> None:
    """What each coalition partner and the programme owe each other for a period.

    Owed by the partner = points it issued (earned on its lots - clawed back) x price_per_point.
    Owed to the partner = points burnt there (redeemed - returned by refunds) x burn_rate.
    Net = owed by - owed to: positive, the partner pays the programme.

    Example: crm loyalty settlement 2027-03
    Example: crm loyalty settlement 2027-Q1 --partner fuel --format csv -o fuel-q1.csv
    Example: crm loyalty settlement 2027 --programme coalition --format xlsx -o settlement-2027.xlsx
    """
    from engine.loyalty.finance import output as finance_output

    check_output_format(output_format, output)
    config = state.config()
    chosen = programme_named(config.programmes, programme)
    days = _period(period, "PERIOD")
    start, end = finance.period_bounds(chosen, days)
    report = finance.settlement(state.engine(config), chosen, start, end, partner=partner, label=days.label)
    emit_report(
        output_format,
        output,
        tables=lambda: finance_output.settlement_tables(report),
        data=report.as_dict,
        rows=lambda: finance_output.settlement_csv_rows(report),
        workbook=lambda: finance_output.build_settlement_workbook(report),
        written=f"net {report.net:,.2f} {report.currency}",
    )


def register(group: typer.Typer) -> None:
    """Add ``liability`` and ``settlement`` to the ``crm loyalty`` group."""
    group.command("liability")(liability)
    group.command("settlement")(settlement)
