"""``crm demo``."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import typer
from rich.markup import escape
from rich.table import Table

from engine.cli.budget import print_report
from engine.cli.campaigns import steps_table
from engine.cli.common import console, state
from engine.cli.root import elapsed
from engine.demo import EVALUATED_DAYS, ClassShare, DemoEvaluation, DemoLoyalty, DemoResult, run_demo
from engine.evaluation import campaign_tables, funnel_table, indicator_tables
from engine.loyalty.finance import liability_tables
from engine.reporting import check_output_folder
from engine.segments import list_segments


@contextlib.contextmanager
def _phase(name: str) -> Iterator[None]:
    """A spinner with the phase's name while it runs (on a terminal), then its time."""
    started = time.perf_counter()
    with console.status(f"{escape(name)}..."):
        yield
    console.print(f"  [green]done[/] {escape(name)} ({time.perf_counter() - started:.1f} s)", highlight=False)


def _shares(title: str, key: str, rows: list[ClassShare]) -> Table:
    table = Table(title=title)
    table.add_column(key)
    for column in ("customers", "% customers", "revenue", "% revenue"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            row.name,
            f"{row.customers:,}",
            f"{row.customer_share:.1%}",
            f"{row.revenue:,.2f}",
            f"{row.revenue_share:.1%}",
        )
    return table


def _print(result: DemoResult) -> None:
    data = result.data
    console.print(
        f"[bold]demo shop[/] in {escape(str(result.folder))}/: {data.customers:,} customers "
        f"({data.companies:,} companies, "
        f"{data.prospects:,} prospects), {data.purchases:,} purchases ({data.refunds:,} refunds), "
        f"revenue {data.revenue:,.2f}"
    )
    console.print(
        f"the top 25 % of buyers bring {data.top25_revenue_share:.0%} of revenue, "
        f"the other 75 % bring {data.bottom75_revenue_share:.0%}"
    )
    console.print("[bold]import of a call-centre export[/] (cp1251, ';', dd.mm.yyyy, Russian headers):")
    for line in result.call_centre_import.describe():
        console.print(f"  {line}", soft_wrap=True, markup=False)
    console.print(_shares("ABC class (by cumulative share of revenue)", "class", result.abc))
    console.print(_shares("lifecycle stage", "stage", result.lifecycle))
    console.print(_shares("time zone", "zone", result.timezones))
    scores = Table(title="scores")
    for column in ("score", "customers scored", "average points"):
        scores.add_column(column, justify="left" if column == "score" else "right")
    for score in result.refresh.scores:
        scores.add_row(score.name, f"{score.scored:,}", f"{score.average or 0:.1f}")
    console.print(scores)
    config = state.config()
    segments = Table(title="segments")
    for column in ("segment", "members", "strategy", "rule"):
        segments.add_column(column, justify="right" if column == "members" else "left", overflow="fold")
    for info in list_segments(state.engine(config), config):
        segments.add_row(info.name, f"{info.members or 0:,}", info.strategy or "-", info.rule.strip())
    console.print(segments)
    _print_campaigns(result)
    console.print(
        f"[bold]budget[/] of {result.budget.report.period.label}: contact matrix, plan, approved, actual"
    )
    print_report(result.budget.report)
    console.print(
        f"  for finance: {result.budget.workbook} (live formulas) and {result.budget.html}",
        soft_wrap=True,
        markup=False,
    )
    crm = _program()
    if result.loyalty is not None:
        _print_loyalty(result.loyalty, result)
    _print_evaluation(result.evaluation)
    console.print(f"built in {elapsed():.1f} s. Look further with:", markup=False)
    console.print(f"  export CRM_CONFIG={result.config_path}", soft_wrap=True, markup=False)
    console.print(f"  {crm} segments show lapsing_large", soft_wrap=True, markup=False)
    console.print(f"  {crm} segments show lapsing_large --sql", soft_wrap=True, markup=False)
    console.print(f"  {crm} customers show C000001", soft_wrap=True, markup=False)
    console.print(f"  {crm} plan --days 31", soft_wrap=True, markup=False)
    console.print(f"  {crm} budget --set channels.call.unit_cost=55", soft_wrap=True, markup=False)
    console.print(f"  {crm} preview winback --customer C000001", soft_wrap=True, markup=False)
    if result.loyalty is not None and result.loyalty.members:
        console.print(
            f"  {crm} loyalty statement {result.loyalty.members[0].customer}", soft_wrap=True, markup=False
        )
        console.print(
            f"  {crm} loyalty liability --format xlsx -o liability.xlsx", soft_wrap=True, markup=False
        )
    as_of = f"{result.evaluation.as_of:%Y-%m-%dT%H:%M}Z"
    console.print(
        f"  {crm} report campaigns winback --as-of {as_of} --format csv", soft_wrap=True, markup=False
    )
    console.print(f"  {crm} report funnel", soft_wrap=True, markup=False)
    console.print(
        f"  {crm} serve   # the HTTP API: tracking links, unsubscribe, loyalty for the till",
        soft_wrap=True,
        markup=False,
    )


def _print_campaigns(result: DemoResult) -> None:
    day = result.campaigns
    zone = state.config().settings.engine.timezone
    local = day.fired_at.astimezone(ZoneInfo(zone))
    console.print(
        f"[bold]campaign day[/]: the example campaigns fired at {local:%Y-%m-%d %H:%M} ({escape(zone)})"
    )
    currency = state.config().settings.engine.currency
    for run in day.runs:
        console.print(steps_table(f"run {run.run_id}: {run.campaign}", run.steps, currency))
    console.print(
        f"  {day.emails:,} emails in the Maildir {day.maildir} (open it with any mail client)", markup=False
    )
    for path in day.call_lists:
        console.print(f"  call list {path} (and its .xlsx)", soft_wrap=True, markup=False)


def _program() -> str:
    """How the user called crm: ``crm`` when it is on PATH, else the path they used."""
    called = Path(sys.argv[0])
    on_path = shutil.which("crm")
    if called.name != "crm" or (on_path and Path(on_path).resolve() == called.resolve()):
        return "crm"
    return os.path.relpath(called)


def demo(
    folder: Path = typer.Option(
        Path("crm-demo"), "--dir", help="workspace folder (its demo.db is recreated)"
    ),
    customers: int = typer.Option(
        20_000, "--customers", min=1, max=1_000_000, help="how many customers to generate"
    ),
    purchases: int | None = typer.Option(
        None,
        "--purchases",
        min=0,
        max=20_000_000,
        help="how many purchases to generate (default: 10 per customer)",
    ),
    seed: int = typer.Option(
        42, "--seed", min=0, max=2**32 - 1, help="random seed: the same seed gives the same shop"
    ),
) -> None:
    """Create a fresh SQLite workspace with a synthetic shop, refresh it, run its campaigns, print it all.

    Each phase shows a progress line while it runs and its time when done.

    Example: crm demo
    Example: crm demo --dir /tmp/shop --customers 2000
    """
    check_output_folder(folder, option="--dir")
    result = run_demo(
        folder,
        customers=customers,
        purchases=purchases,
        seed=seed,
        config_path=state.config_path,
        phase=_phase,
    )
    state.config_path = result.config_path
    _print(result)


def register(app: typer.Typer) -> None:
    """Add ``crm demo`` to ``app``."""
    app.command("demo")(demo)


def _print_loyalty(loyalty: DemoLoyalty, result: DemoResult) -> None:
    console.print(
        f"[bold]loyalty programme {escape(loyalty.programme)}[/]: the shop's purchases earned points"
    )
    console.print(f"  {loyalty.accrual.describe()}", soft_wrap=True, markup=False)
    for line in loyalty.till:
        console.print(f"  till: {line}", soft_wrap=True, markup=False)
    counts = ", ".join(
        f"{name.replace('_', ' ')} {value:,}" for name, value in loyalty.batch.counts().items()
    )
    console.print(f"  nightly jobs: {counts}", soft_wrap=True, markup=False)
    members = Table(title="richest members", title_justify="left")
    for column in ("customer", "available", "pending", "held", "tier", "discount", "worth"):
        members.add_column(column, justify="left" if column in ("customer", "tier") else "right")
    for member in loyalty.members:
        members.add_row(
            member.customer,
            f"{member.available:,}",
            f"{member.pending:,}",
            f"{member.held:,}",
            member.tier or "-",
            f"{member.discount_percent}%",
            f"{member.value:,.2f}",
        )
    console.print(members)
    console.print(
        "  tiers: " + ", ".join(f"{name} {count:,}" for name, count in loyalty.tiers.items()), markup=False
    )
    for renderable in liability_tables(loyalty.liability):
        console.print(renderable)
    state = "consistent" if loyalty.audit.ok else f"{len(loyalty.audit.problems)} problems"
    console.print(
        f"  audit: {loyalty.audit.accounts:,} accounts, {loyalty.audit.lots:,} lots, "
        f"{loyalty.audit.entries:,} entries: {state}"
    )


def _print_evaluation(evaluation: DemoEvaluation) -> None:
    config = state.config()
    zone = ZoneInfo(config.settings.engine.timezone)
    console.print(
        f"[bold]evaluation[/]: the {EVALUATED_DAYS} days after the campaign day, simulated, "
        f"up to {evaluation.as_of.astimezone(zone):%Y-%m-%d %H:%M}"
    )
    emails = evaluation.emails
    console.print(
        f"  through the HTTP API's signed links: {emails.opens:,} opens, {emails.clicks:,} clicks, "
        f"{emails.unsubscribes:,} one-click unsubscribes",
        soft_wrap=True,
    )
    for line in [*evaluation.calls.describe(), *evaluation.purchases.describe()[:1]]:
        console.print(f"  {line}", soft_wrap=True, markup=False)
    attribution = evaluation.attribution
    console.print(
        f"  attribution ({attribution.model.replace('_', ' ')}): {attribution.conversions:,} purchases "
        f"count for a contact ({attribution.treated:,} treated, {attribution.control:,} control), "
        f"revenue {attribution.revenue:,.2f}",
        soft_wrap=True,
    )
    for renderable in campaign_tables(evaluation.results, config.settings.engine.currency):
        console.print(renderable)
    for renderable in [*indicator_tables(evaluation.indicators), *funnel_table(evaluation.funnel)]:
        console.print(renderable)
    console.print(f"  the report to open in a browser: {evaluation.html}", soft_wrap=True, markup=False)
