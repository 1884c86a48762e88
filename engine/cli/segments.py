"""``crm segments`` and ``crm segments show NAME``."""

from __future__ import annotations

import typer
from rich.table import Table

from engine.cli.common import console, print_json, state
from engine.segments import list_segments, segment_members, segment_sql
from engine.sql import dialect_of

group = typer.Typer(
    help="Segments defined in config.toml: counts, members and compiled SQL.\n\n"
    "Example: crm segments show lapsing_large --sql",
    invoke_without_command=True,
)


@group.callback()
def segments(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="print the list as JSON"),
) -> None:
    """List segments with member count, strategy and last refresh.

    Example: crm segments
    """
    if ctx.invoked_subcommand is not None:
        return
    config = state.config()
    infos = list_segments(state.engine(config), config)
    if as_json:
        print_json(infos)
        return
    table = Table(title=f"segments ({config.path})")
    for column in ("segment", "members", "strategy", "last refresh", "rule"):
        table.add_column(column, justify="right" if column == "members" else "left", overflow="fold")
    for info in infos:
        members = "-" if info.members is None else f"{info.members:,}"
        refreshed = info.refreshed_at.strftime("%Y-%m-%d %H:%M UTC") if info.refreshed_at else "never"
        if info.stale:
            refreshed += " [yellow](rule changed since)[/]"
        table.add_row(info.name, members, info.strategy or "-", refreshed, info.rule.strip())
    console.print(table)


def show(
    name: str = typer.Argument(..., help="segment name"),
    sql: bool = typer.Option(False, "--sql", help="print the compiled SQL instead of members"),
    dialect: str = typer.Option(
        "", "--dialect", help="sqlite or postgresql for --sql (default: the configured database)"
    ),
    limit: int = typer.Option(20, "--limit", min=0, max=1_000_000, help="how many members to list"),
    as_json: bool = typer.Option(False, "--json", help="print members as JSON"),
) -> None:
    """Show who is in a segment, or its compiled SQL.

    Example: crm segments show large --limit 50
    Example: crm segments show lapsing_large --sql --dialect postgresql
    """
    config = state.config()
    if sql:
        chosen = dialect or dialect_of(state.engine(config, require=False))
        typer.echo(segment_sql(config, name, chosen))
        return
    count, members = segment_members(state.engine(config), config, name, limit=limit)
    if as_json:
        print_json({"segment": name, "members": count, "first": members})
        return
    section = config.settings.segments[name]
    console.print(f"[bold]{name}[/]: {count:,} members — {section.rule.strip()}")
    if section.description:
        console.print(section.description)
    table = Table()
    for column in (
        "id",
        "external id",
        "name",
        "email",
        "phone",
        "ABC",
        "orders",
        "spent",
        "days since",
        "since",
    ):
        table.add_column(column, overflow="fold")
    for m in members:
        table.add_row(
            str(m.customer_id),
            m.external_id or "-",
            m.name,
            m.email or "-",
            m.phone or "-",
            m.abc_class or "-",
            str(m.orders_count if m.orders_count is not None else "-"),
            str(m.total_spent if m.total_spent is not None else "-"),
            str(m.days_since_last_order if m.days_since_last_order is not None else "-"),
            m.entered_at.strftime("%Y-%m-%d"),
        )
    console.print(table)
    if count > len(members):
        console.print(f"... and {count - len(members):,} more (--limit)")


def register(app: typer.Typer) -> None:
    """Add ``crm segments`` to ``app``."""
    group.command("show")(show)
    app.add_typer(group, name="segments")
