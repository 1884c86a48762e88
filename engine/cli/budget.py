"""``crm budget``: the contact matrix and the budget of all CRM actions: plan, approved, actual."""

from __future__ import annotations

import datetime as dt
import io
import sys
import zoneinfo
from decimal import Decimal
from pathlib import Path

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from engine.budget import (
    BudgetDiff,
    BudgetReport,
    Total,
    apply_overrides,
    budget_diff,
    budget_report,
    csv_rows,
    load_budgets,
)
from engine.campaigns import load_campaigns
from engine.cli.common import console, print_json, state
from engine.clock import utcnow
from engine.config import Config
from engine.errors import ConfigValueError
from engine.reporting import Period, check_output_file, csv_writer, write_atomically

FORMATS = ("table", "json", "csv", "xlsx", "html")
RELATIVE = {"current": 0, "next": 1, "previous": -1, "last": -1}


def resolve_period(text: str | None, config: Config, today: dt.date | None = None) -> Period:
    """``--period``: a label, ``START..END`` or current / next / previous quarter; default: today's budget."""
    zone = zoneinfo.ZoneInfo(config.settings.engine.timezone)
    today = today or utcnow().astimezone(zone).date()
    if text is None or text in RELATIVE:
        shift = RELATIVE.get(text or "current", 0)
        if text is None:
            budget = load_budgets(config).for_day(today)
            if budget is not None:
                return budget.period
        period = Period.containing(today, "quarter")
        for _ in range(abs(shift)):
            period = period.following() if shift > 0 else period.previous()
        return period
    try:
        return Period.parse(text)
    except ValueError as exc:
        raise ConfigValueError("--period", "period", str(exc)) from exc


def _money(value: Decimal | None) -> str:
    return "" if value is None else f"{value:,.2f}"


def _signed(value: Decimal | None) -> str:
    return "" if value is None else f"{value:+,.2f}"


def _count(value: Decimal) -> str:
    return f"{value:,.0f}" if value == value.to_integral_value() else f"{value:,.2f}"


def _totals_table(title: str, totals: list[Total], total: Total | None, currency: str) -> Table:
    """Plan against actual, and approved where something was (actual - approved is in every file format)."""
    approved = any(row.approved is not None for row in totals)
    columns = ["plan", "approved", "actual", "vs plan", "headroom"] if approved else [
        "contacts", "plan", "actual", "vs plan"
    ]  # fmt: skip
    title += f" ({currency}; vs plan = actual - plan" + (", headroom = approved - plan)" if approved else ")")
    table = Table(
        title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True
    )
    table.add_column("", overflow="fold", min_width=14)
    for header in columns:
        table.add_column(header, justify="right", overflow="fold")
    for row in [*totals, *([total] if total else [])]:
        values = {
            "contacts": _count(row.plan_contacts),
            "plan": _money(row.plan),
            "approved": _money(row.approved),
            "actual": _money(row.actual),
            "vs plan": _signed(row.against_plan),
            "headroom": _signed(row.headroom),
        }
        table.add_row(row.key, *(values[c] for c in columns), style="bold" if row is total else None)
    return table


def print_report(report: BudgetReport) -> None:
    """The report as rich tables: plan lines, the contact matrix, totals by strategy and channel."""
    currency = report.currency
    period = report.period
    header = f"budget {period.label} ({period.start} .. {period.end}), {currency}"
    header += f"; fingerprint {report.fingerprint}"
    if report.approved is not None:
        approval = report.approved.definition
        header += f"; approved {_money(approval.approved)}"
        if approval.approved_by:
            header += f" by {approval.approved_by}"
        if approval.approved_at:
            header += f" on {approval.approved_at}"
    header = escape(header)  # names and labels from the files, printed as they are
    if report.approved is not None and report.fingerprint_matches is False:
        changed = escape(f"(approved on {report.approved.definition.fingerprint}: the config changed since)")
        header += f" [yellow]{changed}[/yellow]"
    console.print(header)
    if report.overrides:
        console.print("what-if: " + ", ".join(report.overrides), markup=False)
    title = "plan: unit cost x clients x contacts per client x runs + preparation"
    lines = Table(
        title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True
    )
    for name in ("campaign", "step", "channel", "runs", "clients", "x", "unit", "prep.", "cost"):
        lines.add_column(
            name,
            justify="left" if name in ("campaign", "channel") else "right",
            no_wrap=name != "campaign",
            min_width=10 if name == "campaign" else None,
            overflow="fold",
        )
    traces: list[str] = []
    for line in report.lines:
        lines.add_row(
            line.campaign,
            str(line.step),
            line.channel,
            str(line.runs),
            f"{line.clients:,}",
            _count(line.contacts_per_client),
            _money(line.unit_cost),
            _money(line.preparation) if line.preparation else "",
            _money(line.cost),
        )
        if line.step == 0 and f"{line.campaign}:" not in "".join(traces[-1:]):
            traces.append(f"{line.campaign}: {line.basis}")
        traces.append(
            f"  step {line.step} {line.channel}: clients {line.clients:,} = members {line.members:,}"
            f" - control {line.control:,} - unreachable {line.unreachable:,}; price {line.price_source}"
        )
    console.print(lines)
    for text in dict.fromkeys(traces):
        console.print(f"  {text}", markup=False)
    matrix = report.matrix()
    table = Table(
        title=f"contact matrix (contacts / {currency})",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("segment")
    for channel in matrix.channels:
        table.add_column(channel, justify="right")
    table.add_column("preparation", justify="right")
    table.add_column("plan", justify="right")
    for segment in matrix.segments:
        cells = [matrix.cell(segment, channel) for channel in matrix.channels]
        preparation = matrix.preparation.get(segment, (Decimal(0), Decimal(0)))[0]
        total = sum((c.plan_cost for c in cells), Decimal(0)) + preparation
        table.add_row(
            segment,
            *[f"{_count(c.plan_contacts)} / {_money(c.plan_cost)}" if c.plan_contacts else "" for c in cells],
            _money(preparation) if preparation else "",
            _money(total),
        )
    console.print(table)
    console.print(_totals_table("by strategy", report.totals("strategy"), report.total(), currency))
    console.print(
        _totals_table(
            "by channel (contact cost, preparation aside)", report.totals("channel"), None, currency
        )
    )
    for note in report.notes:
        console.print(f"note: {note}", markup=False)


def _print_diff(diff: BudgetDiff) -> None:
    currency = diff.after.currency
    table = Table(title=f"budget {diff.after.period.label}: {diff.rev} -> working tree", title_justify="left")
    for name in ("campaign", "step", "channel", "contacts", f"cost {currency}", "change"):
        table.add_column(name, justify="left" if name in ("campaign", "channel") else "right")
    for line in diff.lines:
        table.add_row(
            line.campaign,
            str(line.step),
            line.channel,
            f"{_count(line.contacts_before)} -> {_count(line.contacts_after)}",
            f"{_money(line.cost_before)} -> {_money(line.cost_after)}",
            _signed(line.cost_after - line.cost_before),
        )
    console.print(table if diff.lines else "no line changes")
    console.print(
        f"plan: {_money(diff.before.plan_total)} -> {_money(diff.after.plan_total)} {currency}"
        f" ({_signed(diff.change)})"
    )


def budget(
    period: str | None = typer.Option(
        None, "--period", "-p", help="2027-Q1, 2027-03, 2027, 2027-01-15..2027-02-14, current, next, previous"
    ),
    output_format: str = typer.Option("table", "--format", "-f", help="table | json | csv | xlsx | html"),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="file to write (xlsx/html default: budget-PERIOD.*)"
    ),
    sets: list[str] = typer.Option([], "--set", help="what-if PATH=VALUE, files untouched (repeatable)"),
    diff: str | None = typer.Option(None, "--diff", help="compare with the config at this git revision"),
) -> None:
    """The contact matrix and budget of a period: plan, approved (budgets/*.toml), actual, variance.

    Plan: per campaign step, unit cost x clients x contacts per client x runs + preparation,
    clients being segment members minus control group minus those unreachable on the channel.
    Actual: recorded contacts x unit cost at send time + preparation of campaigns that ran.
    Nothing is written except the --output file.

    Example: crm budget --period next
    Example: crm budget --period 2027-Q1 --format xlsx -o q1.xlsx
    Example: crm budget --format html --period previous
    Example: crm budget --set channels.call.unit_cost=55 --set campaigns.winback.contacts_per_client=2
    Example: crm budget --period 2027-Q1 --diff HEAD~1
    """
    if output_format not in FORMATS:
        raise ConfigValueError("--format", "format", f"{output_format!r} is not one of {', '.join(FORMATS)}")
    config = state.config()
    engine = state.engine(config)
    chosen = resolve_period(period, config)
    target: Path | None = output
    if output_format in ("xlsx", "html") and diff is None:
        target = output or Path(f"budget-{chosen.label.replace('..', '_')}.{output_format}")
    if target is not None and output_format in ("json", "csv", "xlsx", "html"):
        check_output_file(target, option="--output")  # before the work: a bad path changes nothing
    if diff is not None:
        result = budget_diff(engine, config, period=chosen, rev=diff)
        if output_format == "json":
            print_json(result.as_dict(), output)
        else:
            _print_diff(result)
        return
    campaigns = load_campaigns(config)
    budgets = load_budgets(config, campaigns)
    if sets:
        what_if = apply_overrides(config, campaigns, budgets, sets, period=chosen)
        config, campaigns, budgets = what_if.config, what_if.campaigns, what_if.budgets
    report = budget_report(
        engine, config, period=chosen, campaigns=campaigns, budgets=budgets, overrides=sets
    )
    if output_format == "table":
        print_report(report)
    elif output_format == "json":
        print_json(report.as_dict(), output)
    elif output_format == "csv":
        _write_csv(report, output)
    else:
        assert target is not None
        if output_format == "xlsx":
            from engine.budget import write_workbook

            write_workbook(report, target)
        else:
            from engine.budget import write_html

            write_html(report, target)
        console.print(f"wrote {target} (plan {_money(report.plan_total)} {report.currency})", markup=False)


def _write_csv(report: BudgetReport, output: Path | None) -> None:
    buffer = io.StringIO()
    writer = csv_writer(buffer, delimiter=";")
    writer.writerows(csv_rows(report))
    text = buffer.getvalue()
    if output is None:
        sys.stdout.write(text)
        return
    write_atomically(output, ("\ufeff" + text).encode("utf-8"), option="--output")
    console.print(f"wrote {output}", markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``crm budget`` to ``app``."""
    app.command("budget")(budget)
