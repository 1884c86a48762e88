"""The scheduler's job for a loyalty programme: its daily batch at ``batch_at``, programme time.

:func:`batch_schedule` is the job's schedule (a daily cron in the
programme's zone, so 03:00 stays 03:00 local across DST changes; a time the
clocks skip runs when the jump ends, one they repeat runs once);
:func:`engine.scheduler.process.job_specs` adds one job per programme
(``loyalty:<programme>``). The job function takes plain strings, as every
stored job does, and runs :func:`engine.loyalty.batch.run_batch` as of the
time the job was due.
"""

from __future__ import annotations

import logging
from typing import Any
from zoneinfo import ZoneInfo

from engine.clock import utcnow
from engine.config import load_config
from engine.errors import EngineError
from engine.loyalty.batch import run_batch
from engine.loyalty.programme import programme_named
from engine.scheduler.campaign_jobs import engine_for, fire_time
from engine.settings import ProgrammeSection

log = logging.getLogger("engine.scheduler")

RUN_PROGRAMME_BATCH = "engine.scheduler.loyalty_jobs:run_programme_batch"
JOB_PREFIX = "loyalty:"


def batch_schedule(section: ProgrammeSection, default_zone: str) -> dict[str, Any]:
    """The daily schedule of a programme's batch, as :mod:`engine.campaigns.schedules` writes one.

    A fixed local time, so it fires as campaign schedules do: once every local
    day; on a day the clocks skip ``batch_at`` (``00:00`` where they jump from
    midnight), at the change; on a day they repeat it, at its first occurrence.
    """
    zone = ZoneInfo(section.timezone or default_zone)
    at = section.batch_at
    return {"kind": "cron", "cron": f"{at.minute} {at.hour} * * *", "timezone": zone.key}


def run_programme_batch(config_path: str, programme: str, *, fingerprint: str = "") -> None:
    """The job of one programme: its batch as of when the job was due (:func:`fire_time`).

    ``fingerprint`` names the schedule the job was made from; reconciliation compares it.
    """
    now = fire_time() or utcnow()
    try:
        config = load_config(config_path)
        found = programme_named(config.programmes, programme)
    except EngineError as exc:
        log.error("loyalty batch of %s not run: %s", programme, exc)
        return
    result = run_batch(engine_for(config), found, now=now)
    counts = ", ".join(f"{name} {n}" for name, n in result.counts().items())
    log.info("loyalty batch of %s as of %s: %s", programme, now.isoformat(), counts)
