"""Draining the outbox: claim a batch, compose it, send it, record every row; again, for every channel.

:func:`drain` is what ``crm worker`` runs. One worker drains every channel
side by side (one loop per channel on one event loop); any number of
workers, on any number of hosts, share the work through the database (see
:mod:`engine.outbox.claim`). Per channel, from ``[channels.NAME]``:
``batch_size`` rows are claimed at a time (fewer when ``rate_per_second``
allows fewer a second), a token bucket keeps to ``rate_per_second``, and
the channel itself sends with ``concurrency`` connections.

The worker reads the database's installation id once (every Message-ID
mixes it in, see :func:`engine.channels.message_id`), registers, beats a
heartbeat, and recovers the rows of dead workers at start and every
:data:`RECOVER_EVERY` seconds
(:mod:`engine.outbox.recovery`). When ``stop`` is set (SIGTERM, SIGINT), it
finishes and records the batches in flight and returns. With
``until_idle`` it returns as soon as no row is due (rows scheduled later,
such as retries, do not count).

Everything runs on one thread (the heartbeat has its own): database calls
are short, and keeping them off pool threads keeps the moment between a
row's journal entry and its hand-over as short as it can be.

A channel whose destination cannot be written at all (a Maildir or list
folder that is missing, read only or full: :class:`~engine.errors.OutputError`)
stops the worker: the rows of the batch go back to ``queued`` as they were
(the attempt is not counted), nothing is recorded as sent that was not
written, and the error, naming the folder and what to fix, is raised
(``crm worker`` exits 1). Once the folder is fixed, the next worker sends
them; what was written before the fault is recognised, not written twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, update

from engine.channels import (
    LIST_CHANNELS,
    Channel,
    DeliveryResult,
    DeliveryStatus,
    business_day,
    check_channel_name,
    delivers_on_send,
    open_channel,
)
from engine.clock import utcnow
from engine.config import Config
from engine.db import installation_id, write_transaction
from engine.errors import OutputError
from engine.models import (
    BOUNCED,
    DELIVERED,
    EXPIRED,
    FAILED,
    NO_ADDRESS,
    NO_CONSENT,
    OUTBOX,
    QUEUED,
    SENDING,
    SENT,
    SUPPRESSED,
)
from engine.outbox.claim import ClaimedRow, claim, count_due
from engine.outbox.compose import Batch, Composer
from engine.outbox.journal import OutboxJournal
from engine.outbox.rate_limit import TokenBucket
from engine.outbox.record import Outcome, SendPrices, decide, record, suppress_bounces
from engine.outbox.recovery import (
    RECOVERED_SENT,
    Heartbeat,
    RecoverySummary,
    new_worker_id,
    recover,
    register_worker,
    settle,
)
from engine.settings import CHANNEL_NAMES, parse_duration

RECOVER_EVERY = 30.0  # seconds between looks for dead workers
POLL_EVERY = 1.0  # seconds between looks for due rows when there were none

Clock = Callable[[], dt.datetime]


@dataclass
class DrainSummary:
    """What one worker did: how many rows ended in each state, and what it recovered."""

    worker_id: str
    due: int = 0  # rows due when the worker started (a progress bar's total)
    sent: int = 0  # includes delivered
    delivered: int = 0
    failed: int = 0
    bounced: int = 0
    retrying: int = 0  # temporary failures queued again for later
    expired: int = 0
    suppressed: int = 0
    no_consent: int = 0
    no_address: int = 0
    requeued: int = 0  # rows of dead workers queued again
    recovered_sent: int = 0  # rows of dead workers recorded as sent
    batches: int = 0
    stopped_by: str = "idle"  # idle | stop | fenced
    by_channel: dict[str, int] = field(default_factory=dict)  # rows processed per channel

    @property
    def processed(self) -> int:
        """Rows this worker settled or put back for a retry."""
        return (
            self.sent
            + self.failed
            + self.bounced
            + self.retrying
            + self.expired
            + self.suppressed
            + self.no_consent
            + self.no_address
        )

    def add(self, channel: str, outcomes: Sequence[Outcome]) -> None:
        """Count a batch's outcomes."""
        counters = {
            SENT: "sent",
            DELIVERED: "delivered",
            FAILED: "failed",
            BOUNCED: "bounced",
            QUEUED: "retrying",
            EXPIRED: "expired",
            SUPPRESSED: "suppressed",
            NO_CONSENT: "no_consent",
            NO_ADDRESS: "no_address",
        }
        for outcome in outcomes:
            name = counters.get(outcome.state, "failed")
            setattr(self, name, getattr(self, name) + 1)
            if outcome.state == DELIVERED:
                self.sent += 1
        self.by_channel[channel] = self.by_channel.get(channel, 0) + len(outcomes)
        self.batches += 1

    def add_recovery(self, recovered: RecoverySummary) -> None:
        """Count what recovery settled."""
        self.requeued += recovered.requeued
        self.recovered_sent += recovered.recovered_sent


class _Drainer:
    """One worker's drain: the loops of its channels on one event loop."""

    def __init__(
        self,
        engine: Engine,
        config: Config,
        summary: DrainSummary,
        *,
        names: Sequence[str],
        injected: Mapping[str, Channel],
        until_idle: bool,
        stop: threading.Event,
        fenced: threading.Event,
        run_id: int | None,
        progress: Callable[[DrainSummary], None] | None,
        clock: Clock,
        poll_every: float,
        recover_every: float,
        installation: str,
    ) -> None:
        self.engine = engine
        self.config = config
        self.summary = summary
        self.worker_id = summary.worker_id
        self.names = names
        self.injected = injected
        self.until_idle = until_idle
        self.stop = stop
        self.fenced = fenced
        self.run_id = run_id
        self.progress = progress
        self.clock = clock
        self.poll_every = poll_every
        self.recover_every = recover_every
        self.installation = installation
        self.composer = Composer(engine, config, installation=installation)
        self.prices = SendPrices.from_config(config)
        self.journal = OutboxJournal(engine, self.worker_id, clock=clock)
        self._opened: dict[str, tuple[dt.date, Channel]] = {}

    def stopping(self) -> bool:
        if self.fenced.is_set():
            self.summary.stopped_by = "fenced"
            return True
        if self.stop.is_set():
            self.summary.stopped_by = "stop"
            return True
        return False

    async def run(self) -> None:
        loops = [asyncio.create_task(self._drain_channel(name)) for name in self.names]
        maintenance = asyncio.create_task(self._maintain())
        try:
            await asyncio.gather(*loops)
        except BaseException:
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            raise
        finally:
            maintenance.cancel()
            await asyncio.gather(maintenance, return_exceptions=True)
            self.journal.close()
            unclosed = await self._close_all()
        if unclosed is not None:
            raise unclosed

    async def _close_all(self) -> OutputError | None:
        """Close every channel opened; the first that could not write its files (else None)."""
        first: OutputError | None = None
        for name in list(self._opened):
            try:
                await self._close(name)
            except OutputError as exc:
                first = first or exc
        return first

    async def _pause(self, seconds: float) -> None:
        """Sleep, waking early when asked to stop."""
        deadline = asyncio.get_running_loop().time() + seconds
        while not self.stopping():
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return
            await asyncio.sleep(min(left, 0.1))

    async def _maintain(self) -> None:
        while True:
            await asyncio.sleep(self.recover_every)
            self.summary.add_recovery(
                recover(
                    self.engine,
                    self.config,
                    now=self.clock(),
                    exclude=self.worker_id,
                    installation=self.installation,
                )
            )

    async def _channel(self, name: str, now: dt.datetime) -> Channel:
        """The instance of ``name``: injected, or opened from config (list channels: one per day)."""
        if name in self.injected:
            return self.injected[name]
        day = business_day(self.config, now)
        opened = self._opened.get(name)
        if opened is not None and (name not in LIST_CHANNELS or opened[0] == day):
            return opened[1]
        await self._close(name)  # yesterday's lists get their XLSX copies
        channel = open_channel(name, self.config, day=day)
        self._opened[name] = (day, channel)
        return channel

    async def _close(self, name: str) -> None:
        """Close what the registry opened for ``name`` (list files get their XLSX copies)."""
        opened = self._opened.pop(name, None)
        if opened is None:
            return
        try:
            await opened[1].close()
        except OutputError as exc:
            note = "the contacts are in the CSV files and recorded; only the XLSX copy is missing"
            raise OutputError(exc.path, f"{exc.reason} ({note})", option=exc.option) from exc

    def _put_back(self, rows: Sequence[ClaimedRow], error: OutputError) -> OutputError:
        """Queue ``rows`` again as they were before this claim; the error to stop with, saying so."""
        with write_transaction(self.engine) as connection:
            connection.execute(
                update(OUTBOX)
                .where(
                    OUTBOX.c.id.in_([row.id for row in rows]),
                    OUTBOX.c.claimed_by == self.worker_id,
                    OUTBOX.c.state == SENDING,
                )
                .values(
                    state=QUEUED,
                    claimed_by=None,
                    attempts=OUTBOX.c.attempts - 1,  # the claim counted an attempt that never was
                    detail=f"not sent: {error}"[:2000],
                    updated_at=self.clock(),
                )
            )
        kept = f"{len(rows)} message{'' if len(rows) == 1 else 's'}"
        note = f"the worker stopped; {kept} of this batch stay queued and none was recorded as sent"
        return OutputError(error.path, f"{error.reason} ({note})", option=error.option)

    def _ready(self, name: str, now: dt.datetime) -> bool:
        """Whether ``name`` can be sent now; a configuration that cannot send what is due is an error."""
        if name == "email" and not self.config.settings.links.secret:
            if count_due(self.engine, [name], now, run_id=self.run_id):
                raise self.config.settings.error(
                    "links.secret",
                    "not set: emails carry signed unsubscribe links (set CRM_LINKS__SECRET)",
                )
            return False
        return True

    async def _drain_channel(self, name: str) -> None:
        settings = self.config.settings.channels.get(name)
        limit = settings.batch_size
        bucket: TokenBucket | None = None
        if settings.rate_per_second:
            bucket = TokenBucket(settings.rate_per_second)
            limit = max(1, min(limit, int(settings.rate_per_second)))
        while not self.stopping():
            now = self.clock()
            rows = (
                claim(self.engine, name, self.worker_id, limit, now, run_id=self.run_id)
                if self._ready(name, now)
                else []
            )
            if not rows:
                await self._close(name)
                if self.until_idle:
                    return
                await self._pause(self.poll_every)
                continue
            outcomes = await self._send(name, rows, now, bucket)
            record(self.engine, self.worker_id, outcomes, prices=self.prices, now=self.clock())
            suppress_bounces(self.engine, outcomes, region=self.config.settings.engine.default_region)
            self.summary.add(name, outcomes)
            if self.progress is not None:
                self.progress(self.summary)

    async def _send(
        self, name: str, rows: Sequence[ClaimedRow], now: dt.datetime, bucket: TokenBucket | None
    ) -> list[Outcome]:
        """Compose and send one claimed batch; one outcome per row."""
        settings = self.config.settings.channels.get(name)
        batch: Batch = self.composer.compose(name, rows, now)
        outcomes = list(batch.settled)
        if not batch.messages:
            return outcomes
        try:
            channel = await self._channel(name, now)
        except OutputError as exc:
            raise self._put_back(rows, exc) from exc
        if bucket is not None:
            await bucket.acquire(len(batch.messages))
        keys = {key: row.id for key, row in batch.rows.items()}
        self.journal.track(keys)
        failure: str | None = None
        try:
            results = await channel.send(batch.messages, journal=self.journal)
        except OutputError as exc:  # the destination takes nothing: the batch goes back, the worker stops
            self.journal.forget(keys)
            raise self._put_back(rows, exc) from exc
        except Exception as exc:  # a channel's bug must not leave the batch unrecorded
            failure = f"{name} channel failed: {type(exc).__name__}: {exc}"
            results = []
        committed = self.journal.committed & keys.keys()
        self.journal.forget(keys)
        by_key = {result.key: result for result in results}
        after = self.clock()
        delivered = delivers_on_send(channel)
        for message in batch.messages:
            row = batch.rows[message.key]
            result = by_key.get(message.key)
            if result is None:
                if message.key in committed:  # it passed the point of no return: never again
                    outcomes.append(Outcome(row, SENT, RECOVERED_SENT))
                    continue
                result = DeliveryResult(
                    message.key, DeliveryStatus.TEMPORARY_FAILURE, failure or "the channel gave no result"
                )
            outcomes.append(
                decide(
                    row,
                    result,
                    channel=name,
                    recipient=message.recipient,
                    now=after,
                    max_attempts=settings.max_attempts,
                    retry_after=parse_duration(settings.retry_after),
                    delivered=delivered,
                )
            )
        return outcomes


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop (a faster event loop, on Linux and macOS), else on asyncio's."""
    try:
        import uvloop
    except ImportError:  # e.g. Windows: uvloop is not available there
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


def drain(
    engine: Engine,
    config: Config,
    *,
    worker_id: str | None = None,
    channels: Mapping[str, Channel] | None = None,
    only: Sequence[str] | None = None,
    until_idle: bool = False,
    stop: threading.Event | None = None,
    run_id: int | None = None,
    progress: Callable[[DrainSummary], None] | None = None,
    clock: Clock = utcnow,
    poll_every: float = POLL_EVERY,
    recover_every: float = RECOVER_EVERY,
) -> DrainSummary:
    """Send what the outbox holds, until ``stop`` is set (or, with ``until_idle``, until nothing is due).

    ``only`` names the channels to drain (default: those in ``channels`` if
    given, else all); ``channels`` supplies instances instead of opening
    them from ``config`` (tests, embedding); ``run_id`` limits to one run;
    ``progress`` is called with the running summary after every batch;
    ``clock`` gives the current UTC time (tests move it).
    """
    names = [check_channel_name(name) for name in (only or list(channels or CHANNEL_NAMES))]
    worker_id = worker_id or new_worker_id()
    stop = stop or threading.Event()
    summary = DrainSummary(worker_id)
    installation = installation_id(engine)  # every Message-ID of this drain mixes it in
    register_worker(engine, worker_id, clock())
    heartbeat = Heartbeat(engine, worker_id, clock=clock)
    heartbeat.start()
    try:
        summary.add_recovery(
            recover(engine, config, now=clock(), exclude=worker_id, installation=installation)
        )
        summary.due = count_due(engine, names, clock(), run_id=run_id)
        drainer = _Drainer(
            engine,
            config,
            summary,
            names=names,
            injected=dict(channels or {}),
            until_idle=until_idle,
            stop=stop,
            fenced=heartbeat.fenced,
            run_id=run_id,
            progress=progress,
            clock=clock,
            poll_every=poll_every,
            recover_every=recover_every,
            installation=installation,
        )
        run_loop(drainer.run())
    finally:
        heartbeat.stop()
        # rows still held (an error, a cancelled send) are settled as recovery would settle them
        settle(engine, config, [worker_id], clock(), installation=installation)
    return summary
