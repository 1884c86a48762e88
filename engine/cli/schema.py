"""``crm init`` and ``crm validate``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from engine.budget import budgets_folder, load_budgets
from engine.campaigns import campaign_json_schema, campaigns_folder, load_campaigns
from engine.cli.common import console, console_err, state
from engine.errors import ConfigValueError


def init(
    folder: Path | None = typer.Argument(
        None, help="the workspace folder (default: where --config or $CRM_CONFIG points, else here)"
    ),
) -> None:
    """Create the database schema, or upgrade it to this version; start a workspace where there is none.

    In a folder without config.toml, the shipped example is copied there first
    (config.toml, campaigns/ with their templates, budgets/): a working
    workspace that crm validate accepts. Nothing that exists is overwritten.

    Example: crm init my-shop    (a new workspace in my-shop/, its SQLite database created)
    Example: crm init            (the schema of the database config.toml names)
    Example: CRM_DATABASE_URL=postgresql://crm@db/crm crm init
    """
    from engine.db import upgrade
    from engine.settings import create_workspace

    if folder is not None:
        if state.config_path is not None:
            raise ConfigValueError(
                "DIR", "DIR", "give either a folder or --config (or $CRM_CONFIG), not both"
            )
        state.config_path = folder / "config.toml"
    config_file = state.config_path or Path(os.environ.get("CRM_CONFIG") or "config.toml")
    if not config_file.exists():
        created = create_workspace(config_file.parent)
        state.config_path = config_file.parent / "config.toml"
        for path in created:
            console.print(f"created {path}", markup=False, soft_wrap=True)
    config = state.config()
    engine = state.engine(config, require=False)
    before, after = upgrade(engine)
    where = engine.url.render_as_string(hide_password=True)
    if before == after:
        console.print(f"schema of {where} is up to date (revision {after})", markup=False)
    else:
        console.print(
            f"schema of {where} upgraded from {before or 'nothing'} to revision {after}", markup=False
        )
    if folder is not None:
        console.print(
            f"next: cd {folder} && crm validate && crm import customers FILE --source NAME", markup=False
        )


def validate() -> None:
    """Check config.toml, campaigns/*.toml and budgets/*.toml (rules, types, references); no data touched.

    Warnings (such as email sent through SMTP without an https links.base_url,
    so without RFC 8058 one-click unsubscribe) are printed but do not fail.

    Example: crm validate
    Example: crm --config staging.toml validate
    """
    from engine.outbox import email_warnings

    config = state.config()
    campaigns = load_campaigns(config)
    console.print(
        f"{config.path}: ok — {len(config.segments)} segments, {len(config.scores)} scores, "
        f"{len(config.metric_filters)} custom metrics"
    )
    console.print(
        f"{campaigns_folder(config)}: ok — {len(campaigns)} campaigns", soft_wrap=True, markup=False
    )
    budgets = load_budgets(config, campaigns)
    periods = ", ".join(budgets.labels()) or "none"
    console.print(
        f"{budgets_folder(config)}: ok — {len(budgets.files)} budgets ({periods})",
        soft_wrap=True,
        markup=False,
    )
    email = config.settings.channels.email
    if email.dkim is not None:
        console.print(
            f"email: signed with DKIM, selector {email.dkim.selector}, domain {email.dkim_domain} "
            f"(publish the public key as TXT {email.dkim.selector}._domainkey.{email.dkim_domain})",
            soft_wrap=True,
            markup=False,
        )
    for warning in email_warnings(config):
        console_err.print(f"warning: {warning}", soft_wrap=True, markup=False)


def schema() -> None:
    """Print the JSON Schema of campaign files, for editors that complete TOML.

    Example: crm schema > campaign.schema.json
    """
    typer.echo(json.dumps(campaign_json_schema(), indent=2, ensure_ascii=False))


def register(app: typer.Typer) -> None:
    """Add the commands of this module to ``app``."""
    app.command("init")(init)
    app.command("validate")(validate)
    app.command("schema")(schema)
