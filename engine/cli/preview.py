"""``crm preview CAMPAIGN --customer REF``."""

from __future__ import annotations

from pathlib import Path

import typer

from engine.campaigns import preview as render_preview
from engine.cli.common import console, state
from engine.reporting import check_output_file


def preview(
    campaign: str = typer.Argument(..., help="campaign key: the file name in campaigns/ without .toml"),
    customer: str = typer.Option(..., "--customer", help="external id, email, phone or #id"),
    step: int = typer.Option(0, "--step", min=0, max=1_000, help="which step, from 0"),
    out: Path | None = typer.Option(
        None, "--out", help="HTML file to write (default: previews/ beside config.toml)"
    ),
) -> None:
    """Render one step of a campaign for one customer into an HTML file to open in a browser.

    Example: crm preview winback --customer C000001
    Example: crm preview winback --customer anna@example.ru --step 1 --out /tmp/call.html
    """
    if out is not None:
        check_output_file(out, option="--out", create_folders=True)
    config = state.config()
    path = render_preview(state.engine(config), config, campaign, customer, step=step, out=out)
    console.print(f"written {path}", soft_wrap=True, markup=False)


def register(app: typer.Typer) -> None:
    """Add ``crm preview`` to ``app``."""
    app.command("preview")(preview)
