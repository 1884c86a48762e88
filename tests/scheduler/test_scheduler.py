"""The scheduler's job store on both databases: reconciling with campaign files, firing at the due time,
expiring what an outage made too late, across DST changes (frozen clocks, jobs run inline)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import freezegun.api
import pytest
from freezegun import freeze_time
from freezegun.api import FakeDatetime
from sqlalchemy import Engine, insert, select, text

from engine.campaigns.loading import load_campaigns
from engine.clock import utcnow
from engine.config.checked import Config, load_config
from engine.errors import ConfigErrors, DatabaseError
from engine.models import CampaignRun, SchedulerReload
from engine.models import outbox as states
from engine.scheduler import campaign_jobs as jobs
from engine.scheduler.lock import scheduler_lock
from engine.scheduler.process import (
    ADVANCE_ID,
    CampaignScheduler,
    ReconcileResult,
    job_specs,
    reconcile,
    reload_scheduler,
    run_scheduler,
)
from engine.sql.locks import FileLock
from tests.factories import utc

RUN = CampaignRun.__table__  # type: ignore[attr-defined]
RELOAD = SchedulerReload.__table__  # type: ignore[attr-defined]
BERLIN = ZoneInfo("Europe/Berlin")

CONFIG = """
[engine]
timezone = "Europe/Berlin"

[channels.email]
unit_cost = 0.50

[segments.everyone]
rule = "true"
"""


def campaign_text(trigger: str, *, start: str = "2026-01-01", extra: str = "") -> str:
    """A campaign file for segment ``everyone`` with one email step and ``trigger``."""
    return (
        f'name = "Test"\nsegment = "everyone"\nstrategy = "stimulation"\n'
        f"start = {start}\n{trigger}\n{extra}\n"
        '[[steps]]\nchannel = "email"\ntemplate = "note.html.j2"\nsubject = "Hello"\n'
    )


WEEKLY: dict[str, str | None] = {"weekly": campaign_text('schedule = "0 10 * * MON"')}


def write_campaigns(folder: Path, campaigns: dict[str, str | None]) -> None:
    """Write (or, for None, delete) campaign files under ``folder``."""
    (folder / "templates").mkdir(parents=True, exist_ok=True)
    (folder / "templates" / "note.html.j2").write_text(
        "<p>Hi {{ customer.first_name }}</p>", encoding="utf-8"
    )
    for key, body in campaigns.items():
        path = folder / f"{key}.toml"
        if body is None:
            path.unlink()
        else:
            path.write_text(body, encoding="utf-8")


def workspace(write_config: Any, tmp_path: Path, campaigns: dict[str, str | None]) -> Config:
    """config.toml (Berlin, one segment of everybody) and campaigns/ in ``tmp_path``."""
    path = write_config(text=CONFIG)
    write_campaigns(tmp_path / "campaigns", campaigns)
    return load_config(path)


@pytest.fixture(autouse=True)
def _dispose_job_engines() -> Iterator[None]:
    yield
    jobs.dispose_engines()


@pytest.fixture(autouse=True)
def _frozen_datetimes_keep_fold(monkeypatch: pytest.MonkeyPatch) -> None:
    """freezegun drops ``fold`` when it converts a datetime (spulec/freezegun#422), which turns the
    second 02:30 of the night clocks go back into the first; keep it, as real datetimes do."""

    def keep_fold(value: dt.datetime) -> FakeDatetime:
        return FakeDatetime(
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond,
            value.tzinfo,
            fold=value.fold,
        )

    monkeypatch.setattr(freezegun.api, "datetime_to_fakedatetime", keep_fold)


def started(config: Config) -> CampaignScheduler:
    """A scheduler on the test database, started paused, running jobs inline."""
    scheduler = CampaignScheduler(config.database_url, str(config.path), BERLIN, inline=True)
    scheduler.start(paused=True)
    return scheduler


def reconciled(
    db: Engine, config: Config, *, housekeeping: bool = True
) -> tuple[CampaignScheduler, ReconcileResult]:
    """A running scheduler whose store was reconciled with the campaign files now."""
    scheduler = started(config)
    specs = job_specs(config, load_campaigns(config), engine=db)
    if not housekeeping:
        specs = [spec for spec in specs if spec.id != ADVANCE_ID]
    result = reconcile(scheduler, specs, config_path=str(config.path))
    scheduler.resume()
    return scheduler, result


def stored_jobs(config: Config) -> dict[str, Any]:
    """The jobs in the store: id -> job."""
    scheduler = started(config)
    try:
        return {job.id: job for job in scheduler.get_jobs()}
    finally:
        scheduler.shutdown(wait=False)


def runs(db: Engine) -> list[tuple[str, dt.datetime, str]]:
    """Every recorded run: (campaign, due time, state), by due time."""
    with db.connect() as connection:
        rows = connection.execute(
            select(RUN.c.campaign, RUN.c.scheduled_for, RUN.c.state).order_by(RUN.c.scheduled_for)
        ).all()
    return [(c, s, state) for c, s, state in rows]


def details(db: Engine) -> list[str]:
    with db.connect() as connection:
        return [
            d or "" for d in connection.execute(select(RUN.c.detail).order_by(RUN.c.scheduled_for)).scalars()
        ]


def ids(changes: list[Any]) -> list[str]:
    return [change.job for change in changes]


def test_reload_adds_changes_and_removes_jobs_and_keeps_unchanged_ones(db, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = workspace(
        write_config,
        tmp_path,
        {
            "weekly": campaign_text('schedule = "0 10 * * MON"', extra='max_lateness = "30m"'),
            "launch": campaign_text("at = 2026-06-01T09:00:00"),
            "entries": campaign_text("on_segment_entry = true"),
            "birthday": campaign_text('anniversary = { field = "birth_date", offset_days = -3 }'),
            "shipped": campaign_text('on_event = "order.shipped"'),
            "over": campaign_text('schedule = "0 10 * * *"', start="2026-01-01", extra="end = 2026-01-31"),
        },
    )
    with freeze_time("2026-03-04 12:02:00"):  # a Wednesday
        first = reload_scheduler(config.path)
        assert not first.running
        assert ids(first.result.added) == [
            ADVANCE_ID,
            "campaign:birthday",
            "campaign:entries",
            "campaign:launch",
            "campaign:shipped",
            "campaign:weekly",
        ]
        assert ids(first.result.finished) == ["campaign:over"]
        assert first.result.finished[0].note == "ended 2026-01-31"
        store = stored_jobs(config)
    assert set(store) == set(ids(first.result.added))
    weekly = store["campaign:weekly"]
    assert weekly.next_run_time == utc(2026, 3, 9, 9)  # Monday 10:00 in Berlin
    # not coalesced by APScheduler: each missed firing is seen (and recorded, see the outage tests)
    assert weekly.misfire_grace_time == 30 * 60 and not weekly.coalesce
    assert weekly.args == (str(config.path.resolve()), "weekly")
    assert weekly.func_ref == "engine.scheduler.campaign_jobs:fire_campaign"
    assert store["campaign:launch"].next_run_time == utc(2026, 6, 1, 7)
    assert store["campaign:launch"].misfire_grace_time == 3600  # the default max_lateness, 1h
    assert store["campaign:entries"].next_run_time == utc(2026, 3, 4, 12, 5)
    assert store["campaign:birthday"].next_run_time == utc(2026, 3, 5, 5)  # 06:00 in Berlin
    assert store[ADVANCE_ID].next_run_time == utc(2026, 3, 4, 12, 3)
    assert store[ADVANCE_ID].misfire_grace_time is None

    write_campaigns(
        tmp_path / "campaigns",
        {
            "weekly": campaign_text('schedule = "0 11 * * MON"', extra='max_lateness = "30m"'),
            "shipped": None,
            "welcome": campaign_text("on_segment_entry = true"),
            # new content, same schedule: the job stays as it is (content is read when it fires)
            "launch": campaign_text("at = 2026-06-01T09:00:00", extra="priority = 5"),
        },
    )
    with freeze_time("2026-03-04 12:02:30"):
        second = reload_scheduler(config.path)
        store_after = stored_jobs(config)
    assert ids(second.result.added) == ["campaign:welcome"]
    assert ids(second.result.changed) == ["campaign:weekly"]
    assert second.result.changed[0].next_run == utc(2026, 3, 9, 10)
    assert ids(second.result.removed) == ["campaign:shipped"]
    assert ids(second.result.unchanged) == [
        ADVANCE_ID,
        "campaign:birthday",
        "campaign:entries",
        "campaign:launch",
    ]
    assert set(store_after) == {
        ADVANCE_ID,
        "campaign:birthday",
        "campaign:entries",
        "campaign:launch",
        "campaign:weekly",
        "campaign:welcome",
    }
    for key in ("campaign:entries", "campaign:launch", ADVANCE_ID):
        assert store_after[key].next_run_time == store[key].next_run_time

    # every reload is recorded with what it changed
    with db.connect() as connection:
        recorded = connection.execute(select(RELOAD.c.id, RELOAD.c.result).order_by(RELOAD.c.id)).all()
    assert [r.id for r in recorded] == [first.request, second.request]
    assert ReconcileResult.from_json(recorded[1].result).changed[0].job == "campaign:weekly"


def test_a_bad_campaign_file_changes_nothing(db, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = workspace(write_config, tmp_path, WEEKLY)
    reload_scheduler(config.path)
    before = {job_id: job.next_run_time for job_id, job in stored_jobs(config).items()}
    write_campaigns(
        tmp_path / "campaigns",
        {
            "weekly": campaign_text('schedule = "0 11 * * MON"'),
            "broken": campaign_text('schedule = "61 * * * *"'),
        },
    )
    with pytest.raises(ConfigErrors, match=r"broken\.toml"):
        reload_scheduler(config.path)
    assert {job_id: job.next_run_time for job_id, job in stored_jobs(config).items()} == before


def test_a_firing_runs_for_its_due_time_and_one_later_than_max_lateness_is_expired(
    db, write_config, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    config = workspace(write_config, tmp_path, WEEKLY)
    with freeze_time("2026-03-02 08:00:00") as clock:  # Monday 09:00 in Berlin
        scheduler, _ = reconciled(db, config)
        try:
            clock.move_to("2026-03-02 09:20:00")  # 10:20: twenty minutes late, within the hour
            scheduler.run_pending()
            assert runs(db) == [("weekly", utc(2026, 3, 2, 9), states.RUN_QUEUED)]

            # the scheduler is down for a week and comes back at 12:30, 2.5 hours after the next firing
            clock.move_to("2026-03-09 11:30:00")
            scheduler.run_pending()
            assert runs(db)[1:] == [("weekly", utc(2026, 3, 9, 9), states.RUN_EXPIRED)]
            assert "fired 2:30:00 late" in details(db)[1] and "max_lateness 1h" in details(db)[1]
            assert scheduler.get_job("campaign:weekly").next_run_time == utc(2026, 3, 16, 9)

            # down three weeks: each missed firing is recorded as expired, none is skipped silently
            clock.move_to("2026-03-30 10:30:00")  # Monday 12:30 summer time
            scheduler.run_pending()
            assert runs(db)[2:] == [
                ("weekly", utc(2026, 3, 16, 9), states.RUN_EXPIRED),
                ("weekly", utc(2026, 3, 23, 9), states.RUN_EXPIRED),
                ("weekly", utc(2026, 3, 30, 8), states.RUN_EXPIRED),
            ]

            # back 59 minutes after the next firing: still within max_lateness, so it runs
            clock.move_to("2026-04-06 08:59:00")  # Monday 10:59 summer time
            scheduler.run_pending()
            assert runs(db)[5:] == [("weekly", utc(2026, 4, 6, 8), states.RUN_QUEUED)]
        finally:
            scheduler.shutdown(wait=True)


def test_a_one_off_missed_by_an_outage_is_expired_and_finished(db, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = workspace(
        write_config,
        tmp_path,
        {
            "launch": campaign_text("at = 2026-03-04T10:00:00"),
            "soon": campaign_text("at = 2026-03-04T12:30:00"),
        },
    )
    with freeze_time("2026-03-04 08:00:00") as clock:
        reload_scheduler(config.path)  # nothing runs it until 13:00 Berlin time
        clock.move_to("2026-03-04 12:00:00")
        scheduler, result = reconciled(db, config)
        assert ids(result.unchanged) == [ADVANCE_ID, "campaign:launch", "campaign:soon"]
        try:
            scheduler.run_pending()
        finally:
            scheduler.shutdown(wait=True)
        assert runs(db) == [
            ("launch", utc(2026, 3, 4, 9), states.RUN_EXPIRED),
            ("soon", utc(2026, 3, 4, 11, 30), states.RUN_QUEUED),
        ]
        assert set(stored_jobs(config)) == {ADVANCE_ID}
        again = reload_scheduler(config.path)
    assert [(c.job, c.note) for c in again.result.finished] == [
        ("campaign:launch", "fired already: run 1 expired"),
        ("campaign:soon", "fired already: run 2 queued"),
    ]
    assert not again.result.added


@pytest.mark.parametrize(
    ("start", "until", "due"),
    [
        # spring forward: 02:30 does not exist on 29 March and fires at the change, 03:00 summer
        # time (as cron does; APScheduler's CronTrigger fired it at 03:30)
        (
            "2026-03-27 22:00:00",
            "2026-03-30 04:00:00",
            [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1), utc(2026, 3, 30, 0, 30)],
        ),
        # fall back: 02:30 happens twice on 25 October and fires once, at the first
        (
            "2026-10-23 22:00:00",
            "2026-10-26 04:00:00",
            [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)],
        ),
    ],
)
def test_the_scheduler_fires_a_daily_campaign_once_a_day_across_dst(
    db, write_config, tmp_path, start: str, until: str, due: list[dt.datetime]
) -> None:  # type: ignore[no-untyped-def]
    config = workspace(write_config, tmp_path, {"nightly": campaign_text('schedule = "30 2 * * *"')})
    with freeze_time(start) as clock:
        scheduler, _ = reconciled(db, config, housekeeping=False)
        try:
            now = dt.datetime.fromisoformat(start).replace(tzinfo=dt.UTC)
            while now < dt.datetime.fromisoformat(until).replace(tzinfo=dt.UTC):
                now += dt.timedelta(minutes=15)
                clock.move_to(now)
                scheduler.run_pending()
        finally:
            scheduler.shutdown(wait=True)
    assert [(key, when) for key, when, _ in runs(db)] == [("nightly", when) for when in due]
    assert {state for _, _, state in runs(db)} <= {states.RUN_QUEUED, states.RUN_DONE}  # none too late


SANTIAGO = """
[engine]
timezone = "America/Santiago"

[channels.email]
unit_cost = 0.50

[segments.everyone]
rule = "true"

[loyalty.programmes.shop]
batch_at = 00:00:00
"""


def test_a_midnight_campaign_and_batch_run_once_on_the_night_clocks_skip_midnight(
    db, write_config, tmp_path, caplog
) -> None:  # type: ignore[no-untyped-def]
    # Santiago, 6 September 2026: at 00:00 -04 (04:00 UTC) the clocks jump to 01:00 -03, so that
    # day has no midnight; APScheduler's CronTrigger skipped the day, the firing now comes at the change
    path = write_config(text=SANTIAGO)
    write_campaigns(tmp_path / "campaigns", {"midnight": campaign_text('schedule = "0 0 * * *"')})
    config = load_config(path)
    caplog.set_level("INFO", logger="engine.scheduler")
    with freeze_time("2026-09-05 12:00:00") as clock:
        scheduler, result = reconciled(db, config, housekeeping=False)
        assert ids(result.added) == ["campaign:midnight", "loyalty:shop"]
        try:
            now = utc(2026, 9, 5, 12)
            while now < utc(2026, 9, 7, 12):
                now += dt.timedelta(minutes=15)
                clock.move_to(now)
                scheduler.run_pending()
        finally:
            scheduler.shutdown(wait=True)
    change, next_midnight = utc(2026, 9, 6, 4), utc(2026, 9, 7, 3)  # 01:00 -03, then 00:00 -03
    assert [(key, when) for key, when, _ in runs(db)] == [("midnight", change), ("midnight", next_midnight)]
    assert {state for _, _, state in runs(db)} <= {states.RUN_QUEUED, states.RUN_DONE}  # none too late
    batches = [r.getMessage() for r in caplog.records if r.getMessage().startswith("loyalty batch of shop")]
    assert [line.split(": ")[0] for line in batches] == [
        f"loyalty batch of shop as of {change.isoformat()}",
        f"loyalty batch of shop as of {next_midnight.isoformat()}",
    ]


def test_the_housekeeping_job_closes_finished_runs(db, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = workspace(write_config, tmp_path, {"launch": campaign_text("at = 2026-03-04T10:00:00")})
    with freeze_time("2026-03-04 08:59:00") as clock:
        scheduler, _ = reconciled(db, config)
        try:
            clock.move_to("2026-03-04 09:00:30")
            scheduler.run_pending()
            assert runs(db) == [("launch", utc(2026, 3, 4, 9), states.RUN_QUEUED)]  # nobody in the segment
            clock.move_to("2026-03-04 09:01:00")
            scheduler.run_pending()
            assert runs(db) == [("launch", utc(2026, 3, 4, 9), states.RUN_DONE)]
        finally:
            scheduler.shutdown(wait=True)


def test_a_running_scheduler_applies_the_newest_reload_and_supersedes_older_ones(
    db, write_config, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    config = workspace(write_config, tmp_path, WEEKLY)
    stop = threading.Event()
    thread = threading.Thread(target=run_scheduler, args=(config.path,), kwargs={"stop": stop})
    thread.start()
    try:
        until(lambda: not _lock_free(db), "the scheduler to take the lock")
        until(lambda: "campaign:weekly" in stored_jobs(config), "the first reconciliation")
        wanted = []
        for schedule in ("0 11 * * MON", "0 12 * * MON"):
            write_campaigns(tmp_path / "campaigns", {"weekly": campaign_text(f'schedule = "{schedule}"')})
            specs = job_specs(config, load_campaigns(config), engine=db)
            wanted.append({"jobs": [spec.to_json() for spec in specs]})
        with db.begin() as connection:  # both at once: the scheduler sees two pending requests
            older, newer = (
                connection.execute(
                    insert(RELOAD)
                    .values(requested_at=utcnow(), requested_by="test", jobs=jobs_)
                    .returning(RELOAD.c.id)
                ).scalar_one()
                for jobs_ in wanted
            )
        until(
            lambda: all(result is not None for result in _reload_results(db).values()), "the reloads applied"
        )
        results = _reload_results(db)
        assert results[older] == {"superseded_by": newer}
        assert [c.schedule for c in ReconcileResult.from_json(results[newer]).changed] == [
            "cron '0 12 * * MON' Europe/Berlin, 2026-01-01.."
        ]
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not thread.is_alive()
    assert _lock_free(db)


def _lock_free(db: Engine) -> bool:
    lock = scheduler_lock(db, "test")
    try:
        return lock.acquire(0)
    finally:
        lock.release()


def _reload_results(db: Engine) -> dict[int, Any]:
    with db.connect() as connection:
        return dict(connection.execute(select(RELOAD.c.id, RELOAD.c.result)).all())


def until(condition: Any, what: str, deadline: float = 90.0) -> None:
    """Poll ``condition`` until it holds; fail (naming ``what``) only past a generous deadline."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"waited {deadline:g}s for {what}")
        time.sleep(0.1)


def test_the_lock_admits_one_holder_names_it_and_notices_its_loss(db) -> None:  # type: ignore[no-untyped-def]
    first, second = scheduler_lock(db, "host-a pid 1"), scheduler_lock(db, "host-b pid 2")
    try:
        assert first.acquire(0)
        first.check()
        assert not second.acquire(0) and not second.acquire(0.3)
        assert (second.holder() or "").startswith("host-a pid 1")
        first.release()
        assert second.acquire(5)
        assert (first.holder() or "").startswith("host-b pid 2")
        # the lock is taken away: the PostgreSQL session ends, or the lock file is removed
        if db.dialect.name == "postgresql":
            with db.connect() as connection:
                connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE application_name = 'crm scheduler host-b pid 2'"
                    )
                )
        else:
            assert isinstance(second, FileLock)
            second.path.unlink()
        errors: list[str] = []

        def lost() -> bool:
            try:
                second.check()
            except DatabaseError as exc:
                errors.append(str(exc))
                return True
            return False

        until(lost, "the holder to notice")
        assert errors[0].startswith("lost the scheduler lock")
    finally:
        first.release()
        second.release()


def test_stopping_lets_the_running_job_finish(db, write_config, tmp_path, monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    due = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=1)
    config = workspace(write_config, tmp_path, {"launch": campaign_text(f"at = {due.isoformat()}")})
    entered, release = threading.Event(), threading.Event()
    real_start_run = jobs.start_run

    def slow_start_run(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        release.wait(timeout=120)
        return real_start_run(*args, **kwargs)

    monkeypatch.setattr(jobs, "start_run", slow_start_run)
    caplog.set_level("INFO", logger="engine.scheduler")
    stop = threading.Event()
    thread = threading.Thread(target=run_scheduler, args=(config.path,), kwargs={"stop": stop})
    thread.start()
    try:
        until(entered.is_set, "the job to start")
        stop.set()
        until(lambda: "waiting for running jobs to finish" in caplog.text, "the scheduler to stop")
        assert thread.is_alive() and runs(db) == []  # it waits for the job
    finally:
        release.set()
        thread.join(timeout=120)
    assert not thread.is_alive()
    assert runs(db) == [("launch", due, states.RUN_QUEUED)]
    assert "scheduler stopped" in caplog.text


def test_firings_missed_within_the_lateness_run_once_and_the_earlier_ones_are_recorded(
    db, write_config, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    hourly = {"hourly": campaign_text('schedule = "0 * * * *"', extra='max_lateness = "1d"')}
    config = workspace(write_config, tmp_path, hourly)
    with freeze_time("2026-03-02 08:30:00") as clock:
        scheduler, _ = reconciled(db, config, housekeeping=False)
        try:
            # down from 09:30 to 12:10 Berlin: the firings of 10:00, 11:00 and 12:00 are all within a day
            clock.move_to("2026-03-02 11:10:00")
            scheduler.run_pending()
            assert runs(db) == [
                ("hourly", utc(2026, 3, 2, 9), states.RUN_EXPIRED),
                ("hourly", utc(2026, 3, 2, 10), states.RUN_EXPIRED),
                ("hourly", utc(2026, 3, 2, 11), states.RUN_QUEUED),
            ]
            assert all("the firing due 2026-03-02 12:00 CET ran in its place" in d for d in details(db)[:2])
        finally:
            scheduler.shutdown(wait=True)
