"""Jobs stored by earlier versions keep firing after the upgrade.

Migration 0008 rewrites the function reference of every stored job (and back
on downgrade); the jobs keep their trigger and next run time, and their
fingerprint does not change, so reconciling leaves them as they are.

Jobs stored before cron firings came from cronsim hold a pickled
``CronTrigger`` state; it is read back into the new trigger, which fires by
the new rules.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import pickle
from pathlib import Path
from typing import Any

from alembic import command
from freezegun import freeze_time
from sqlalchemy import Engine, text

from engine.campaigns.loading import load_campaigns
from engine.campaigns.schedules import BusinessCronTrigger
from engine.db.schema import alembic_config, current_revision, head_revision, upgrade
from engine.scheduler.process import job_specs
from tests.campaigns.test_schedules import earlier_trigger, pickled_as_before
from tests.factories import utc
from tests.scheduler.test_scheduler import (
    BERLIN,
    WEEKLY,
    campaign_text,
    reconciled,
    runs,
    stored_jobs,
    workspace,
)

OLD = "engine.campaigns.jobs:fire_campaign"
NEW = "engine.scheduler.campaign_jobs:fire_campaign"


def _migrate(db: Engine, revision: str) -> None:
    config = alembic_config()
    with db.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def _stored_functions(db: Engine) -> dict[str, str]:
    with db.connect() as connection:
        rows = connection.execute(text("SELECT id, job_state FROM apscheduler_jobs")).all()
    return {job_id: pickle.loads(state)["func"] for job_id, state in rows}


def test_jobs_stored_under_old_references_fire_unchanged_after_the_upgrade(
    db: Engine, write_config: Any, tmp_path: Path
) -> None:
    config = workspace(write_config, tmp_path, WEEKLY)
    with freeze_time("2026-03-04 12:02:00"):
        scheduler, _ = reconciled(db, config)
        scheduler.shutdown(wait=False)
    before = stored_jobs(config)["campaign:weekly"]
    assert before.func_ref == NEW

    _migrate(db, "0007")  # the store as an earlier version left it
    assert _stored_functions(db)["campaign:weekly"] == OLD
    assert _stored_functions(db)["engine:advance"] == "engine.campaigns.jobs:advance_runs"

    upgrade(db)
    assert _stored_functions(db)["campaign:weekly"] == NEW
    after = stored_jobs(config)["campaign:weekly"]
    assert after.func_ref == NEW
    assert after.next_run_time == before.next_run_time == utc(2026, 3, 9, 9)
    assert after.kwargs == before.kwargs
    # the fingerprint is the one an earlier version stored: the hash over the old reference
    spec = next(s for s in job_specs(config, load_campaigns(config), engine=db) if s.id == "campaign:weekly")
    earlier = json.dumps([OLD, spec.schedule, spec.grace_seconds], sort_keys=True)
    stored = after.kwargs["fingerprint"]
    assert stored == spec.fingerprint == hashlib.sha256(earlier.encode()).hexdigest()[:12]
    with freeze_time("2026-03-04 12:03:00"):
        scheduler, result = reconciled(db, config)
        scheduler.shutdown(wait=False)
    assert [change.job for change in result.unchanged] == ["engine:advance", "campaign:weekly"]
    assert not (result.added or result.changed or result.removed)
    assert current_revision(db) == head_revision()  # the newest, whichever migration that is


def test_a_job_stored_with_the_earlier_cron_trigger_fires_by_the_new_rules(
    db: Engine, write_config: Any, tmp_path: Path
) -> None:
    config = workspace(write_config, tmp_path, {"nightly": campaign_text('schedule = "30 2 * * *"')})
    with freeze_time("2026-03-27 22:00:00"):
        scheduler, _ = reconciled(db, config, housekeeping=False)
        scheduler.shutdown(wait=False)
    spec = next(s for s in job_specs(config, load_campaigns(config), engine=db) if s.id == "campaign:nightly")
    with db.begin() as connection:  # the job as an earlier version stored it, CronTrigger and all
        select_state = text("SELECT job_state FROM apscheduler_jobs WHERE id = 'campaign:nightly'")
        state = pickle.loads(connection.execute(select_state).scalar_one())
        state["trigger"] = earlier_trigger(
            BERLIN, start_date=dt.datetime.fromisoformat(spec.schedule["start"]), minute="30", hour="2"
        )
        connection.execute(
            text("UPDATE apscheduler_jobs SET job_state = :state WHERE id = 'campaign:nightly'"),
            {"state": pickled_as_before(state)},
        )
    assert b"apscheduler.triggers.cron.fields" in pickled_as_before(state)

    with freeze_time("2026-03-27 22:00:00") as clock:
        scheduler, result = reconciled(db, config, housekeeping=False)
        assert [change.job for change in result.unchanged] == ["campaign:nightly"]  # kept as stored
        try:
            for step in range(1, 4 * 24 * 2 + 1):  # every 15 minutes for two days
                clock.move_to(utc(2026, 3, 27, 22) + dt.timedelta(minutes=15 * step))
                scheduler.run_pending()
        finally:
            scheduler.shutdown(wait=True)
    # 02:30 does not exist on 29 March: it fired at the change, 03:00 summer time
    assert [when for _, when, _ in runs(db)] == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1)]
    trigger = stored_jobs(config)["campaign:nightly"].trigger
    assert type(trigger) is BusinessCronTrigger and trigger.expression == "30 2 * * *"
