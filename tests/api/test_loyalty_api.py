"""The loyalty API over a real uvicorn server: every command with exact numbers, replays, refusals."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import httpx
from sqlalchemy import select

from engine.api.keys import create_api_key, revoke_api_key
from engine.clock import utcnow
from engine.loyalty.ledger import earn_purchase
from engine.models.tables import CUSTOMER
from tests.api.api_setup import Api, start_api

SHOP = "/v1/loyalty/shop"


def _moscow(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone(dt.timedelta(hours=3))).isoformat()


def _created(answer: httpx.Response) -> dict:  # type: ignore[type-arg]
    assert answer.status_code == 201, answer.text
    assert "Idempotent-Replayed" not in answer.headers
    body: dict = answer.json()  # type: ignore[type-arg]
    assert body["replayed"] is False
    return body


def test_earn_redeem_hold_capture_void_refund_balance_statement(db, write_config, serve_app) -> None:  # type: ignore[no-untyped-def]
    api = start_api(db, write_config, serve_app)
    bought_at = utcnow() - dt.timedelta(hours=1)
    purchase = {
        "customer": "C1",
        "order": "O-1",
        "amount": "2000.00",
        "category": "cosmetics",
        "sku": "SKU-1",
        "occurred_at": _moscow(bought_at),
    }
    earned = _created(api.post(f"{SHOP}/earn", purchase, idempotency="O-1"))
    # 5 % of 2000 = 100, doubled for cosmetics; no return window: available at once
    assert (earned["key"], earned["command"], earned["customer"]) == ("purchase:O-1", "earn", "C1")
    assert (earned["points"], earned["available"], earned["pending"], earned["held"]) == (200, 200, 0, 0)
    assert api.counts() == {"operations": 1, "entries": 1, "purchases": 1, "events": 0}

    # a retry of the same purchase: the stored receipt, nothing new
    again = api.post(f"{SHOP}/earn", purchase, idempotency="O-1")
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == {**earned, "replayed": True}
    assert api.counts()["entries"] == 1

    # a member named by email, points for an event by its rule
    referral = _created(
        api.post(f"{SHOP}/earn", {"customer": "c1@example.com", "event": "referral"}, idempotency="ref-C1")
    )
    assert (referral["customer"], referral["points"], referral["available"]) == ("C1", 300, 500)

    spent = _created(
        api.post(
            f"{SHOP}/redeem",
            {"customer": "C1", "points": 120, "order": "O-2", "order_amount": "600.00"},
            idempotency="R-1",
        )
    )
    assert (spent["command"], spent["points"], spent["available"]) == ("redeem", 120, 380)
    assert spent["detail"]["value"] == "60.00"  # 120 points at 0.5

    held = _created(
        api.post(f"{SHOP}/redeem", {"customer": "C1", "reward": "coffee", "hold": True}, idempotency="H-1")
    )
    assert (held["command"], held["points"], held["available"], held["held"]) == ("hold", 150, 230, 150)
    captured = _created(api.post(f"{SHOP}/holds/H-1/capture", idempotency="H-1-capture"))
    assert (captured["command"], captured["points"], captured["available"], captured["held"]) == (
        "capture",
        150,
        230,
        0,
    )
    _created(api.post(f"{SHOP}/redeem", {"customer": "C1", "points": 30, "hold": True}, idempotency="H/2"))
    voided = _created(api.post(f"{SHOP}/holds/H/2/void", idempotency="H-2-void"))
    assert (voided["command"], voided["points"], voided["available"], voided["held"]) == ("void", 30, 230, 0)

    refunded = _created(
        api.post(f"{SHOP}/refund", {"order": "O-1", "amount": "1000.00"}, idempotency="RET-1")
    )
    # half of the order: half of its 200 points go back
    assert (refunded["command"], refunded["points"], refunded["available"]) == ("refund", -100, 130)
    assert refunded["detail"]["refunded"] == "1000.00"

    balance = api.get(f"{SHOP}/customers/C1/balance")
    assert balance.status_code == 200, balance.text
    shown = balance.json()
    assert (shown["available"], shown["pending"], shown["held"], shown["debt"]) == (130, 0, 0, 0)
    assert (shown["value"], shown["currency"], shown["open_holds"]) == ("65.00", "RUB", [])
    assert sum(lot["remaining"] for lot in shown["lots"]) == 130

    statement = api.get(f"{SHOP}/customers/%23{_customer_id(api, 'C1')}/statement")
    assert statement.status_code == 200, statement.text
    lines = statement.json()
    assert (lines["customer"], lines["opening"], lines["closing"]) == ("C1", 0, 130)
    assert lines["lines"][-1]["balance"] == 130
    assert [line["points"] for line in lines["lines"] if line["command"] == "earn"] == [200, 300]
    later = api.get(
        f"{SHOP}/customers/C1/statement", params={"since": _moscow(utcnow() + dt.timedelta(minutes=5))}
    )
    assert (later.json()["opening"], later.json()["lines"]) == (130, [])


def _customer_id(api: Api, external_id: str) -> int:
    with api.db.connect() as connection:
        return int(
            connection.execute(
                select(CUSTOMER.c.id).where(CUSTOMER.c.external_id == external_id)
            ).scalar_one()
        )


def _refused(api: Api, answer: httpx.Response, status: int, error: str, before: dict[str, int]) -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["error"] == error and body["detail"], body
    assert api.counts() == before, f"{error}: something was recorded"


def _chunks(size: int) -> Iterator[bytes]:
    yield b'{"customer": "'
    for _ in range(size // 1000):
        yield b"x" * 1000
    yield b'"}'


def test_refused_requests_change_nothing(db, write_config, serve_app) -> None:  # type: ignore[no-untyped-def]
    api = start_api(db, write_config, serve_app)
    purchase = {"customer": "C1", "order": "O-1", "amount": "2000.00"}
    _created(api.post(f"{SHOP}/earn", purchase, idempotency="O-1"))
    _created(api.post(f"{SHOP}/redeem", {"customer": "C1", "points": 10}, idempotency="R-1"))
    before = api.counts()
    earn = f"{SHOP}/earn"

    # keys: missing, unknown, malformed, revoked, without the scope
    _refused(api, api.post(earn, purchase, key=None, idempotency="O-9"), 401, "missing_api_key", before)
    unknown = {"Authorization": "Bearer crm_0123456789ab_" + "x" * 43}
    _refused(
        api,
        api.post(earn, purchase, key=None, idempotency="O-9", headers=unknown),
        401,
        "invalid_api_key",
        before,
    )
    garbage = {"X-API-Key": "hello"}
    _refused(
        api,
        api.post(earn, purchase, key=None, idempotency="O-9", headers=garbage),
        401,
        "invalid_api_key",
        before,
    )
    old = create_api_key(db, "old-pos", ["loyalty"]).key
    revoke_api_key(db, "old-pos")
    revoked = {"X-API-Key": old}
    _refused(
        api,
        api.post(earn, purchase, key=None, idempotency="O-9", headers=revoked),
        401,
        "revoked_api_key",
        before,
    )
    _refused(api, api.post(earn, purchase, key="events", idempotency="O-9"), 403, "forbidden", before)
    assert api.get(f"{SHOP}/customers/C1/balance", key="events").status_code == 403
    assert api.get(f"{SHOP}/customers/C1/balance", key=None).status_code == 401

    # the Idempotency-Key: missing, malformed, not the order of a purchase; reused for another request
    _refused(api, api.post(earn, {**purchase, "order": "O-9"}), 400, "missing_idempotency_key", before)
    _refused(
        api,
        api.post(earn, {**purchase, "order": "O-9"}, idempotency="a b"),
        400,
        "invalid_idempotency_key",
        before,
    )
    _refused(
        api,
        api.post(earn, {**purchase, "order": "O-9"}, idempotency="O-8"),
        400,
        "invalid_idempotency_key",
        before,
    )
    _refused(
        api,
        api.post(earn, {**purchase, "amount": "2100.00"}, idempotency="O-1"),
        409,
        "idempotency_conflict",
        before,
    )
    redeem = f"{SHOP}/redeem"
    _refused(
        api,
        api.post(redeem, {"customer": "C1", "points": 11}, idempotency="R-1"),
        409,
        "idempotency_conflict",
        before,
    )

    # bodies: too large (declared or chunked), malformed JSON, wrong types, naive times, unknown fields
    huge = b'{"customer": "' + b"x" * 70_000 + b'"}'
    _refused(api, api.post(earn, content=huge, idempotency="O-9"), 413, "body_too_large", before)
    chunked = httpx.post(
        api.base + earn,
        content=_chunks(70_000),
        headers={"Authorization": f"Bearer {api.keys['loyalty']}", "Idempotency-Key": "O-9"},
        timeout=30,
    )
    _refused(api, chunked, 413, "body_too_large", before)
    _refused(
        api, api.post(earn, content=b'{"customer": "C1", ', idempotency="O-9"), 422, "invalid_request", before
    )
    _refused(api, api.post(earn, content=b"\xff\xfe", idempotency="O-9"), 422, "invalid_request", before)
    for bad in (
        {**purchase, "order": "O-9", "amount": "lots"},
        {**purchase, "order": "O-9", "amount": "-5"},
        {**purchase, "order": "O-9", "amount": "NaN"},
        {**purchase, "order": "O-9", "amount": "1.005"},
        {**purchase, "order": "O-9", "amount": "1e400"},
        {**purchase, "order": "O-9", "occurred_at": "2027-03-01T12:00:00"},
        {**purchase, "order": "O-9", "occurred_at": "0001-01-01T00:00:00+01:00"},
        {**purchase, "order": "O-9", "customer": "C1\x00"},
        {**purchase, "order": "O-9", "discount": 5},
        {"customer": "C1", "event": "referral", "order": "O-9"},
        {"customer": "C1"},
        [1, 2, 3],
    ):
        _refused(api, api.post(earn, bad, idempotency="O-9"), 422, "invalid_request", before)
    for bad_redeem in (
        {"customer": "C1", "points": "ten"},
        {"customer": "C1", "points": 0},
        {"customer": "C1", "points": 2**40},
        {"customer": "C1", "points": 10, "reward": "coffee"},
        {"customer": "C1", "points": 10, "order_amount": "10.00"},
    ):
        _refused(api, api.post(redeem, bad_redeem, idempotency="R-9"), 422, "invalid_request", before)
    naive = api.get(f"{SHOP}/customers/C1/statement", params={"since": "2027-01-01T00:00:00"})
    _refused(api, naive, 422, "invalid_request", before)

    # the ledger refuses: not enough points, unknown names, a closed hold
    _refused(
        api,
        api.post(redeem, {"customer": "C1", "points": 191}, idempotency="R-9"),
        409,
        "insufficient_points",
        before,
    )
    _refused(
        api, api.post(redeem, {"customer": "C9", "points": 1}, idempotency="R-9"), 404, "not_found", before
    )
    _refused(
        api,
        api.post(redeem, {"customer": "C1", "reward": "yacht"}, idempotency="R-9"),
        404,
        "not_found",
        before,
    )
    _refused(
        api,
        api.post("/v1/loyalty/nope/redeem", {"customer": "C1", "points": 1}, idempotency="R-9"),
        404,
        "not_found",
        before,
    )
    _refused(api, api.post(f"{SHOP}/holds/H-9/capture", idempotency="C-9"), 404, "not_found", before)
    _refused(
        api, api.post(f"{SHOP}/refund", {"order": "O-404"}, idempotency="RET-9"), 404, "not_found", before
    )
    _refused(
        api,
        api.post(f"{SHOP}/refund", {"order": "O-1", "amount": "2500.00"}, idempotency="RET-9"),
        422,
        "refused",
        before,
    )
    _created(api.post(redeem, {"customer": "C1", "points": 50, "hold": True}, idempotency="H-1"))
    _created(api.post(f"{SHOP}/holds/H-1/void", idempotency="H-1-void"))
    before = api.counts()
    _refused(
        api, api.post(f"{SHOP}/holds/H-1/capture", idempotency="H-1-capture"), 409, "hold_closed", before
    )
    assert api.get(f"{SHOP}/customers/C2/balance").status_code == 404  # no account yet


SLOW = """
[loyalty.programmes.slow]
point_value = 0.5
pending_days = 14
earn = [{ name = "base", when = "true", points = "amount * 0.05" }]
"""


def test_the_balance_shows_points_that_matured_an_hour_ago(db, write_config, serve_app) -> None:  # type: ignore[no-untyped-def]
    api = start_api(db, write_config, serve_app, extra=SLOW)
    matured = utcnow() - dt.timedelta(days=14, hours=1)  # the return window ended an hour ago
    slow = api.config.programmes["slow"]
    earned = earn_purchase(api.db, slow, order="O-1", customer="C1", amount=Decimal(2000), now=matured)
    assert (earned.available, earned.pending) == (0, 100)  # pending then; no batch has run since
    shown = api.get("/v1/loyalty/slow/customers/C1/balance").json()
    assert (shown["available"], shown["pending"], shown["value"]) == (100, 0, "50.00")
