"""``crm scheduler``: the scheduler process, its lock, and the jobs of every area it fires.

* :mod:`~engine.scheduler.process`: the process, its job store, reloads and the hot standby;
* :mod:`~engine.scheduler.lock`: one scheduler at a time;
* :mod:`~engine.scheduler.campaign_jobs`: a job per campaign, and the housekeeping job;
* :mod:`~engine.scheduler.loyalty_jobs`: each loyalty programme's daily batch.
"""

from __future__ import annotations

from engine.scheduler.process import SchedulerOptions, reload_scheduler, run_scheduler

__all__ = [
    "SchedulerOptions",
    "reload_scheduler",
    "run_scheduler",
]
