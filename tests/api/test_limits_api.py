"""The API held to the engine's limits: 422 with the error body, nothing recorded, for every malformed body.

Just inside and just outside the limits of amounts, quantities, points and
times; booleans are not numbers; query times are ISO 8601 text (``?until=0`` is
no time); malformed JSON of every kind answers the documented 422, never 400.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.api_setup import Api, start_api

SHOP = "/v1/loyalty/shop"


def _invalid(api: Api, answer: httpx.Response, before: dict[str, int], where: str = "") -> None:
    assert answer.status_code == 422, answer.text
    body: dict[str, Any] = answer.json()
    assert body["error"] == "invalid_request" and body["detail"], body
    assert isinstance(body["errors"], list) and body["errors"], body
    assert where in body["detail"], body
    assert api.counts() == before, "something was recorded"


def test_amounts_quantities_and_times_beyond_the_limits_are_422(db, write_config, serve_app) -> None:  # type: ignore[no-untyped-def]
    api = start_api(db, write_config, serve_app)
    before = api.counts()
    earn = f"{SHOP}/earn"
    purchase = {"customer": "C1", "order": "O-1"}
    for bad, where in (
        ({"amount": "1e30"}, "amount"),
        ({"amount": 1e30}, "amount"),
        ({"amount": "100000000.01"}, "amount"),
        ({"amount": "0.00"}, "amount"),
        ({"amount": True}, "amount"),
        ({"amount": "10.00", "quantity": "1000000.001"}, "quantity"),
        ({"amount": "10.00", "quantity": False}, "quantity"),
        ({"amount": "10.00", "occurred_at": 0}, "occurred_at"),
        ({"amount": "10.00", "occurred_at": "0"}, "occurred_at"),
        ({"amount": "10.00", "occurred_at": "1700000000"}, "occurred_at"),
        ({"amount": "10.00", "occurred_at": "1969-12-31T23:59:59+00:00"}, "occurred_at"),
        ({"amount": "10.00", "occurred_at": "2200-01-01T00:00:00+00:00"}, "occurred_at"),
        ({"amount": "10.00", "occurred_at": "9999-12-31T23:59:59+00:00"}, "occurred_at"),
    ):
        _invalid(api, api.post(earn, {**purchase, **bad}, idempotency="O-1"), before, where)

    at_limit = {**purchase, "amount": "100000000.00", "quantity": "1000000"}
    answer = api.post(earn, {**at_limit, "occurred_at": "2199-12-31T23:00:00-12:00"}, idempotency="O-1")
    assert answer.status_code == 201, answer.text
    assert answer.json()["points"] == 5_000_000  # amount * 0.05
    old = {"customer": "C1", "order": "O-2", "amount": "0.01", "occurred_at": "1970-01-01T00:00:00+00:00"}
    assert api.post(earn, old, idempotency="O-2").status_code == 201


def test_points_are_json_integers_within_the_limits_and_booleans_are_no_numbers(
    db, write_config, serve_app
) -> None:  # type: ignore[no-untyped-def]
    api = start_api(db, write_config, serve_app)
    big = {"customer": "C1", "order": "O-1", "amount": "100000000.00"}
    assert api.post(f"{SHOP}/earn", big, idempotency="O-1").status_code == 201
    assert api.post(f"{SHOP}/earn", {**big, "order": "O-2"}, idempotency="O-2").status_code == 201
    before = api.counts()
    redeem = f"{SHOP}/redeem"
    for bad in (
        {"customer": "C1", "points": True},
        {"customer": "C1", "points": False},
        {"customer": "C1", "points": "10"},
        {"customer": "C1", "points": 10.0},
        {"customer": "C1", "points": 10_000_001},
        {"customer": "C1", "points": 2**63},
        {"customer": "C1", "points": 10, "hold": "true"},
        {"customer": "C1", "points": 10, "hold": 1},
        {"customer": "C1", "points": 10, "order": "O-1", "order_amount": "1e30"},
    ):
        _invalid(api, api.post(redeem, bad, idempotency="R-1"), before)
    spent = api.post(redeem, {"customer": "C1", "points": 10_000_000}, idempotency="R-1")
    assert spent.status_code == 201, spent.text
    assert spent.json()["available"] == 0


def test_query_times_are_iso_8601_instants_within_the_limits(db, write_config, serve_app) -> None:  # type: ignore[no-untyped-def]
    api = start_api(db, write_config, serve_app)
    before = api.counts()
    statement = f"{SHOP}/customers/C1/statement"
    for name in ("until", "since"):
        for bad in (
            "0",
            "1700000000",
            "1.5e9",
            "2027-01-01",
            "2027-01-01T00:00:00",
            "0001-01-01T00:00:00+05:00",
            "9999-12-31T23:59:59+00:00",
            "1969-12-31T23:59:59+00:00",
        ):
            _invalid(api, api.get(statement, params={name: bad}), before, name)
    within = {"since": "1970-01-01T00:00:00+00:00", "until": "2199-12-31T23:59:59+00:00"}
    answer = api.get(statement, params=within)
    assert answer.status_code == 404, answer.text  # C1 has no account yet: past the checks of the times
    assert answer.json()["error"] == "not_found"


def test_malformed_json_of_every_kind_is_422_never_400(db, write_config, serve_app) -> None:  # type: ignore[no-untyped-def]
    api = start_api(db, write_config, serve_app)
    before = api.counts()
    bodies = (
        b'{"customer": "C1", ',  # cut short
        b'{"customer": "C1"} trailing',
        b"{'customer': 'C1'}",  # single quotes
        b'{"customer": "\xff\xfe"}',  # bytes that are no UTF-8
        b"\xff\xfe",
        b"\x00",
        b"[" * 5_000 + b"]" * 5_000,  # deeper than the parser goes
        b'{"customer": "C1", "points": NaN}',
        b'{"customer": "C1", "points": Infinity}',
        b'{"customer": "C1", "points": 1e400}',
        b"null",
        b"true",
        b'"C1"',
        b"",
    )
    for key in ("loyalty", None):
        for body in bodies:
            answer = api.post(f"{SHOP}/redeem", content=body, idempotency="R-1", key=key)
            if key is None and answer.status_code == 401:
                continue  # a well-formed body reaches the key check first
            _invalid(api, answer, before)
    events = api.post(
        "/v1/events",
        content=b'{"customer": "C1", "name": "x", "data": {"a": "\xc3"}}',
        key="events",
        idempotency="E-1",
    )
    _invalid(api, events, before)
