"""Hostile request bodies and queries on a live API: never a 5xx, and a refused request writes nothing.

The OpenAPI fuzz (tests/api/test_openapi_fuzz.py) generates what the schema
describes; this one aims at what broke before: numbers past every limit,
yes/no values for numbers, strings for numbers, dates in year 1 or 9999,
``?until=0``, NaN, deep nesting and bytes that are not JSON. Bodies mix the
real programme, member and order with hostile values in one to three fields.
A 4xx answers ``{"error", "detail"}`` and leaves ledger, purchases and events
as they were; whatever is accepted keeps the ledger's audit clean.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from hypothesis import event, given, note, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from engine.loyalty.ledger.audit import audit
from tests.api.api_setup import Api, start_api
from tests.fuzz.hostile import FUZZ, HOSTILE_NUMBERS, HOSTILE_STRINGS

PROGRAMME = "/v1/loyalty/shop"
ROUTES: dict[str, dict[str, Any]] = {
    f"{PROGRAMME}/earn": {
        "customer": "C1",
        "order": "O-1",
        "amount": "2400.00",
        "category": "cosmetics",
        "quantity": "1",
        "occurred_at": "2026-12-01T10:00:00+03:00",
    },
    f"{PROGRAMME}/redeem": {"customer": "C1", "points": 10, "order": "R-1", "order_amount": "1000.00"},
    f"{PROGRAMME}/refund": {"order": "SEED-1", "amount": "10.00"},
    "/v1/events": {"customer": "C1", "name": "cart_abandoned", "data": {"cart_value": "1990.00"}},
}
json_scalars = st.one_of(
    st.sampled_from(HOSTILE_STRINGS),
    st.sampled_from(HOSTILE_NUMBERS),
    st.sampled_from(
        [
            True,
            False,
            None,
            1e30,
            -1e30,
            1e-30,
            0.1,
            "1e30",
            "NaN",
            "-0.001",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59+14:00",
            "2026-13-01",
            "1970-01-01T00:00:00Z",
            "2199-12-31",
            2**70,
        ]
    ),
    st.text(max_size=12),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
)
_keys = itertools.count(1)


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    route = draw(st.sampled_from(sorted(ROUTES)))
    body = dict(ROUTES[route])
    for field in draw(st.lists(st.sampled_from([*body, "hold", "points", "reward", "extra"]), max_size=3)):
        if draw(st.integers(0, 5)) == 0:
            body.pop(field, None)
        else:
            body[field] = draw(json_values)
    return route, body


@pytest.fixture
def api(db: Engine, write_config: Callable[..., Path], serve_app: Callable[[FastAPI], str]) -> Api:
    """The live API; member C1 earned for SEED-1 (points to spend and an order to refund)."""
    api = start_api(db, write_config, serve_app)
    seed = {"customer": "C1", "order": "SEED-1", "amount": "100000.00", "occurred_at": "2026-11-01T10:00:00Z"}
    assert api.post(f"{PROGRAMME}/earn", seed, idempotency="SEED-1").status_code == 201
    return api


def _refused_cleanly(api: Api, response: Any, before: dict[str, int], what: str) -> None:
    assert response.status_code < 500, f"{what}\n{response.status_code} {response.text[:2000]}"
    if response.status_code >= 400:
        body = response.json()
        assert set(body) >= {"error", "detail"}, body
        assert api.counts() == before, f"{what} was refused ({response.status_code}) yet wrote"


@settings(FUZZ, max_examples=FUZZ.max_examples * 2)
@given(request=requests())
def test_hostile_bodies_are_answered_without_a_server_error(
    api: Api, request: tuple[str, dict[str, Any]]
) -> None:
    route, body = request
    text = json.dumps(body, ensure_ascii=False)
    note(f"POST {route} {text[:500]}")
    order = body.get("order") if route.endswith("/earn") else None
    key = (
        order
        if isinstance(order, str) and order.isascii() and order.isprintable() and order
        else f"K-{next(_keys)}"
    )
    before = api.counts()
    response = api.post(route, body, key="all", idempotency=key.replace(" ", "_") or "K")
    event(f"{route.rsplit('/', 1)[1]}: {response.status_code}")
    _refused_cleanly(api, response, before, f"POST {route} {text[:500]}")


@settings(FUZZ)
@given(
    route=st.sampled_from(sorted(ROUTES)),
    content=st.one_of(
        st.sampled_from(
            [
                b"",
                b"{",
                b"[]",
                b"null",
                b"1",
                b'"x"',
                b'{"amount": NaN}',
                b'{"points": Infinity}',
                b"\xef\xbb\xbf{}",
                b"\xff\xfe{\x00}\x00",
                b'{"a": ' * 500 + b"1" + b"}" * 500,
                b'{"customer": "C1", "customer": "C2"}',
                b'{"customer": "\\ud800"}',
            ]
        ),
        st.binary(max_size=40),
    ),
)
def test_bytes_that_are_not_a_json_object_get_422(api: Api, route: str, content: bytes) -> None:
    note(f"POST {route} {content[:200]!r}")
    before = api.counts()
    response = api.post(route, key="all", idempotency=f"B-{next(_keys)}", content=content)
    _refused_cleanly(api, response, before, f"POST {route} {content[:200]!r}")
    if not _json_object(content):
        assert response.status_code == 422, (response.status_code, response.text)


def _json_object(content: bytes) -> bool:
    try:
        return isinstance(json.loads(content), dict)
    except (ValueError, UnicodeDecodeError):
        return False


@settings(FUZZ)
@given(since=st.one_of(st.none(), json_scalars.map(str)), until=st.one_of(st.none(), json_scalars.map(str)))
def test_hostile_statement_periods_are_answered_without_a_server_error(
    api: Api, since: str | None, until: str | None
) -> None:
    params = {name: value for name, value in (("since", since), ("until", until)) if value is not None}
    note(f"statement {params}")
    response = api.get(f"{PROGRAMME}/customers/C1/statement", key="all", params=params)
    assert response.status_code in (200, 404, 422), (response.status_code, response.text[:1000])


def test_the_ledger_is_consistent_after_the_fuzz(api: Api) -> None:
    """The baseline: each route's plausible body is accepted as is, and the audit is clean."""
    for n, (route, body) in enumerate(sorted(ROUTES.items())):
        key = body["order"] if route.endswith("/earn") else f"OK-{n}"
        response = api.post(route, body, key="all", idempotency=key)
        assert response.status_code in (200, 201), (route, response.text)
    assert audit(api.db).ok
