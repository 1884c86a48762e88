"""The daily batch: job order, re-runs, customer events, the scheduler's job, the CLI (both databases)."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from engine.campaigns.loading import load_campaigns
from engine.campaigns.schedules import build_trigger, fire_times
from engine.cli import main as crm_main
from engine.config.checked import load_config
from engine.errors import ConfigValueError
from engine.loyalty.batch.daily import run_batch
from engine.loyalty.batch.events import POINTS_EXPIRING, TIER_CHANGED
from engine.loyalty.ledger.earning import earn_purchase
from engine.loyalty.programme.definition import Programme
from engine.models import CustomerEvent, OutboxMessage
from engine.models import outbox as states
from engine.models.tables import ENTRY, TIER_CHANGE
from engine.runs.runner import start_run
from engine.scheduler import campaign_jobs as jobs
from engine.scheduler.campaign_jobs import fire_time_of
from engine.scheduler.loyalty_jobs import RUN_PROGRAMME_BATCH, run_programme_batch
from engine.scheduler.process import job_specs, reconcile
from engine.segments.membership import refresh_segments
from tests.factories import add_customer, utc
from tests.loyalty.ledger_setup import SHOP, assert_consistent, buckets, customers, lots, shop_programme
from tests.runs.test_runner import EMAIL_STEP, setup
from tests.scheduler.test_scheduler import started, write_campaigns

EVENT = CustomerEvent.__table__  # type: ignore[attr-defined]
OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]
TIERS = '[{ name = "silver", min_spend = 0 }, { name = "gold", min_spend = 50000 }]'


@pytest.fixture(autouse=True)
def _dispose_job_engines() -> Iterator[None]:
    yield
    jobs.dispose_engines()


def programme(write_config: Any, **changes: str) -> Programme:
    """Shop: points available at once, lots live 60 days, notices 30 and 7 days before, silver and gold."""
    settings = {"pending_days": "0", "expiry": '"60d"', "expiry_notice_days": "[7, 30]", "tiers": TIERS}
    return shop_programme(write_config, **{**settings, **changes})


def buy(db: Engine, shop: Programme, customer: str, order: str, amount: int, at: dt.datetime) -> None:
    earn_purchase(db, shop, order=order, customer=customer, amount=Decimal(amount), now=at)


def events(db: Engine) -> list[tuple[str, str, dt.datetime, dict[str, Any]]]:
    """(name, key, occurred_at, data) of every loyalty event, in order."""
    with db.connect() as connection:
        rows = connection.execute(
            select(EVENT.c.name, EVENT.c.key, EVENT.c.occurred_at, EVENT.c.data)
            .where(EVENT.c.source == "loyalty")
            .order_by(EVENT.c.id)
        ).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def test_the_batch_runs_its_jobs_in_order_and_a_second_run_posts_nothing(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    shop = programme(write_config, pending_days="14")
    customers(db, "anna", "boris")
    buy(db, shop, "anna", "A1", 60000, utc(2027, 1, 1, 12))  # 3000 points, available 15 January 12:00
    buy(db, shop, "boris", "B1", 2000, utc(2027, 1, 20, 12))  # 100 points
    first = run_batch(db, shop, now=utc(2027, 1, 16))
    assert first.counts() == {
        "activated_lots": 1,
        "activated_points": 3000,
        "repaid_points": 0,
        "expired_lots": 0,
        "expired_points": 0,
        "voided_holds": 0,
        "upgraded": 2,
        "downgraded": 0,
        "grace_started": 0,
        "tier_changes": 2,
        "points_expiring_events": 0,
        "tier_changed_events": 2,
    }
    assert buckets(db, "anna") == {"available": 3000, "pending": 0, "held": 0, "debt": 0}
    assert_consistent(db)
    again = run_batch(db, shop, now=utc(2027, 1, 16))
    assert set(again.counts().values()) == {0}
    assert run_batch(db, shop, now=utc(2027, 1, 16), jobs=["events", "tiers"]).activate is None
    with pytest.raises(ConfigValueError, match="unknown loyalty job 'tier'"):
        run_batch(db, shop, jobs=["tier"])
    # anna's lot (earned 1 January 12:00) expires on 2 March 12:00
    expired = run_batch(db, shop, now=utc(2027, 3, 2, 12))
    assert (expired.expire.lots, expired.expire.points) == (1, 3000)  # type: ignore[union-attr]
    assert (expired.activate.lots, expired.activate.points) == (1, 100)  # type: ignore[union-attr]
    assert_consistent(db)


def test_expiring_and_tier_events_once_per_key(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    shop = programme(write_config)
    customers(db, "anna", "boris")
    buy(db, shop, "anna", "A1", 60000, utc(2027, 1, 1, 12))  # 3000 points, expire 2 March 12:00
    buy(db, shop, "boris", "B1", 2000, utc(2027, 1, 20, 12))  # 100 points, expire 21 March 12:00
    anna_lot, boris_lot = lots(db, "anna")[0]["id"], lots(db, "boris")[0]["id"]
    run_batch(db, shop, now=utc(2027, 2, 1))
    with db.connect() as connection:
        anna_change, boris_change = connection.execute(
            select(TIER_CHANGE.c.id).order_by(TIER_CHANGE.c.id)
        ).scalars()
    notice = {"programme": "shop", "lot": anna_lot, "points": 3000, "days": 30}
    assert events(db) == [
        (
            POINTS_EXPIRING,
            f"expiring:shop:{anna_lot}:30",
            utc(2027, 2, 1),
            {**notice, "expires_at": "2027-03-02T12:00:00+00:00"},
        ),
        (
            TIER_CHANGED,
            f"tier:shop:{anna_change}",
            utc(2027, 2, 1),
            {"programme": "shop", "from": None, "to": "gold", "reason": "qualified"},
        ),
        (
            TIER_CHANGED,
            f"tier:shop:{boris_change}",
            utc(2027, 2, 1),
            {"programme": "shop", "from": None, "to": "silver", "reason": "qualified"},
        ),
    ]
    # boris's lot is 48 days away: no notice yet; a second run adds nothing
    assert run_batch(db, shop, now=utc(2027, 2, 1)).events.points_expiring == 0  # type: ignore[union-attr]
    run_batch(db, shop, now=utc(2027, 2, 24))  # anna 6.5 days away: 7-day notice; boris 25.5: 30-day notice
    assert [key for _, key, _, _ in events(db)][3:] == [
        f"expiring:shop:{boris_lot}:30",
        f"expiring:shop:{anna_lot}:7",
    ]
    # a lot first seen inside the 7-day notice gets only that one
    customers(db, "vera")
    buy(db, shop, "vera", "V1", 2000, utc(2027, 1, 2))  # expires 3 March 00:00
    run_batch(db, shop, now=utc(2027, 2, 25))
    vera_lot = lots(db, "vera")[0]["id"]
    assert [key for _, key, _, _ in events(db) if f":{vera_lot}:" in key] == [f"expiring:shop:{vera_lot}:7"]
    run_batch(db, shop, now=utc(2027, 3, 2, 12))  # anna's lot expires: nothing more to announce about it
    assert len([key for _, key, _, _ in events(db) if f":{anna_lot}:" in key]) == 2
    with db.connect() as connection:
        total = connection.execute(select(func.count()).select_from(EVENT)).scalar_one()
    assert total == len(events(db)) == 7  # 3 tier changes (vera too), 4 notices
    assert_consistent(db)


def test_a_campaign_on_loyalty_tier_changed_contacts_the_member(
    db: Engine, write_config, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    campaign = (
        'name = "Welcome to gold"\nsegment = "everyone"\nstrategy = "loyalty"\nstart = 2027-01-01\n'
        f'on_event = "loyalty.tier_changed"\nmax_lateness = "1d"\n{EMAIL_STEP}'
    )
    text = SHOP.replace("pending_days = 14", "pending_days = 0") + f"tiers = {TIERS}\n"
    config = setup(write_config, tmp_path, {"gold": campaign}, extra=text)
    with db.begin() as connection:
        anna = add_customer(connection, external_id="anna", email="anna@example.com", consent_email=True)
        add_customer(connection, external_id="boris", email="boris@example.com", consent_email=True)
    refresh_segments(db, config, now=utc(2027, 1, 1))
    shop = config.programmes["shop"]
    buy(db, shop, "anna", "A1", 60000, utc(2027, 3, 1, 9))
    run_batch(db, shop, now=utc(2027, 3, 2, 0))
    ran = start_run(
        db,
        config,
        load_campaigns(config)["gold"],
        scheduled_for=utc(2027, 3, 2, 0, 5),
        now=utc(2027, 3, 2, 0, 5),
    )
    assert ran.counts == {states.QUEUED: 1}
    with db.connect() as connection:
        assert connection.execute(select(OUTBOX.c.customer_id)).scalars().all() == [anna]


CALENDAR = """
[engine]
timezone = "Europe/Moscow"

[loyalty.programmes.shop]
timezone = "Europe/Berlin"
batch_at = 02:30:00
pending_days = 0
"""


def test_the_scheduler_runs_each_programme_daily_at_batch_at_in_its_zone(
    db: Engine, write_config, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    path = write_config(text=CALENDAR)
    write_campaigns(tmp_path / "campaigns", {})
    config = load_config(path)
    [spec] = [
        spec for spec in job_specs(config, load_campaigns(config), engine=db) if spec.id == "loyalty:shop"
    ]
    assert (spec.func, spec.grace_seconds, spec.args("/etc/crm/config.toml")) == (
        RUN_PROGRAMME_BATCH,
        None,
        ("/etc/crm/config.toml", "shop"),
    )
    assert spec.name == "loyalty shop (cron '30 2 * * *' Europe/Berlin)"
    trigger = build_trigger(spec.schedule)
    # Berlin: clocks jump 02:00 -> 03:00 on 28 March 2027 (02:30 fires at 03:00, at the change, as cron does)
    # and go back on 31 October
    assert list(fire_times(trigger, utc(2027, 3, 26, 12), utc(2027, 3, 29, 12))) == [
        utc(2027, 3, 27, 1, 30),  # 02:30 CET
        utc(2027, 3, 28, 1),  # 03:00 CEST, at the change
        utc(2027, 3, 29, 0, 30),  # 02:30 CEST
    ]
    assert list(fire_times(trigger, utc(2027, 10, 29, 12), utc(2027, 11, 1, 12))) == [
        utc(2027, 10, 30, 0, 30),
        utc(2027, 10, 31, 0, 30),  # the first 02:30 only
        utc(2027, 11, 1, 1, 30),  # 02:30 CET
    ]
    scheduler = started(config)
    try:
        result = reconcile(scheduler, [spec], config_path=str(path))
        assert [change.job for change in result.added] == ["loyalty:shop"]
        job = scheduler.get_job("loyalty:shop")
        assert job.func_ref == RUN_PROGRAMME_BATCH and job.args == (str(path), "shop")
        assert job.misfire_grace_time is None and job.coalesce
        removed = reconcile(scheduler, [], config_path=str(path))
        assert [(c.job, c.note) for c in removed.removed] == [("loyalty:shop", "no such loyalty programme")]
    finally:
        scheduler.shutdown(wait=False)


def test_the_job_runs_the_batch_as_of_its_due_time(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    shop = programme(write_config, pending_days="14")
    customers(db, "anna")
    buy(db, shop, "anna", "A1", 2000, utc(2027, 1, 1, 12))
    due = utc(2027, 1, 16, 2)  # the job ran late, but acts as of when it was due
    with fire_time_of(due):
        run_programme_batch(os.environ["CRM_CONFIG"], "shop")
    with db.connect() as connection:
        posted = (
            connection.execute(select(ENTRY.c.posted_at).where(ENTRY.c.kind == "activate")).scalars().all()
        )
    assert posted == [due, due]
    run_programme_batch(os.environ["CRM_CONFIG"], "nope")  # logged, not raised


def test_cli_expire_and_tiers(db: Engine, write_config, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    shop = programme(write_config)
    customers(db, "anna", "boris")
    buy(db, shop, "anna", "A1", 60000, utc(2027, 1, 1, 12))  # 3000 points, expire 2 March 12:00
    buy(db, shop, "boris", "B1", 2000, utc(2027, 1, 20, 12))  # 100 points, expire 21 March 12:00

    assert crm_main(["loyalty", "expire", "--dry-run"]) == 1  # two programmes: bonus and shop
    assert "--programme" in capsys.readouterr().err
    assert crm_main(["loyalty", "expire", "-p", "shop", "--as-of", "2027-03-02", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "3,000 points of 1 lots on 1 accounts would expire" in out and "anna" in out
    assert buckets(db, "anna")["available"] == 3000
    assert crm_main(["loyalty", "expire", "-p", "shop", "--as-of", "2027-03-02"]) == 0
    out = capsys.readouterr().out
    assert "expired 3,000 points of 1 lots on 1 accounts" in out
    assert crm_main(["loyalty", "expire", "-p", "shop", "--as-of", "2027-03-02", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["expired"]["lots"] == 0

    assert crm_main(["loyalty", "tiers", "-p", "shop", "--recompute", "--as-of", "2027-02-01"]) == 0
    out = capsys.readouterr().out
    assert "2 accounts recomputed: 2 up" in out and "gold 1, silver 1" in out
    assert crm_main(["loyalty", "tiers", "-p", "shop", "--customer", "boris", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(a["customer"], a["tier"]) for a in report["accounts"]] == [("boris", "silver")]
    args = ["loyalty", "tiers", "-p", "shop", "--set", "boris", "gold", "--until", "2099-06-30"]
    assert crm_main([*args, "--reason", "status match"]) == 0
    assert "boris: silver -> gold until 2099-07-01 00:00" in capsys.readouterr().out
    assert crm_main(args) == 1
    assert "needs --until DATE and --reason TEXT" in capsys.readouterr().err
    assert (
        crm_main(
            [
                "loyalty",
                "tiers",
                "-p",
                "shop",
                "--set",
                "boris",
                "diamond",
                "--until",
                "2099-06-30",
                "--reason",
                "x",
            ]
        )
        == 1
    )
    assert "unknown tier" in capsys.readouterr().err
    assert crm_main(["loyalty", "tiers", "-p", "shop"]) == 0
    assert "gold 2" in capsys.readouterr().out
