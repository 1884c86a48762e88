"""``crm refresh``: metrics, then scores, then segments."""

from __future__ import annotations

import datetime as dt

import typer
from rich.markup import escape
from rich.table import Table

from engine.cli.common import console, print_json, state
from engine.cli.root import elapsed
from engine.segments import refresh_all


def refresh(
    as_of: str | None = typer.Option(
        None, "--as-of", help="business date to compute metrics for, YYYY-MM-DD (default: today)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
) -> None:
    """Recompute metrics, scores and segment memberships inside the database.

    Example: crm refresh
    Example: crm refresh --as-of 2026-10-31
    """
    config = state.config()
    engine = state.engine(config)
    day = _parse_date(as_of) if as_of else None
    result = refresh_all(engine, config, as_of=day)
    if as_json:
        print_json(result)
        return
    m = result.metrics
    console.print(
        f"metrics as of {m.as_of}: {m.customers} customers, {m.buyers} with orders ({m.seconds:.1f} s)"
    )
    for name, count in m.custom.items():
        console.print(f"  metric {name}: {count} customers with a value", markup=False)
    for score in result.scores:
        average = f"{score.average:.1f}" if score.average is not None else "-"
        console.print(f"score {score.name}: {score.scored} customers scored, average {average}", markup=False)
    table = Table(title="segments")
    for column in ("segment", "members", "entered", "left"):
        table.add_column(column, justify="left" if column == "segment" else "right")
    for seg in result.segments:
        table.add_row(escape(seg.name), str(seg.members), str(seg.entered), str(seg.left))
    console.print(table)
    console.print(f"done in {elapsed():.1f} s")  # the whole command, start-up and config included


def _parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r} is not a date YYYY-MM-DD", param_hint="--as-of") from exc


def register(app: typer.Typer) -> None:
    """Add ``crm refresh`` to ``app``."""
    app.command("refresh")(refresh)
