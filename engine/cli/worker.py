"""``crm worker`` and ``crm resend-failed RUN``."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from engine.cli.common import console, print_json, state
from engine.outbox import DrainSummary, drain, resend_failed


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop`` (finish the batch in flight); a second one acts as usual."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()
        signal.signal(signum, previous[signal.Signals(signum)])

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, action in previous.items():
            signal.signal(sig, action)


def _print_summary(summary: DrainSummary) -> None:
    table = Table(title=f"worker {summary.worker_id}")
    table.add_column("outcome")
    table.add_column("rows", justify="right")
    rows = [
        ("sent", summary.sent),
        ("  of which delivered (Maildir)", summary.delivered),
        ("retrying later", summary.retrying),
        ("failed", summary.failed),
        ("bounced (suppressed)", summary.bounced),
        ("expired", summary.expired),
        ("suppressed", summary.suppressed),
        ("no consent", summary.no_consent),
        ("no address", summary.no_address),
        ("recovered: queued again", summary.requeued),
        ("recovered: sent", summary.recovered_sent),
    ]
    for name, count in rows:
        table.add_row(name, f"{count:,}")
    console.print(table)
    reason = {"idle": "nothing left to send", "stop": "asked to stop", "fenced": "declared dead by others"}
    console.print(f"stopped: {reason.get(summary.stopped_by, summary.stopped_by)}", markup=False)


def worker(
    until_idle: bool = typer.Option(
        False, "--until-idle", help="return once nothing is due (for cron and batch jobs)"
    ),
    channel: list[str] = typer.Option(
        [], "--channel", help="drain only this channel (repeatable): email, sms, call, post, meeting"
    ),
    run: int | None = typer.Option(None, "--run", min=1, max=2**31 - 1, help="drain only this campaign run"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
) -> None:
    """Send what the outbox holds: emails, SMS, call lists, letters and meeting lists.

    Runs until SIGTERM or Ctrl-C (it finishes and records the batches in
    flight, then exits 0), or with --until-idle until nothing is due. Any
    number of workers may run at once, on any number of hosts (PostgreSQL);
    each message is sent once.

    Example: crm worker --until-idle
    Example: crm worker --channel email --run 12
    """
    config = state.config()
    engine = state.engine(config)
    stop = threading.Event()
    show_progress = console.is_terminal and not as_json
    with (
        _stop_on_signals(stop),
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=not show_progress,
            transient=True,
        ) as bar,
    ):
        task = bar.add_task("sending", total=None)

        def progress(summary: DrainSummary) -> None:
            bar.update(
                task,
                total=max(summary.due, summary.processed),
                completed=summary.processed,
                description=(
                    f"sent {summary.sent:,}  failed {summary.failed:,}  retrying {summary.retrying:,}"
                ),
            )

        summary = drain(
            engine,
            config,
            only=channel or None,
            until_idle=until_idle,
            stop=stop,
            run_id=run,
            progress=progress if show_progress else None,
        )
    if as_json:
        print_json(summary)
        return
    _print_summary(summary)


def resend(
    run: int = typer.Argument(
        ..., min=1, max=2**31 - 1, help="the campaign run whose failed messages to send again"
    ),
) -> None:
    """Queue the failed messages of a run again (not bounced ones); a worker sends them.

    Example: crm resend-failed 12 && crm worker --until-idle --run 12
    """
    config = state.config()
    count = resend_failed(state.engine(config), run)
    console.print(f"{count:,} failed messages of run {run} queued again")


def register(app: typer.Typer) -> None:
    """Add ``crm worker`` and ``crm resend-failed`` to ``app``."""
    app.command("worker")(worker)
    app.command("resend-failed")(resend)
