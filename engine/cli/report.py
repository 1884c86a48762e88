"""``crm report``: did it pay off? Campaign results with uplift, programme indicators, HTML reports."""

from __future__ import annotations

import typer

from engine.cli import report_campaigns, report_programme

report_app = typer.Typer(
    help=(
        "Evaluate campaigns and the programme: results per campaign and variant with uplift over the "
        "control group, churn, revenue and profitability per customer, the lifecycle funnel.\n\n"
        "Example: crm report campaigns winback"
    ),
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add ``crm report`` and its subcommands to ``app``."""
    report_campaigns.register(report_app)
    report_programme.register(report_app)
    app.add_typer(report_app, name="report")
