"""``crm init`` and ``crm validate``."""

from __future__ import annotations

import typer

from engine.cli.app import console, state
from engine.schema import upgrade


def init() -> None:
    """Create the database schema, or upgrade it to this version.

    Example: crm init            (SQLite file from config.toml)
    Example: CRM_DATABASE_URL=postgresql://crm@db/crm crm init
    """
    config = state.config()
    engine = state.engine(config, require=False)
    before, after = upgrade(engine)
    where = engine.url.render_as_string(hide_password=True)
    if before == after:
        console.print(f"schema of {where} is up to date (revision {after})")
    else:
        console.print(f"schema of {where} upgraded from {before or 'nothing'} to revision {after}")


def validate() -> None:
    """Check config.toml (every rule, type and reference) without touching any data.

    Example: crm validate
    Example: crm --config staging.toml validate
    """
    config = state.config()
    console.print(
        f"{config.path}: ok — {len(config.segments)} segments, {len(config.scores)} scores, "
        f"{len(config.metric_filters)} custom metrics"
    )


def register(app: typer.Typer) -> None:
    """Add the commands of this module to ``app``."""
    app.command("init")(init)
    app.command("validate")(validate)
