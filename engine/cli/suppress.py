"""``crm suppress add|remove|list``."""

from __future__ import annotations

import typer
from rich.table import Table

from engine.cli.common import console, print_json, state
from engine.contact_policy import list_suppressions, suppress, unsuppress

group = typer.Typer(
    help="The suppression list: addresses never contacted on a channel.\n\n"
    "Example: crm suppress add email anna@example.ru --reason unsubscribe",
    no_args_is_help=True,
)


def add(
    channel: str = typer.Argument(..., help="email, sms, call or post"),
    address: str = typer.Argument(..., help="email address, phone number or postal address"),
    reason: str = typer.Option("manual", "--reason", help="hard_bounce, unsubscribe, complaint or manual"),
    detail: str | None = typer.Option(None, "--detail", help="why, in words (e.g. the server's answer)"),
) -> None:
    """Suppress an address on a channel.

    Example: crm suppress add email anna@example.ru --reason unsubscribe
    Example: crm suppress add sms "8 916 123-45-67" --reason complaint --detail "asked by phone"
    """
    config = state.config()
    region = config.settings.engine.default_region
    added = suppress(
        state.engine(config), channel, address, reason, detail=detail, source="cli", region=region
    )
    console.print("suppressed" if added else "already suppressed")


def remove(
    channel: str = typer.Argument(..., help="email, sms, call or post"),
    address: str = typer.Argument(..., help="the suppressed address"),
) -> None:
    """Take an address off the suppression list of a channel.

    Example: crm suppress remove email anna@example.ru
    """
    config = state.config()
    unsuppress(state.engine(config), channel, address, region=config.settings.engine.default_region)
    console.print("removed")


def show(
    channel: str | None = typer.Option(None, "--channel", help="only this channel"),
    limit: int = typer.Option(50, "--limit", min=0, max=1_000_000, help="how many to list, newest first"),
    as_json: bool = typer.Option(False, "--json", help="print as JSON"),
) -> None:
    """List suppressed addresses, newest first.

    Example: crm suppress list --channel email
    """
    config = state.config()
    count, entries = list_suppressions(state.engine(config), channel, limit=limit)
    if as_json:
        print_json({"count": count, "entries": entries})
        return
    table = Table(title=f"suppressed: {count:,}")
    for column in ("channel", "address", "reason", "customer", "source", "since", "detail"):
        table.add_column(column, overflow="fold")
    for e in entries:
        table.add_row(
            e.channel,
            e.address,
            e.reason,
            str(e.customer_id or "-"),
            e.source,
            f"{e.created_at:%Y-%m-%d}",
            e.detail or "",
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``crm suppress`` to ``app``."""
    group.command("add")(add)
    group.command("remove")(remove)
    group.command("list")(show)
    app.add_typer(group, name="suppress")
