"""What the scheduler runs: one job per campaign, and the housekeeping job.

Jobs are stored in the database (pickled by APScheduler), so each is an
importable function named by reference with plain arguments: the path of
config.toml and the campaign's key. A job loads the configuration and its
campaign when it fires, so an edited template or audience rule is used at
the next firing without touching the job store.

A job needs the time it was *due*, not the time it happens to run, to
record the firing (``campaign_run`` is unique on campaign and due time):
:class:`FireTimeExecutor` runs each job inside :func:`fire_time_of`'s
context, and :func:`fire_time` reads it.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.events import JobExecutionEvent
from apscheduler.executors.base import BaseExecutor, run_job
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine

from engine.budget import load_budgets
from engine.campaigns import CampaignFile, load_campaigns
from engine.clock import utcnow
from engine.config import Config, load_config
from engine.db import make_engine
from engine.errors import EngineError
from engine.runs import advance, expire_run, start_run

log = logging.getLogger("engine.scheduler")

FIRE_CAMPAIGN = "engine.scheduler.campaign_jobs:fire_campaign"
#: the id of a campaign's job: the prefix and the campaign's key
CAMPAIGN_JOB_PREFIX = "campaign:"
ADVANCE_RUNS = "engine.scheduler.campaign_jobs:advance_runs"

_fire_time: contextvars.ContextVar[dt.datetime | None] = contextvars.ContextVar("fire_time", default=None)
_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def fire_time() -> dt.datetime | None:
    """When the job now running was due (UTC), or None outside a scheduled job."""
    return _fire_time.get()


@contextmanager
def fire_time_of(run_time: dt.datetime) -> Iterator[None]:
    """Run the body as the firing due at ``run_time``."""
    token = _fire_time.set(run_time.astimezone(dt.UTC))
    try:
        yield
    finally:
        _fire_time.reset(token)


def run_at_fire_times(
    job: Job, jobstore_alias: str, run_times: list[dt.datetime], logger_name: str
) -> list[JobExecutionEvent]:
    """APScheduler's ``run_job`` for the latest of ``run_times``, its due time known to :func:`fire_time`.

    Several due times reach a job after an outage shorter than its lateness:
    only the latest runs. For a campaign that fires at set times each earlier
    one is recorded as an expired run that names the firing that ran instead
    (no firing is skipped without a trace); a segment-entry or event campaign
    and the housekeeping job lose nothing (their run covers everything since
    the previous one).
    """
    *superseded, latest = sorted(run_times)
    if superseded and job.id.startswith(CAMPAIGN_JOB_PREFIX) and not isinstance(job.trigger, IntervalTrigger):
        config_path, key = job.args[0], job.args[1]
        for run_time in superseded:
            expire_campaign(config_path, key, run_time.astimezone(dt.UTC), superseded_by=latest)
    with fire_time_of(latest):
        return list(run_job(job, jobstore_alias, [latest], logger_name))


class FireTimeExecutor(ThreadPoolExecutor):
    """A thread pool executor whose jobs know when they were due (:func:`fire_time`)."""

    def _do_submit_job(self, job: Job, run_times: list[dt.datetime]) -> None:
        def done(future: Any) -> None:
            exc = future.exception()
            if exc is not None:
                self._run_job_error(job.id, exc, exc.__traceback__)
            else:
                self._run_job_success(job.id, future.result())

        future = self._pool.submit(run_at_fire_times, job, job._jobstore_alias, run_times, self._logger.name)
        future.add_done_callback(done)


class InlineFireTimeExecutor(BaseExecutor):
    """Runs each job in the scheduler's own thread, at once (tests and ``--once``)."""

    def _do_submit_job(self, job: Job, run_times: list[dt.datetime]) -> None:
        try:
            events = run_at_fire_times(job, job._jobstore_alias, run_times, self._logger.name)
        except Exception:
            exc, tb = sys.exc_info()[1:]
            self._run_job_error(job.id, exc, tb)
        else:
            self._run_job_success(job.id, events)


def engine_for(config: Config) -> Engine:
    """One engine per database URL for the life of the process (jobs fire every few minutes)."""
    url = config.database_url
    with _engines_lock:
        if url not in _engines:
            _engines[url] = make_engine(url)
        return _engines[url]


def dispose_engines() -> None:
    """Close the connections the jobs opened (the scheduler stops)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def _load(config_path: str, key: str | None) -> tuple[Config, CampaignFile | None] | None:
    """The configuration and campaign ``key``; None (logged) when the files have errors."""
    try:
        config = load_config(config_path)
        if key is None:
            return config, None
        campaigns = load_campaigns(config)
        load_budgets(config, campaigns)  # a run spends within them: a broken budget file stops it here
    except EngineError as exc:
        what = f"campaign {key}" if key else "housekeeping"
        log.error(
            "%s not run: the configuration has errors (fix them; `crm validate` lists them):\n%s", what, exc
        )
        return None
    campaign = campaigns.get(key)
    if campaign is None:
        log.warning(
            "campaign %s not run: campaigns/%s.toml is gone; `crm scheduler --reload` removes its job",
            key,
            key,
        )
        return None
    return config, campaign


def _local(instant: dt.datetime, config: Config) -> str:
    return f"{instant.astimezone(ZoneInfo(config.settings.engine.timezone)):%Y-%m-%d %H:%M %Z}"


def fire_campaign(config_path: str, key: str, *, fingerprint: str = "") -> None:
    """The job of one campaign: record and queue the run due now (:func:`fire_time`).

    ``fingerprint`` names the schedule the job was made from; reconciliation compares it.
    """
    scheduled_for = fire_time() or utcnow()
    loaded = _load(config_path, key)
    if loaded is None:
        return
    config, campaign = loaded
    assert campaign is not None
    summary = start_run(engine_for(config), config, campaign, scheduled_for=scheduled_for)
    counts = ", ".join(f"{state} {n}" for state, n in sorted(summary.counts.items())) or "no rows"
    detail = f" ({summary.detail})" if summary.detail else ""
    log.info(
        "campaign %s due %s: run %s %s%s: %s",
        key,
        _local(scheduled_for, config),
        summary.run_id,
        summary.state,
        detail,
        counts,
    )


def expire_campaign(
    config_path: str, key: str, scheduled_for: dt.datetime, *, superseded_by: dt.datetime | None = None
) -> None:
    """Record the firing of ``key`` due at ``scheduled_for`` as expired: it came later than max_lateness,
    or a later firing due at ``superseded_by`` ran in its place after an outage."""
    loaded = _load(config_path, key)
    if loaded is None:
        return
    config, campaign = loaded
    assert campaign is not None
    late = utcnow() - scheduled_for
    if superseded_by is not None:
        reason = (
            f"missed while the scheduler was down or busy; the firing due {_local(superseded_by, config)}"
            " ran in its place: not sent"
        )
    else:
        reason = (
            f"fired {str(late).split('.')[0]} late (the scheduler was down or busy), "
            f"more than max_lateness {campaign.campaign.max_lateness}: not sent"
        )
    summary = expire_run(engine_for(config), config, campaign, scheduled_for=scheduled_for, reason=reason)
    log.warning(
        "campaign %s due %s: run %s %s (%s)",
        key,
        _local(scheduled_for, config),
        summary.run_id,
        summary.state,
        reason,
    )


def advance_runs(config_path: str, *, fingerprint: str = "") -> None:
    """The housekeeping job: later steps whose wait has passed, runs that are finished."""
    loaded = _load(config_path, None)
    if loaded is None:
        return
    config, _ = loaded
    try:
        summary = advance(engine_for(config), config)
    except EngineError as exc:
        log.error("housekeeping not run: the configuration has errors (`crm validate` lists them):\n%s", exc)
        return
    for run_id, step, rows in summary.steps_materialised:
        log.info("run %s: step %s queued for %s customers", run_id, step, rows)
    for run_id in summary.runs_done:
        log.info("run %s done", run_id)
