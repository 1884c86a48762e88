"""The ``crm`` application itself: its global options, its consoles, and commands loaded on first use.

This module is all that ``crm --help`` imports besides typer: every command
lives in its area's module (``engine.cli.<area>``), which is imported only
when one of its commands runs or shows its own help. ``COMMANDS`` names each
top-level command, the module that registers it and the line ``crm --help``
shows for it; tests/cli/test_startup.py checks that it matches what the
modules register, and that ``crm --help`` and ``crm validate`` import none of
the heavy libraries.
"""

from __future__ import annotations

import importlib
import os
import time
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import typer
import typer.main
from rich.console import Console
from typer._click.core import Command, Context
from typer._click.exceptions import UsageError
from typer._click.formatting import HelpFormatter
from typer.core import TyperCommand, TyperGroup

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from engine.config import Config


@dataclass(frozen=True)
class Listed:
    """A top-level command: the module that registers it and its line in ``crm --help``."""

    module: str
    help: str


#: every top-level command, in the order ``crm --help`` lists them, with the first sentence of its help
COMMANDS: dict[str, Listed] = {
    "init": Listed(
        "schema",
        "Create the database schema, or upgrade it to this version; start a workspace where there is none.",
    ),
    "validate": Listed(
        "schema",
        "Check config.toml, campaigns/*.toml and budgets/*.toml (rules, types, references); no data touched.",
    ),
    "schema": Listed("schema", "Print the JSON Schema of campaign files, for editors that complete TOML."),
    "import": Listed("imports", "Import customers, purchases and responses from CSV or XLSX files."),
    "refresh": Listed("refresh", "Recompute metrics, scores and segment memberships inside the database."),
    "segments": Listed("segments", "Segments defined in config.toml: counts, members and compiled SQL."),
    "customers": Listed("customers", "Look at customers."),
    "suppress": Listed("suppress", "The suppression list: addresses never contacted on a channel."),
    "preview": Listed(
        "preview", "Render one step of a campaign for one customer into an HTML file to open in a browser."
    ),
    "plan": Listed("campaigns", "Show what `crm run` would do, and what it would cost, without doing it."),
    "run": Listed("campaigns", "Run one campaign by hand: queue its audience, then send what is due."),
    "runs": Listed(
        "campaigns", "List campaign runs, newest first: id, campaign, when due, state and rows per state."
    ),
    "event": Listed("campaigns", "Record a custom event that campaigns with on_event fire on."),
    "budget": Listed(
        "budget",
        "The contact matrix and budget of a period: plan, approved (budgets/*.toml), actual, variance.",
    ),
    "loyalty": Listed(
        "loyalty", "Loyalty programmes: earn and spend points, balances, tiers, expiry, liability."
    ),
    "bounces": Listed(
        "bounces", "Bounces: delivery status notifications, hard and soft, and the suppression they lead to."
    ),
    "report": Listed(
        "report",
        "Evaluate campaigns and the programme: results per campaign and variant with uplift over the "
        "control group, churn, revenue and profitability per customer, the lifecycle funnel.",
    ),
    "api-keys": Listed(
        "api_keys", "API keys of the shop's systems (POS, web shop), scoped to loyalty and/or events."
    ),
    "serve": Listed(
        "serve",
        "Serve the HTTP API until stopped (Ctrl+C); the OpenAPI schema is at /openapi.json, docs at /docs.",
    ),
    "worker": Listed(
        "worker", "Send what the outbox holds: emails, SMS, call lists, letters and meeting lists."
    ),
    "resend-failed": Listed(
        "worker", "Queue the failed messages of a run again (not bounced ones); a worker sends them."
    ),
    "scheduler": Listed(
        "scheduler",
        "Fire campaigns on their schedules: a long-running process; a second one waits as a hot standby.",
    ),
    "demo": Listed(
        "demo",
        "Create a fresh SQLite workspace with a synthetic shop, refresh it, run its campaigns, print it all.",
    ),
}

_RICH: Literal["rich"] = "rich"
_IMPORTED = time.monotonic()


def _process_age() -> float | None:
    """Seconds since this process started, from /proc (Linux); None where there is none."""
    try:
        with open(f"/proc/{os.getpid()}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime", encoding="ascii") as uptime:
            up = float(uptime.read().split()[0])
        ticks = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
    return max(0.0, up - int(fields[19]) / ticks)  # field 22 of stat: start time in clock ticks after boot


#: the most start-up before this module is imported; a process older than that was a shell that exec'd crm
_START_UP = 5.0


def elapsed() -> float:
    """Seconds the whole command has taken so far, start-up included (what a command says it took).

    From the process's start, unless the process was a script's shell that
    ran other work before it exec'd ``crm`` (``./scripts/demo`` installs
    first): then from when ``crm`` began importing.
    """
    since_import = time.monotonic() - _IMPORTED
    age = _process_age()
    return age if age is not None and age <= since_import + _START_UP else since_import


def area_group(module: str) -> TyperGroup:
    """The commands ``engine.cli.<module>`` registers, as a click group (the module is imported now)."""
    area = importlib.import_module(f"engine.cli.{module}")
    registry = typer.Typer(rich_markup_mode=_RICH, add_completion=False)
    area.register(registry)
    return typer.main.get_group(registry)


class LazyGroup(TyperGroup):
    """The top-level group: lists ``COMMANDS`` without importing them, loads an area on first use."""

    _listing = False

    def list_commands(self, ctx: Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        listed = COMMANDS.get(cmd_name)
        if listed is None:
            return None
        if self._listing:  # crm --help: the line, not the command
            return TyperCommand(cmd_name, help=listed.help, short_help=listed.help)
        for name, command in area_group(listed.module).commands.items():
            self.commands.setdefault(name, command)
        return self.commands.get(cmd_name)

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def resolve_command(self, ctx: Context, args: list[str]) -> tuple[str | None, Command | None, list[str]]:
        try:
            return self._click_resolve_command(ctx, args)
        except UsageError as error:
            matches = get_close_matches(args[0], list(COMMANDS)) if args else []
            if matches:
                error.message = f"{error.message.rstrip('.')}. Did you mean {', '.join(map(repr, matches))}?"
            raise


app = typer.Typer(
    name="crm",
    cls=LazyGroup,
    help=(
        "crm-engine: customers, metrics, scores and segments from TOML files.\n\n"
        "Example: crm import customers shop.csv --source shop && crm refresh && crm segments"
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=_RICH,
    pretty_exceptions_enable=False,
)


class FittingConsole(Console):
    """A console whose tables fit the terminal: a table wider than it is printed one record at a time.

    Rich would otherwise squeeze every column and split names, phones and
    e-mail addresses mid-word; a record (``column: value`` lines) keeps each
    value whole. Every command prints through this console, so every table fits.
    """

    def print(self, *objects: Any, **kwargs: Any) -> None:
        super().print(*(self._fitted(item) for item in objects), **kwargs)

    def _fitted(self, item: Any) -> Any:
        from rich.measure import Measurement
        from rich.table import Table

        if not isinstance(item, Table) or not item.columns:
            return item
        if Measurement.get(self, self.options.update_width(10_000), item).maximum <= self.width:
            return item
        return _records(item)


def _records(table: Any) -> Any:
    """``table`` as one block of ``column: value`` lines per row (empty values left out)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts: list[Any] = []
    if table.title:
        parts.append(
            table.title if not isinstance(table.title, str) else Text.from_markup(table.title, style="bold")
        )
    headers = [" ".join(str(column.header).split()) for column in table.columns]
    for row in zip(*(list(column.cells) for column in table.columns), strict=True):
        record = Table.grid(padding=(0, 1))
        record.add_column(style="bold", no_wrap=True)
        record.add_column(overflow="fold")
        for header, cell in zip(headers, row, strict=True):
            if cell not in ("", None, "-"):
                record.add_row(f"{header}:" if header else "", cell)
        parts.extend([record, Text("")])
    return Group(*parts)


console = FittingConsole(highlight=False)
console_err = FittingConsole(stderr=True, highlight=False)


class State:
    """Options given before the command (``crm --config other.toml segments``)."""

    config_path: Path | None = None

    def config(self) -> Config:
        """The checked configuration."""
        from engine.config import load_config

        return load_config(self.config_path)

    def engine(self, config: Config, *, require: bool = True) -> Engine:
        """The database of ``config``; with ``require``, its schema must exist."""
        from engine.db import make_engine, require_schema

        engine = make_engine(config.database_url)
        if require:
            require_schema(engine)
        return engine


state = State()


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("crm-engine")
        except PackageNotFoundError:  # run from a source tree that is not installed
            number = "unknown (not installed)"
        console.print(f"crm-engine {number}", markup=False)
        raise typer.Exit(0)


@app.callback()
def _global(
    config: Path | None = typer.Option(
        None,
        "--config",
        "-c",
        help="config.toml to use (default: $CRM_CONFIG, else ./config.toml).",
        envvar="CRM_CONFIG",
        show_envvar=True,
    ),
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_print_version, help="print the version and exit"
    ),
) -> None:
    """crm-engine: customers, metrics, scores and segments from TOML files."""
    state.config_path = config


def command_tree() -> TyperGroup:
    """The whole ``crm`` command with every area loaded (for tests and documentation)."""
    root = typer.main.get_group(app)
    context = Context(root)
    for name in COMMANDS:
        root.get_command(context, name)
    return root


__all__: list[Any] = [
    "COMMANDS",
    "LazyGroup",
    "State",
    "app",
    "command_tree",
    "console",
    "console_err",
    "elapsed",
    "state",
]
