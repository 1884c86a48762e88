"""``crm bounces import|list``: delivery status notifications read from a Maildir, and what they recorded."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from engine.cli.common import console, print_json, state
from engine.errors import ConfigValueError
from engine.responses import HARD, SOFT, import_bounces, list_bounces

group = typer.Typer(
    help="Bounces: delivery status notifications, hard and soft, and the suppression they lead to.\n\n"
    "Example: crm bounces import /var/mail/bounces",
    no_args_is_help=True,
)


def import_(
    folder: Path = typer.Argument(..., help="a Maildir (with cur, new and tmp) holding bounce messages"),
    include_seen: bool = typer.Option(
        False, "--all", help="read the messages already flagged Seen (processed before) too"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
) -> None:
    """Record the bounces of a Maildir of delivery status notifications; suppress by the bounce thresholds.

    Processed messages move to cur with the Seen flag; messages that are not
    DSNs, or name no message the engine sent, stay where they are and are listed.

    Example: crm bounces import /var/mail/bounces
    """
    config = state.config()
    summary = import_bounces(
        state.engine(config), folder, settings=config.settings.bounces, include_seen=include_seen
    )
    if as_json:
        print_json(summary.as_dict())
        return
    table = Table(title=f"bounces: {summary.folder}", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    for label in ("read", "hard", "soft", "already", "delivered", "suppressed", "rejected"):
        table.add_row(label, str(getattr(summary, label)))
    console.print(table)
    for reject in summary.rejects:
        console.print(f"left in place: {reject.file}: {reject.reason}", style="yellow", soft_wrap=True)


def show(
    code: str | None = typer.Option(None, "--code", help="hard or soft (default: both)"),
    limit: int = typer.Option(50, "--limit", min=0, max=1_000_000, help="how many to list, newest first"),
    as_json: bool = typer.Option(False, "--json", help="print as JSON"),
) -> None:
    """List recorded bounces, newest first.

    Example: crm bounces list --code hard --limit 20
    """
    if code is not None and code not in (HARD, SOFT):
        raise ConfigValueError("--code", "code", f"expected hard or soft, not {code!r}")
    config = state.config()
    count, entries = list_bounces(state.engine(config), code=code, limit=limit)
    if as_json:
        print_json({"count": count, "entries": entries})
        return
    table = Table(title=f"bounces: {count:,}")
    for column in ("when", "recipient", "code", "campaign", "state", "detail"):
        table.add_column(column, overflow="fold")
    for e in entries:
        table.add_row(
            f"{e.occurred_at:%Y-%m-%d %H:%M}", e.recipient or "-", e.code or "", e.campaign or "",
            e.state or "", e.detail or "",
        )  # fmt: skip
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``crm bounces`` to ``app``."""
    group.command("import")(import_)
    group.command("list")(show)
    app.add_typer(group, name="bounces")
