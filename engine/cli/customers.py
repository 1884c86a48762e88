"""``crm customers show REF``."""

from __future__ import annotations

import typer
from rich.table import Table

from engine.cli.common import console, print_json, state
from engine.customers import customer_profile

group = typer.Typer(
    help="Look at customers.\n\nExample: crm customers show C000123",
    no_args_is_help=True,
)


def show(
    ref: str = typer.Argument(..., help="external id, email, phone (+7...) or #id"),
    as_json: bool = typer.Option(False, "--json", help="print the profile as JSON"),
) -> None:
    """Show one customer: fields, metrics, scores, segments and which source said what.

    Example: crm customers show C000123
    Example: crm customers show anna@example.ru --json
    """
    config = state.config()
    profile = customer_profile(state.engine(config), ref)
    if as_json:
        print_json(profile)
        return
    table = Table(show_header=False, title=f"customer {ref}")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for name, value in {**profile.fields, **profile.metrics, **profile.custom_metrics}.items():
        if value is not None and value != {}:
            table.add_row(name, str(value))
    for name, points in profile.scores.items():
        table.add_row(f"score.{name}", str(points))
    console.print(table)
    for stay in profile.segments:
        until = stay.left_at.strftime("%Y-%m-%d %H:%M") if stay.left_at else "now"
        console.print(f"segment {stay.segment}: {stay.entered_at:%Y-%m-%d %H:%M} .. {until}")
    for record in profile.sources:
        console.print(
            f"source {record.source} ({record.source_key}), last seen {record.last_seen_at:%Y-%m-%d}"
        )


def register(app: typer.Typer) -> None:
    """Add ``crm customers`` to ``app``."""
    group.command("show")(show)
    app.add_typer(group, name="customers")
