"""Workers that died: who they were, and what becomes of the rows they held.

Every worker registers in ``outbox_worker`` and beats a heartbeat. A worker
is dead when its heartbeat is older than :data:`DEAD_AFTER`, or, on the
same host, when its process no longer exists (found at once after a
``kill -9``). Recovery, at every worker's start and periodically, settles
the rows a dead worker held:

* ``sending`` -> ``queued``: the server never got the whole message (the
  worker had not reached the point of no return), so it is sent again;
* ``committing`` -> ``sent``: the worker had passed the point of no return
  (the server had the final ``.``), so sending again would make a duplicate;
  it is recorded as sent when the worker last touched it, at the unit cost in
  force that business day for its campaign and segment (as the worker records).

A dead worker is marked stopped; if it was only slow, its next heartbeat
finds that out and it stops claiming (it is fenced), and whatever it still
records about rows recovery settled is ignored.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import socket
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, bindparam, delete, insert, select, update

from engine.channels import message_id
from engine.clock import utcnow
from engine.config import Config
from engine.db import installation_id, write_transaction
from engine.models import COMMITTING, OUTBOX, QUEUED, RUN, SENDING, SENT, WORKER
from engine.outbox.record import SendPrices

HEARTBEAT_EVERY = 10.0  # seconds between heartbeats
DEAD_AFTER = dt.timedelta(minutes=2)  # a heartbeat older than this: the worker is dead
FORGET_AFTER = dt.timedelta(days=7)  # stopped workers are deleted after this
REQUEUED = "requeued: its worker stopped before handing the message over"
RECOVERED_SENT = "recovered as sent: its worker stopped after the message passed the point of no return"


@dataclass
class RecoverySummary:
    """What recovery did."""

    requeued: int = 0
    recovered_sent: int = 0
    dead_workers: list[str] = field(default_factory=list)


def this_host() -> str:
    """The name of this host, as workers record it."""
    return socket.gethostname()[:200]


def new_worker_id() -> str:
    """A worker id unique across hosts and restarts: ``host:pid:random``."""
    return f"{this_host()[:80]}:{os.getpid()}:{secrets.token_hex(3)}"


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (a zombie, killed but not reaped, is not alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def register_worker(engine: Engine, worker_id: str, now: dt.datetime) -> None:
    """Record a worker starting on this host."""
    with write_transaction(engine) as connection:
        connection.execute(
            insert(WORKER).values(
                id=worker_id, host=this_host(), pid=os.getpid(), started_at=now, heartbeat_at=now
            )
        )


def beat(engine: Engine, worker_id: str, now: dt.datetime) -> bool:
    """Record that the worker is alive; False when it was declared dead meanwhile (it must stop)."""
    with write_transaction(engine) as connection:
        found = connection.execute(
            update(WORKER)
            .where(WORKER.c.id == worker_id, WORKER.c.stopped_at.is_(None))
            .values(heartbeat_at=now)
        ).rowcount
    return bool(found)


def retire_worker(engine: Engine, worker_id: str, now: dt.datetime) -> None:
    """Record that the worker stopped."""
    with write_transaction(engine) as connection:
        connection.execute(
            update(WORKER)
            .where(WORKER.c.id == worker_id, WORKER.c.stopped_at.is_(None))
            .values(stopped_at=now)
        )


def dead_workers(
    engine: Engine, now: dt.datetime, *, dead_after: dt.timedelta = DEAD_AFTER, exclude: str | None = None
) -> list[str]:
    """Workers not marked stopped that are dead: silent too long, or gone from this host."""
    host, own_pid = this_host(), os.getpid()
    with engine.connect() as connection:
        workers = connection.execute(
            select(WORKER.c.id, WORKER.c.host, WORKER.c.pid, WORKER.c.heartbeat_at).where(
                WORKER.c.stopped_at.is_(None)
            )
        ).all()
    return [
        w.id
        for w in workers
        if w.id != exclude
        and (
            w.heartbeat_at < now - dead_after
            or (w.host == host and w.pid != own_pid and not process_alive(w.pid))
        )
    ]


def settle(
    engine: Engine,
    config: Config,
    worker_ids: Collection[str],
    now: dt.datetime,
    *,
    installation: str | None = None,
) -> RecoverySummary:
    """Settle the rows ``worker_ids`` held (sending: queued again; committing: sent) and mark them stopped.

    An email recorded as sent gets the Message-ID the dead worker gave it:
    the same key and ``installation`` (read from the database when not given).
    """
    summary = RecoverySummary(dead_workers=sorted(worker_ids))
    if not worker_ids:
        return summary
    domain = config.settings.channels.email.domain
    installation = installation if installation is not None else installation_id(engine)
    prices = SendPrices.from_config(config)
    held = OUTBOX.c.claimed_by.in_(list(worker_ids))
    with write_transaction(engine) as connection:
        summary.requeued = connection.execute(
            update(OUTBOX)
            .where(OUTBOX.c.state == SENDING, held)
            .values(state=QUEUED, claimed_by=None, detail=REQUEUED, updated_at=now)
        ).rowcount
        committing = connection.execute(
            select(
                OUTBOX.c.id,
                OUTBOX.c.run_id,
                OUTBOX.c.customer_id,
                OUTBOX.c.step,
                OUTBOX.c.channel,
                OUTBOX.c.updated_at,
                RUN.c.campaign,
                RUN.c.segment,
            )
            .select_from(OUTBOX.outerjoin(RUN, RUN.c.id == OUTBOX.c.run_id))
            .where(OUTBOX.c.state == COMMITTING, held)
        ).all()
        if committing:
            connection.execute(
                update(OUTBOX)
                .where(OUTBOX.c.id == bindparam("row_id"), OUTBOX.c.state == COMMITTING)
                .values(
                    state=SENT,
                    detail=RECOVERED_SENT,
                    sent_at=bindparam("new_sent_at"),
                    reference=bindparam("new_reference"),
                    unit_cost=bindparam("new_unit_cost"),
                    updated_at=now,
                ),
                [
                    {
                        "row_id": row.id,
                        "new_sent_at": row.updated_at,
                        "new_reference": message_id(
                            f"{row.run_id}:{row.customer_id}:{row.step}", domain, installation=installation
                        )
                        if row.channel == "email"
                        else None,
                        "new_unit_cost": prices.at(
                            row.channel, row.updated_at, campaign=row.campaign, segment=row.segment
                        ),
                    }
                    for row in committing
                ],
            )
        summary.recovered_sent = len(committing)
        connection.execute(
            update(WORKER)
            .where(WORKER.c.id.in_(list(worker_ids)), WORKER.c.stopped_at.is_(None))
            .values(stopped_at=now)
        )
    return summary


def recover(
    engine: Engine,
    config: Config,
    *,
    now: dt.datetime | None = None,
    dead_after: dt.timedelta = DEAD_AFTER,
    exclude: str | None = None,
    installation: str | None = None,
) -> RecoverySummary:
    """Find dead workers and settle the rows they held; forget workers stopped long ago.

    ``installation`` is the database's installation id when the caller has
    read it already (a worker reads it once); else it is read when needed.
    """
    now = now or utcnow()
    dead = dead_workers(engine, now, dead_after=dead_after, exclude=exclude)
    summary = settle(engine, config, dead, now, installation=installation)
    with write_transaction(engine) as connection:
        connection.execute(delete(WORKER).where(WORKER.c.stopped_at < now - FORGET_AFTER))
    return summary


class Heartbeat:
    """Beats a worker's heartbeat from a thread of its own, so a busy event loop does not look dead."""

    def __init__(
        self,
        engine: Engine,
        worker_id: str,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        every: float = HEARTBEAT_EVERY,
    ) -> None:
        self.engine = engine
        self.worker_id = worker_id
        self.clock = clock
        self.every = every
        self.fenced = threading.Event()  # set when others declared this worker dead
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat {worker_id}", daemon=True)

    def start(self) -> None:
        """Start beating."""
        self._thread.start()

    def stop(self) -> None:
        """Stop beating and wait for the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                alive = beat(self.engine, self.worker_id, self.clock())
            except Exception:  # the database is away for a moment: beat again later
                continue
            if not alive:
                self.fenced.set()
                return
