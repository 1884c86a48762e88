"""``POST /v1/events``: recorded once per key, the key's name as source, seen by on_event campaigns."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import select

from engine.campaigns.loading import load_campaigns
from engine.clock import utcnow
from engine.models.tables import EVENT
from engine.runs.audience import audience_select
from engine.segments.membership import refresh_segments
from tests.api.api_setup import start_api

CART = """
name = "Cart reminder"
segment = "everyone"
strategy = "stimulation"
start = 2026-01-01
on_event = "cart_abandoned"

[[steps]]
channel = "email"
template = "cart.html.j2"
subject = "You left something"
"""


def test_an_event_is_recorded_once_and_a_campaign_picks_it_up(
    db, write_config, serve_app, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "campaigns"
    (folder / "templates").mkdir(parents=True)
    (folder / "templates" / "cart.html.j2").write_text("<p>{{ customer.first_name }}</p>", encoding="utf-8")
    (folder / "cart.toml").write_text(CART, encoding="utf-8")
    api = start_api(db, write_config, serve_app, extra='\n[segments.everyone]\nrule = "true"\n')
    happened = utcnow().replace(microsecond=0) - dt.timedelta(minutes=10)
    event = {
        "customer": "c2@example.com",
        "name": "cart_abandoned",
        "occurred_at": happened.astimezone(dt.timezone(dt.timedelta(hours=-5))).isoformat(),
        "data": {"cart_value": "1990.00", "items": [{"sku": "SKU-1", "qty": 2}], "note": "привет"},
    }
    first = api.post("/v1/events", event, key="events", idempotency="cart-8812")
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["customer"], body["name"], body["source"], body["key"]) == (
        "C2",
        "cart_abandoned",
        "web-shop",
        "cart-8812",
    )
    assert dt.datetime.fromisoformat(body["occurred_at"]) == happened and body["replayed"] is False

    again = api.post("/v1/events", event, key="all", idempotency="cart-8812")  # another key: its own source
    assert again.status_code == 201 and again.json()["source"] == "back-office"
    replay = api.post("/v1/events", event, key="events", idempotency="cart-8812")
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == {**body, "replayed": True}
    before = api.counts()
    assert before["events"] == 2
    other = api.post(
        "/v1/events", {**event, "data": {"cart_value": "5.00"}}, key="events", idempotency="cart-8812"
    )
    assert other.status_code == 409 and other.json()["error"] == "idempotency_conflict"
    assert api.counts() == before

    with db.connect() as connection:
        row = connection.execute(select(EVENT).where(EVENT.c.source == "web-shop")).one()
    assert row.data == event["data"] and row.key == "cart-8812"

    # the campaign's trigger query sees the customer once
    config = api.config
    refresh_segments(db, config, now=utcnow())
    campaign = load_campaigns(config)["cart"].campaign
    query = audience_select(
        campaign,
        scheduled_for=utcnow(),
        window_start=happened - dt.timedelta(minutes=1),
        business_day=utcnow().date(),
    )
    with db.connect() as connection:
        audience = connection.execute(query).scalars().all()
    assert audience == [row.customer_id]


def test_refused_events_record_nothing(db, write_config, serve_app) -> None:  # type: ignore[no-untyped-def]
    api = start_api(db, write_config, serve_app)
    event = {"customer": "C1", "name": "cart_abandoned", "occurred_at": "2027-03-01T12:00:00+03:00"}
    before = api.counts()
    for answer, status, error in (
        (api.post("/v1/events", event, key=None, idempotency="e-1"), 401, "missing_api_key"),
        (api.post("/v1/events", event, key="loyalty", idempotency="e-1"), 403, "forbidden"),
        (api.post("/v1/events", event, key="events"), 400, "missing_idempotency_key"),
        (
            api.post("/v1/events", {**event, "customer": "C9"}, key="events", idempotency="e-1"),
            404,
            "not_found",
        ),
        (
            api.post("/v1/events", {**event, "name": "Cart Abandoned!"}, key="events", idempotency="e-1"),
            422,
            "invalid_request",
        ),
        (
            api.post(
                "/v1/events", {**event, "occurred_at": "2027-03-01T12:00"}, key="events", idempotency="e-1"
            ),
            422,
            "invalid_request",
        ),
        (
            api.post("/v1/events", {**event, "data": {"a": "\x00"}}, key="events", idempotency="e-1"),
            422,
            "invalid_request",
        ),
        (
            api.post("/v1/events", {**event, "data": [1]}, key="events", idempotency="e-1"),
            422,
            "invalid_request",
        ),
        (
            api.post(
                "/v1/events",
                content=b'{"customer": "C1", "name": "x", "data": {"n": NaN}}',
                key="events",
                idempotency="e-1",
            ),
            422,
            "invalid_request",
        ),
        (
            api.post(
                "/v1/events",
                content=b'{"customer": "C1", "name": "x", "data": {"s": "\\ud800"}}',
                key="events",
                idempotency="e-1",
            ),
            422,
            "invalid_request",
        ),
        (
            api.post(
                "/v1/events", {**event, "data": {"blob": "x" * 70_000}}, key="events", idempotency="e-1"
            ),
            413,
            "body_too_large",
        ),
    ):
        assert (answer.status_code, answer.json()["error"]) == (status, error), answer.text
        assert api.counts() == before
