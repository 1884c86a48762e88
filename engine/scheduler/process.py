"""``crm scheduler``: fire every campaign on its trigger, one scheduler at a time.

The scheduler is APScheduler 3 with its job store in the engine's own
database (``apscheduler_jobs``), so what is due survives a restart and a
second scheduler on another host sees the same jobs. Jobs come from the
campaign files:

* :func:`job_specs` turns the campaigns into wanted jobs (:class:`JobSpec`):
  ``campaign:<key>`` for each campaign, ``engine:advance``, the
  housekeeping every minute, and ``loyalty:<programme>``, each loyalty
  programme's daily batch (:mod:`engine.scheduler.loyalty_jobs`);
* :func:`reconcile` makes the job store match: jobs are added, changed (their
  schedule or lateness changed: the next run is computed afresh) or removed;
  an unchanged job keeps its next run time, so a firing missed while the
  scheduler was down is still seen when it comes back.

Misfires are coalesced: after an outage a job fires once, for its latest
due time. A firing later than the campaign's ``max_lateness`` (APScheduler's
``misfire_grace_time``) does not run; it is recorded as an ``expired`` run
(:func:`engine.scheduler.campaign_jobs.expire_campaign`) and nobody is contacted.

:func:`run_scheduler` is the process: it takes the scheduler lock
(:mod:`engine.scheduler.lock`; a second scheduler waits as a hot
standby), reconciles, fires jobs until SIGTERM or SIGINT, then lets running
jobs finish and exits. Every few seconds it checks that it still holds the
lock and applies reload requests.

:func:`reload_scheduler` (``crm scheduler --reload``) computes the wanted jobs
from the campaign files where it runs. With no scheduler running it applies
them itself; otherwise it leaves a request in ``scheduler_reload`` that the
running scheduler (on whichever host) applies within seconds, and reports
what that scheduler changed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.base import STATE_STOPPED, BaseScheduler
from sqlalchemy import Engine, insert, inspect, select, update

from engine.campaigns import (
    ANNIVERSARY_AT,
    TRIGGER_EVERY,
    CampaignFile,
    Schedule,
    as_apscheduler_trigger,
    build_trigger,
    campaign_schedule,
    describe,
    every,
    load_campaigns,
)
from engine.clock import utcnow
from engine.config import Config, load_config
from engine.db import make_engine, require_schema
from engine.errors import DatabaseError, EngineError
from engine.models import RELOAD, RUN
from engine.scheduler import campaign_jobs as jobs
from engine.scheduler.lock import SchedulerLock, identity, scheduler_lock
from engine.scheduler.loyalty_jobs import JOB_PREFIX as LOYALTY_PREFIX
from engine.scheduler.loyalty_jobs import RUN_PROGRAMME_BATCH, batch_schedule
from engine.settings import parse_duration

as_apscheduler_trigger()  # campaign triggers stored in the job store are APScheduler triggers

log = logging.getLogger("engine.scheduler")

CAMPAIGN_PREFIX = jobs.CAMPAIGN_JOB_PREFIX
ADVANCE_ID = "engine:advance"
#: the reference each job function had when jobs were first stored with it (migration 0008 moved them)
FIRST_STORED_AS = {
    jobs.FIRE_CAMPAIGN: "engine.campaigns.jobs:fire_campaign",
    jobs.ADVANCE_RUNS: "engine.campaigns.jobs:advance_runs",
    RUN_PROGRAMME_BATCH: "engine.loyalty.jobs:run_programme_batch",
}


@dataclass(frozen=True)
class SchedulerOptions:
    """How often triggered campaigns look for news and when anniversaries run; process settings."""

    trigger_every: dt.timedelta = TRIGGER_EVERY
    anniversary_at: dt.time = ANNIVERSARY_AT
    advance_every: dt.timedelta = dt.timedelta(minutes=1)
    check_every: float = 2.0  # seconds between lock checks and looks for reload requests
    workers: int = 4  # jobs that may run at the same time
    lock_wait: float = 1.0  # seconds of each wait on the lock between looks at who holds it


@dataclass(frozen=True)
class JobSpec:
    """One job the campaign files (or the loyalty programmes) ask for."""

    id: str
    func: str  # importable reference, e.g. engine.scheduler.campaign_jobs:fire_campaign
    campaign: str | None
    schedule: Schedule
    grace_seconds: int | None  # max lateness; None: run however late
    finished: str | None = None  # why nothing is left to schedule (a one-off that ran, an ended campaign)
    programme: str | None = None  # the loyalty programme whose daily batch this is

    @property
    def fingerprint(self) -> str:
        """A hash of what decides when the job fires; a changed fingerprint reschedules the job.

        The function enters the hash by the name its jobs were first stored
        under (:data:`FIRST_STORED_AS`), so moving a job function to another
        module does not reschedule the jobs already in the store.
        """
        func = FIRST_STORED_AS.get(self.func, self.func)
        text = json.dumps([func, self.schedule, self.grace_seconds], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def coalesce(self) -> bool:
        """Whether APScheduler folds missed firings into one.

        Not for a campaign that fires at set times: each missed firing is seen,
        recorded as expired when too late, and of those still in time the
        executor runs the latest and records the others
        (:func:`engine.scheduler.campaign_jobs.run_at_fire_times`). A campaign
        that looks every few minutes, housekeeping and loyalty batches: their
        next run covers what the missed ones would have done.
        """
        return not (self.campaign is not None and self.schedule.get("kind") in ("cron", "date"))

    @property
    def name(self) -> str:
        """How logs name the job."""
        what = self.campaign or (f"loyalty {self.programme}" if self.programme else "housekeeping")
        return f"{what} ({describe(self.schedule)})"

    def args(self, config_path: str) -> tuple[str, ...]:
        """The job function's arguments (plain strings: the job is pickled into the store)."""
        subject = self.campaign if self.campaign is not None else self.programme
        return (config_path, subject) if subject is not None else (config_path,)

    def to_json(self) -> dict[str, Any]:
        """The spec as JSON (carried by a reload request)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobSpec:
        """The spec back from :meth:`to_json`."""
        return cls(**data)


@dataclass(frozen=True)
class JobChange:
    """One job as reconciliation left it."""

    job: str
    schedule: str
    next_run: dt.datetime | None = None
    note: str | None = None


@dataclass
class ReconcileResult:
    """What reconciling the job store with the campaign files did, job by job."""

    added: list[JobChange] = field(default_factory=list)
    changed: list[JobChange] = field(default_factory=list)
    removed: list[JobChange] = field(default_factory=list)
    unchanged: list[JobChange] = field(default_factory=list)
    finished: list[JobChange] = field(default_factory=list)

    def lines(self, zone: ZoneInfo) -> list[str]:
        """One line per added, changed, removed or finished job, then a count of the unchanged."""
        lines = []
        for action in ("added", "changed", "removed", "finished"):
            for change in getattr(self, action):
                text = f"{action:<9} {change.job}"
                if change.schedule:
                    text += f": {change.schedule}"
                if change.next_run is not None:
                    text += f"; next {change.next_run.astimezone(zone):%Y-%m-%d %H:%M %Z}"
                if change.note:
                    text += f" ({change.note})"
                lines.append(text)
        lines.append(f"{len(self.unchanged)} unchanged")
        return lines

    def to_json(self) -> dict[str, Any]:
        """The result as JSON (recorded with the reload request)."""
        return {
            action: [
                {**asdict(c), "next_run": c.next_run.isoformat() if c.next_run else None}
                for c in getattr(self, action)
            ]
            for action in ("added", "changed", "removed", "unchanged", "finished")
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReconcileResult:
        """The result back from :meth:`to_json`."""

        def change(item: dict[str, Any]) -> JobChange:
            next_run = dt.datetime.fromisoformat(item["next_run"]) if item.get("next_run") else None
            return JobChange(item["job"], item.get("schedule", ""), next_run, item.get("note"))

        return cls(
            **{
                action: [change(item) for item in data.get(action, [])]
                for action in ("added", "changed", "removed", "unchanged", "finished")
            }
        )


def _one_off_run(engine: Engine, key: str, at: dt.datetime) -> str | None:
    with engine.connect() as connection:
        row = connection.execute(
            select(RUN.c.id, RUN.c.state).where(RUN.c.campaign == key, RUN.c.scheduled_for == at)
        ).first()
    return f"fired already: run {row.id} {row.state}" if row is not None else None


def job_specs(
    config: Config,
    campaigns: dict[str, CampaignFile],
    *,
    engine: Engine,
    options: SchedulerOptions | None = None,
    now: dt.datetime | None = None,
) -> list[JobSpec]:
    """The wanted jobs: housekeeping, one per campaign by key, one per loyalty programme."""
    options = options or SchedulerOptions()
    now = now or utcnow()
    zone = ZoneInfo(config.settings.engine.timezone)
    specs = [JobSpec(ADVANCE_ID, jobs.ADVANCE_RUNS, None, every(options.advance_every, zone), None)]
    for key, campaign_file in sorted(campaigns.items()):
        campaign = campaign_file.campaign
        schedule = campaign_schedule(
            campaign, zone, trigger_every=options.trigger_every, anniversary_at=options.anniversary_at
        )
        finished = None
        if schedule["kind"] == "date":
            finished = _one_off_run(engine, key, dt.datetime.fromisoformat(schedule["at"]))
        elif build_trigger(schedule).get_next_fire_time(None, now) is None:
            finished = f"ended {campaign.end}"
        grace = int(parse_duration(campaign.max_lateness).total_seconds())
        specs.append(JobSpec(CAMPAIGN_PREFIX + key, jobs.FIRE_CAMPAIGN, key, schedule, grace, finished))
    for name, section in sorted(config.settings.loyalty.programmes.items()):
        daily = batch_schedule(section, config.settings.engine.timezone)
        specs.append(JobSpec(LOYALTY_PREFIX + name, RUN_PROGRAMME_BATCH, None, daily, None, programme=name))
    return specs


def reconcile(scheduler: BaseScheduler, specs: Iterable[JobSpec], *, config_path: str) -> ReconcileResult:
    """Make the job store of ``scheduler`` (started, possibly paused) hold exactly ``specs``."""
    result = ReconcileResult()
    existing = {job.id: job for job in scheduler.get_jobs()}
    for spec in specs:
        job = existing.pop(spec.id, None)
        args = spec.args(config_path)
        kwargs = {"fingerprint": spec.fingerprint}
        same = job is not None and job.kwargs.get("fingerprint") == spec.fingerprint
        text = describe(spec.schedule)
        if spec.finished is not None and not same:
            if job is not None:
                scheduler.remove_job(spec.id)
                result.removed.append(JobChange(spec.id, text, None, spec.finished))
            else:
                result.finished.append(JobChange(spec.id, text, None, spec.finished))
            continue
        if job is None:
            added = scheduler.add_job(
                spec.func,
                build_trigger(spec.schedule),
                id=spec.id,
                name=spec.name,
                args=args,
                kwargs=kwargs,
                misfire_grace_time=spec.grace_seconds,
                coalesce=spec.coalesce,
                replace_existing=True,
            )
            result.added.append(JobChange(spec.id, text, added.next_run_time))
        elif not same:
            trigger = build_trigger(spec.schedule)
            next_run = trigger.get_next_fire_time(None, dt.datetime.now(dt.UTC))
            scheduler.modify_job(
                spec.id,
                func=spec.func,
                trigger=trigger,
                next_run_time=next_run,
                name=spec.name,
                args=args,
                kwargs=kwargs,
                misfire_grace_time=spec.grace_seconds,
                coalesce=spec.coalesce,
            )
            result.changed.append(JobChange(spec.id, text, next_run))
        else:
            assert job is not None
            if tuple(job.args) != args:  # same schedule, config.toml elsewhere (another host)
                scheduler.modify_job(spec.id, args=args)
            if job.coalesce != spec.coalesce:  # stored before missed firings were each recorded
                scheduler.modify_job(spec.id, coalesce=spec.coalesce)
            result.unchanged.append(JobChange(spec.id, text, job.next_run_time))
    for job_id in existing:
        scheduler.remove_job(job_id)
        gone = "no such loyalty programme" if job_id.startswith(LOYALTY_PREFIX) else "no such campaign file"
        result.removed.append(JobChange(job_id, "", None, gone))
    return result


class CampaignScheduler(BaseScheduler):
    """APScheduler 3 over the engine's database, driven by :meth:`run_pending` from the caller's loop.

    Jobs know when they were due (:func:`engine.scheduler.campaign_jobs.fire_time`);
    a missed firing (later than the job's ``misfire_grace_time``) is recorded
    as an expired run. ``inline`` runs jobs in the caller's thread (``--once``
    and tests) instead of a thread pool.
    """

    def __init__(
        self, database_url: str, config_path: str, zone: ZoneInfo, *, workers: int = 4, inline: bool = False
    ) -> None:
        super().__init__(
            # every trigger carries the business zone; the scheduler's own clock is UTC, unambiguous
            timezone=dt.UTC,
            # coalescing is set per job (JobSpec.coalesce)
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self.config_path = config_path
        self.business_zone = zone
        self._wake = threading.Event()
        self.add_jobstore(SQLAlchemyJobStore(engine=make_engine(database_url)), "default")
        executor = jobs.InlineFireTimeExecutor() if inline else jobs.FireTimeExecutor(workers)
        self.add_executor(executor, "default")
        self.add_listener(self._missed, EVENT_JOB_MISSED)

    def wakeup(self) -> None:
        """Called by APScheduler when jobs change: look for due jobs at once."""
        self._wake.set()

    def shutdown(self, wait: bool = True) -> None:
        """Stop; with ``wait``, running jobs finish first."""
        super().shutdown(wait)
        self._wake.set()

    def run_pending(self) -> float | None:
        """Submit the jobs due now; seconds until the next one is due (None: none is)."""
        wait: float | None = self._process_jobs()
        return wait

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or less when woken (jobs changed, a signal)."""
        self._wake.wait(max(0.0, seconds))
        self._wake.clear()

    def _missed(self, event: JobExecutionEvent) -> None:
        if event.job_id.startswith(CAMPAIGN_PREFIX):
            key = event.job_id.removeprefix(CAMPAIGN_PREFIX)
            jobs.expire_campaign(self.config_path, key, event.scheduled_run_time.astimezone(dt.UTC))


def _require_scheduler_schema(engine: Engine) -> None:
    require_schema(engine)
    if not inspect(engine).has_table(RELOAD.name):
        where = engine.url.render_as_string(hide_password=True)
        raise DatabaseError(f"the schema of {where} predates the scheduler: run `crm init` to upgrade it")


def _zone(config: Config) -> ZoneInfo:
    return ZoneInfo(config.settings.engine.timezone)


def _config_path(config: Config) -> str:
    return str(config.path.expanduser().resolve())


def _take_lock(lock: SchedulerLock, stop: threading.Event, wait: float) -> bool:
    """Wait for the lock until it is ours (True) or ``stop`` is set (False), saying who holds it."""
    seen: str | None = None
    waited = False
    while not stop.is_set():
        if lock.acquire(wait):
            if waited:
                log.info(
                    "took over: the scheduler lock is ours (it was held by %s)", seen or "another scheduler"
                )
            else:
                log.info("holding the scheduler lock")
            return True
        holder = lock.holder()  # None: released meanwhile, or its holder wrote nothing yet
        if not waited or (holder is not None and holder != seen):
            log.info("waiting for the lock held by %s (hot standby)", holder or "another scheduler")
            seen = holder or seen
        waited = True
    return False


def _apply_reload_requests(scheduler: CampaignScheduler, engine: Engine, who: str) -> None:
    """Apply the newest pending reload request; older pending ones are superseded by it."""
    with engine.connect() as connection:
        pending = connection.execute(
            select(RELOAD.c.id, RELOAD.c.jobs, RELOAD.c.requested_by)
            .where(RELOAD.c.applied_at.is_(None))
            .order_by(RELOAD.c.id)
        ).all()
    if not pending:
        return
    latest = pending[-1]
    specs = [JobSpec.from_json(item) for item in latest.jobs["jobs"]]
    result = reconcile(scheduler, specs, config_path=scheduler.config_path)
    now = utcnow()
    with engine.begin() as connection:
        for older in pending[:-1]:
            connection.execute(
                update(RELOAD)
                .where(RELOAD.c.id == older.id)
                .values(applied_at=now, applied_by=who, result={"superseded_by": latest.id})
            )
        connection.execute(
            update(RELOAD)
            .where(RELOAD.c.id == latest.id)
            .values(applied_at=now, applied_by=who, result=result.to_json())
        )
    log.info("reload %s from %s applied:", latest.id, latest.requested_by)
    for line in result.lines(scheduler.business_zone):
        log.info("  %s", line)


def _supersede_requests(engine: Engine, before: dt.datetime, who: str) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(RELOAD)
            .where(RELOAD.c.applied_at.is_(None), RELOAD.c.requested_at < before)
            .values(
                applied_at=utcnow(),
                applied_by=who,
                result={"superseded": "the scheduler started and reconciled its own campaign files"},
            )
        )


def _start_reconcile(
    scheduler: CampaignScheduler, config_path: str, options: SchedulerOptions, who: str
) -> None:
    """Reconcile with the campaign files as they are now; when they have errors, keep the job store."""
    loaded_at = utcnow()
    try:
        config = load_config(config_path)
        campaigns = load_campaigns(config)
        engine = jobs.engine_for(config)
        specs = job_specs(config, campaigns, engine=engine, options=options)
    except EngineError as exc:
        log.error("campaign files have errors; the job store stays as it was:\n%s", exc)
        return
    result = reconcile(scheduler, specs, config_path=config_path)
    _supersede_requests(engine, loaded_at, who)
    log.info("jobs reconciled with %s:", Path(config_path).parent / "campaigns")
    for line in result.lines(scheduler.business_zone):
        log.info("  %s", line)


@contextmanager
def _stop_on_signals(stop: threading.Event, wake: Callable[[], None]) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop`` (in the main thread; elsewhere the caller stops by ``stop``)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: Any) -> None:
        if not stop.is_set():
            log.info("%s: stopping once running jobs finish", signal.Signals(signum).name)
        stop.set()
        wake()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_scheduler(
    config_path: Path | str | None = None,
    *,
    options: SchedulerOptions | None = None,
    once: bool = False,
    stop: threading.Event | None = None,
) -> None:
    """Run the scheduler until SIGTERM/SIGINT or ``stop`` (``once``: fire what is due now, then return).

    Waits for the scheduler lock first (a hot standby); with ``once`` a held
    lock is an error instead. Raises :class:`~engine.errors.DatabaseError` if
    the lock is lost while running (after letting running jobs finish).
    """
    options = options or SchedulerOptions()
    config = load_config(config_path)
    load_campaigns(config)  # a bad campaign file is an error before waiting for anything
    engine = make_engine(config.database_url)
    _require_scheduler_schema(engine)
    who = identity()
    stop = stop or threading.Event()
    lock = scheduler_lock(engine, who)
    running: list[CampaignScheduler] = []

    def wake() -> None:
        for scheduler in running:
            scheduler.wakeup()

    path = _config_path(config)
    with _stop_on_signals(stop, wake):
        log.info("scheduler %s starting on %s", who, engine.url.render_as_string(hide_password=True))
        try:
            if once:
                if not lock.acquire(0):
                    raise EngineError(
                        f"a scheduler is running ({lock.holder() or 'holder unknown'}): not firing beside it"
                    )
            elif not _take_lock(lock, stop, options.lock_wait):
                log.info("stopped while waiting for the lock")
                return
            scheduler = CampaignScheduler(
                config.database_url, path, _zone(config), workers=options.workers, inline=once
            )
            scheduler.start(paused=True)
            running.append(scheduler)
            try:
                _start_reconcile(scheduler, path, options, who)
                scheduler.resume()
                log.info("scheduler started")
                _serve(scheduler, lock, engine, who, stop, options, once=once)
            finally:
                if scheduler.state != STATE_STOPPED:
                    log.info("stopping: waiting for running jobs to finish")
                    scheduler.shutdown(wait=True)
                jobs.dispose_engines()
        finally:
            lock.release()
            engine.dispose()
    log.info("scheduler stopped")


def _serve(
    scheduler: CampaignScheduler,
    lock: SchedulerLock,
    engine: Engine,
    who: str,
    stop: threading.Event,
    options: SchedulerOptions,
    *,
    once: bool,
) -> None:
    next_check = 0.0
    while not stop.is_set():
        if time.monotonic() >= next_check:
            lock.check()
            _apply_reload_requests(scheduler, engine, who)
            next_check = time.monotonic() + options.check_every
        wait = scheduler.run_pending()
        if once:
            return
        pause = next_check - time.monotonic()
        scheduler.sleep(pause if wait is None else min(pause, wait))


@dataclass(frozen=True)
class ReloadOutcome:
    """What ``crm scheduler --reload`` changed, and who applied it."""

    request: int
    applied_by: str
    running: bool  # True: a running scheduler applied it; False: no scheduler ran, applied here
    result: ReconcileResult
    superseded_by: int | None = None  # a newer reload was applied instead; ``result`` is that one's
    note: str | None = None


def reload_scheduler(
    config_path: Path | str | None = None, *, options: SchedulerOptions | None = None, wait: float = 60.0
) -> ReloadOutcome:
    """Reconcile the job store with the campaign files here; the running scheduler applies it.

    A bad config changes nothing (raises :class:`~engine.errors.ConfigErrors`).
    With no scheduler running, the job store is changed at once. Otherwise a
    request is left for the running scheduler; this waits up to ``wait``
    seconds for it to be applied and raises :class:`EngineError` if it was not
    (it stays queued and is applied when that scheduler next looks).
    """
    options = options or SchedulerOptions()
    config = load_config(config_path)
    campaigns = load_campaigns(config)
    engine = make_engine(config.database_url)
    _require_scheduler_schema(engine)
    who = identity()
    try:
        specs = job_specs(config, campaigns, engine=engine, options=options)
        wanted = {"jobs": [spec.to_json() for spec in specs], "config": _config_path(config)}
        lock = scheduler_lock(engine, who)
        try:
            if lock.acquire(0):
                return _reload_here(engine, config, specs, wanted, who)
            holder = lock.holder()
        finally:
            lock.release()
        with engine.begin() as connection:
            request = connection.execute(
                insert(RELOAD)
                .values(requested_at=utcnow(), requested_by=who, jobs=wanted)
                .returning(RELOAD.c.id)
            ).scalar_one()
        return _await_reload(engine, request, holder, wait)
    finally:
        engine.dispose()


def _reload_here(
    engine: Engine, config: Config, specs: list[JobSpec], wanted: dict[str, Any], who: str
) -> ReloadOutcome:
    scheduler = CampaignScheduler(config.database_url, _config_path(config), _zone(config), inline=True)
    scheduler.start(paused=True)
    try:
        result = reconcile(scheduler, specs, config_path=scheduler.config_path)
    finally:
        scheduler.shutdown(wait=False)
    now = utcnow()
    with engine.begin() as connection:
        request = connection.execute(
            insert(RELOAD)
            .values(
                requested_at=now,
                requested_by=who,
                jobs=wanted,
                applied_at=now,
                applied_by=who,
                result=result.to_json(),
            )
            .returning(RELOAD.c.id)
        ).scalar_one()
    return ReloadOutcome(request, who, False, result)


def _await_reload(engine: Engine, request: int, holder: str | None, wait: float) -> ReloadOutcome:
    deadline = time.monotonic() + wait
    while True:
        with engine.connect() as connection:
            row = connection.execute(
                select(RELOAD.c.applied_by, RELOAD.c.result).where(RELOAD.c.id == request)
            ).one()
        if row.result is not None:
            superseded: int | None = row.result.get("superseded_by")
            if superseded is not None:  # a newer reload was applied in its place: report that one
                outcome = _await_reload(engine, superseded, holder, max(0.0, deadline - time.monotonic()))
                return ReloadOutcome(request, outcome.applied_by, True, outcome.result, superseded)
            note = row.result.get("superseded")
            result = ReconcileResult.from_json(row.result)
            return ReloadOutcome(request, row.applied_by or "", True, result, None, note)
        if time.monotonic() >= deadline:
            raise EngineError(
                f"reload {request} is queued, but the running scheduler ({holder or 'holder unknown'}) "
                f"has not applied it within {wait:g}s; it will when it next looks for reloads"
            )
        time.sleep(0.2)
