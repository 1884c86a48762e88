"""``crm api-keys create|list|revoke``: the keys the shop's systems call the HTTP API with."""

from __future__ import annotations

import typer
from rich.table import Table

from engine.api import create_api_key, list_api_keys, revoke_api_key
from engine.cli.common import console, print_json, state

group = typer.Typer(
    name="api-keys",
    help="API keys of the shop's systems (POS, web shop), scoped to loyalty and/or events.\n\n"
    "Example: crm api-keys create pos-moscow --scope loyalty",
    no_args_is_help=True,
)


def create(
    name: str = typer.Argument(..., help="which system holds the key, e.g. pos-moscow"),
    scope: list[str] = typer.Option(..., "--scope", "-s", help="loyalty or events; repeat for both"),
    as_json: bool = typer.Option(False, "--json", help="print as JSON"),
) -> None:
    """Create a key and print it once: only its hash is stored, so copy it now.

    Example: crm api-keys create pos-moscow --scope loyalty
    Example: crm api-keys create web-shop --scope loyalty --scope events
    """
    config = state.config()
    created = create_api_key(state.engine(config), name, scope)
    if as_json:
        print_json({"name": created.info.name, "scopes": created.info.scopes, "key": created.key})
        return
    console.print(f"API key {created.info.name} ({', '.join(created.info.scopes)}):")
    console.print(created.key, soft_wrap=True)
    console.print(
        "[dim]shown once: send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'[/]",
    )


def show(as_json: bool = typer.Option(False, "--json", help="print as JSON")) -> None:
    """List the keys: name, scopes, when created, last used and revoked (never the secrets).

    Example: crm api-keys list
    """
    config = state.config()
    keys = list_api_keys(state.engine(config))
    if as_json:
        print_json(keys)
        return
    table = Table(title=f"API keys: {len(keys)}", title_justify="left")
    for column in ("name", "prefix", "scopes", "created", "last used", "revoked"):
        table.add_column(column)
    for key in keys:
        table.add_row(
            key.name,
            f"crm_{key.prefix}_...",
            ", ".join(key.scopes),
            f"{key.created_at:%Y-%m-%d %H:%M}",
            f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never",
            f"{key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "",
        )
    console.print(table)


def revoke(name: str = typer.Argument(..., help="the key's name")) -> None:
    """Revoke a key: every request with it is refused from now on (401).

    Example: crm api-keys revoke pos-moscow
    """
    config = state.config()
    revoked = revoke_api_key(state.engine(config), name)
    assert revoked.revoked_at is not None
    console.print(f"API key {revoked.name} revoked at {revoked.revoked_at:%Y-%m-%d %H:%M} UTC")


def register(app: typer.Typer) -> None:
    """Add ``crm api-keys`` and its commands to ``app``."""
    group.command("create")(create)
    group.command("list")(show)
    group.command("revoke")(revoke)
    app.add_typer(group, name="api-keys")
