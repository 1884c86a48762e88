"""Schemathesis over the whole published OpenAPI schema of a live server: no request gets a 5xx.

The schema is read from the running server (``/openapi.json``); every
operation gets its schema's examples and a bounded number of generated
requests, valid and invalid, with a key of both scopes. Half the generated
requests name the programme ``shop`` and the member ``C1`` (who has points),
so they reach the ledger and the event table rather than stopping at 404.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from hypothesis.strategies import SearchStrategy
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from sqlalchemy import Engine

from engine.clock import utcnow
from engine.loyalty.ledger.audit import audit
from tests.api.api_setup import Api, start_api

EXAMPLES = 12  # generated requests per operation and phase: the run stays within seconds per database


@pytest.fixture
def fuzz_api(db: Engine, write_config: Callable[..., Path], serve_app: Callable[[FastAPI], str]) -> Api:
    """The live API; member C1 has 5,000 points, C-1001 (the schema's example) exists."""
    api = start_api(db, write_config, serve_app, customers=("C1", "C2", "C-1001"))
    seed = {
        "customer": "C1",
        "order": "SEED-1",
        "amount": "100000.00",
        "occurred_at": (utcnow() - dt.timedelta(hours=1)).isoformat(),
    }
    assert api.post("/v1/loyalty/shop/earn", seed, idempotency="SEED-1").status_code == 201
    return api


def _call(api: Api, case: schemathesis.Case) -> None:
    _steer(case)
    case.call_and_validate(
        base_url=api.base,
        headers={"Authorization": f"Bearer {api.keys['all']}"},
        checks=[not_a_server_error],
        timeout=30,
    )


def _steer(case: schemathesis.Case) -> None:
    """Half the cases: the real programme, member and order, affordable points, a purchase keyed by order."""
    if int(hashlib.sha256(repr(case.body).encode() + case.path.encode()).hexdigest(), 16) % 2:
        return
    if case.path_parameters and "programme" in case.path_parameters:
        case.path_parameters["programme"] = "shop"
    if case.path_parameters and "customer" in case.path_parameters:
        case.path_parameters["customer"] = "C1"
    if isinstance(case.body, dict):
        if isinstance(case.body.get("customer"), str):
            case.body["customer"] = "C1"
        if isinstance(case.body.get("points"), int):  # within what C1 has
            case.body["points"] = 1 + case.body["points"] % 100
        if case.path.endswith("/refund"):
            case.body.update(order="SEED-1", amount="10.00")
        order = case.body.get("order")
        if case.path.endswith("/earn") and isinstance(order, str) and order.isascii() and order.isprintable():
            case.headers = {**(case.headers or {}), "Idempotency-Key": order.replace(" ", "_")}
            case.body["order"] = order.replace(" ", "_")


def _each(
    strategy: SearchStrategy[schemathesis.Case], examples: int, test: Callable[[schemathesis.Case], None]
) -> None:
    @given(case=strategy)
    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
    )
    def run(case: schemathesis.Case) -> None:
        test(case)

    run()


def test_no_request_gets_a_server_error(fuzz_api: Api) -> None:
    schema = schemathesis.openapi.from_url(fuzz_api.base + "/openapi.json", timeout=10)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} >= {
        "POST /v1/loyalty/{programme}/redeem",
        "POST /v1/events",
        "GET /health",
    }
    for operation in operations:

        def test(case: schemathesis.Case) -> None:
            _call(fuzz_api, case)

        for example in schema.get_strategies_from_examples(operation):
            _each(example, 1, test)
        _each(operation.as_strategy(generation_mode=GenerationMode.POSITIVE), EXAMPLES, test)
        with contextlib.suppress(
            Unsatisfiable
        ):  # nothing in it can be invalid (GET /health, a free text path)
            _each(operation.as_strategy(generation_mode=GenerationMode.NEGATIVE), EXAMPLES, test)
    assert audit(fuzz_api.db).ok  # whatever got through left the ledger consistent
