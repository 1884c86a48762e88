"""What a contact costs is the price in force on the day it is sent, for its campaign and segment."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

from engine.campaigns.loading import load_campaigns
from engine.channels import MemoryChannel
from engine.models import outbox as states
from engine.outbox import drain
from engine.runs.runner import start_run
from engine.segments.membership import refresh_segments
from tests.factories import add_customer, utc
from tests.outbox.factories import CAMPAIGN, T0, Clock, add_run, queue, rows_of, workspace

#: from 2 December: the channel, the segment "everyone" and the campaign "note" each get a new price
PRICES = """prices = [
  { from = 2026-12-02, unit_cost = 0.45 },
  { from = 2026-12-02, segment = "everyone", unit_cost = 0.50 },
  { from = 2026-12-02, campaign = "note", unit_cost = 0.55 },
]"""
VIP = '\n[segments.vip]\nrule = "true"\n'
NEXT_MORNING = utc(2026, 12, 2, 6)  # 09:00 in Moscow, 2 December: quiet hours are over


def test_a_price_change_between_materialising_and_sending_is_what_the_contact_records(  # type: ignore[no-untyped-def]
    db, write_config, tmp_path: Path
) -> None:
    evening = CAMPAIGN.replace("at = 2026-12-01T12:00:00", "at = 2026-12-01T22:00:00")
    config = workspace(write_config, tmp_path, email=PRICES, campaign=evening)
    with db.begin() as connection:
        anna = add_customer(connection, first_name="Anna", email="anna@example.ru", consent_email=True)
    refresh_segments(db, config, now=T0)
    fired = utc(2026, 12, 1, 19)  # 22:00 in Moscow: quiet hours, the email waits for the morning
    run = start_run(db, config, load_campaigns(config)["note"], scheduled_for=fired, now=fired)
    queued = rows_of(db, run.run_id)[(anna, 0)]
    assert (queued.state, queued.scheduled_at, queued.unit_cost) == (
        states.QUEUED,
        NEXT_MORNING,
        Decimal("0.40"),
    )

    clock = Clock(NEXT_MORNING + dt.timedelta(minutes=5))
    summary = drain(db, config, channels={"email": MemoryChannel("email")}, until_idle=True, clock=clock)
    assert summary.sent == 1
    sent = rows_of(db, run.run_id)[(anna, 0)]
    # materialised on 1 December at unit_cost; sent on 2 December at the campaign's new price
    assert (sent.state, sent.sent_at, sent.unit_cost) == (states.SENT, clock.now, Decimal("0.55"))


def test_the_campaign_price_beats_the_segment_price_beats_the_channel_price_beats_unit_cost(  # type: ignore[no-untyped-def]
    db, write_config, tmp_path: Path
) -> None:
    config = workspace(write_config, tmp_path, email=PRICES, extra=VIP)
    folder = tmp_path / "campaigns"
    (folder / "other.toml").write_text(CAMPAIGN, encoding="utf-8")
    (folder / "third.toml").write_text(CAMPAIGN.replace('segment = "everyone"', 'segment = "vip"'), "utf-8")
    with db.begin() as connection:
        early, note, other, third = (
            add_customer(connection, first_name=name, email=f"{name}@example.ru", consent_email=True)
            for name in ("early", "note", "other", "third")
        )
        runs = {
            "note": add_run(connection, "note"),
            "other": add_run(connection, "other"),
            "third": add_run(connection, "third", segment="vip"),
        }
        queue(connection, runs["note"], [early])  # sent on 1 December, before every new price
        for key, customer in (("note", note), ("other", other), ("third", third)):
            queue(connection, runs[key], [customer], scheduled_at=NEXT_MORNING)
    memory = MemoryChannel("email")
    clock = Clock(T0 + dt.timedelta(minutes=5))
    assert drain(db, config, channels={"email": memory}, until_idle=True, clock=clock).sent == 1
    clock.now = NEXT_MORNING + dt.timedelta(minutes=5)
    assert drain(db, config, channels={"email": memory}, until_idle=True, clock=clock).sent == 3

    rows = {customer: row for (customer, _), row in rows_of(db).items()}
    assert {customer: rows[customer].state for customer in rows} == dict.fromkeys(rows, states.SENT)
    assert rows[early].unit_cost == Decimal("0.40")  # unit_cost: no price in force yet
    assert rows[note].unit_cost == Decimal("0.55")  # the campaign's own price
    assert rows[other].unit_cost == Decimal("0.50")  # the segment's price
    assert rows[third].unit_cost == Decimal("0.45")  # the channel's dated price (segment vip has none)
