"""Running real workers and a real SMTP sink as processes, as production does."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.channels.smtp_servers import free_port

ROOT = Path(__file__).resolve().parents[2]
CRM = Path(sys.executable).parent / "crm"


@contextmanager
def smtp_sink(received: Path) -> Iterator[int]:
    """An SMTP sink process recording every accepted Message-ID in ``received``; yields its port."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.outbox.smtp_sink", str(port), str(received)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        yield port
    finally:
        process.terminate()
        process.wait(timeout=60)


def smtp_email(port: int, *, batch_size: int = 1000, concurrency: int = 16) -> str:
    """``[channels.email]`` lines sending to the SMTP server on ``port``."""
    return (
        f'transport = "smtp"\nbatch_size = {batch_size}\nconcurrency = {concurrency}\n\n'
        f'[channels.email.smtp]\nhost = "127.0.0.1"\nport = {port}\ntimeout = 30\n'
    )


def start_worker(log: Path, *args: str) -> subprocess.Popen[str]:
    """``crm worker ARGS`` as a process (config and database from the environment)."""
    return subprocess.Popen(
        [str(CRM), "worker", *args],
        cwd=ROOT,
        stdout=log.open("w", encoding="utf-8"),
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def received_ids(path: Path) -> list[str]:
    """The Message-IDs the sink accepted, in order."""
    return path.read_text(encoding="ascii").split() if path.exists() else []


def just_now() -> dt.datetime:
    """A minute ago: rows due now for a worker on the real clock."""
    return dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
