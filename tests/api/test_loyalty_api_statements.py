"""A till's redemption over HTTP costs the ledger command's statements and one more (the key): no extra reads.

Counted on the engine the app serves from (both databases). Timings are the
load test's business (``bench/api_redeem.py``); counts are deterministic.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Engine, event

from tests.api.api_setup import start_api

KEY_CHECK = 1  # the API key, found by its prefix (last_used_at is written at most once a minute)
REDEEM = 7  # the ledger's bound (tests/loyalty/ledger/test_statement_counts.py)


def test_a_redemption_request_sends_the_ledger_statements_and_the_key_check(
    db: Engine, write_config: Callable[..., Path], serve_app: Callable[[FastAPI], str]
) -> None:
    api = start_api(db, write_config, serve_app)
    assert (
        api.post(
            "/v1/loyalty/shop/earn", {"customer": "C1", "order": "O1", "amount": "5000"}, idempotency="O1"
        ).status_code
        == 201
    )
    assert (
        api.post("/v1/loyalty/shop/redeem", {"customer": "C1", "points": 5}, idempotency="warm").status_code
        == 201
    )
    sent: list[str] = []

    def count(*args: Any) -> None:
        if args[2].split()[0].upper() not in ("BEGIN", "COMMIT", "ROLLBACK"):
            sent.append(args[2])

    event.listen(db, "before_cursor_execute", count)
    try:
        answer = api.post("/v1/loyalty/shop/redeem", {"customer": "C1", "points": 10}, idempotency="R1")
    finally:
        event.remove(db, "before_cursor_execute", count)
    assert answer.status_code == 201, answer.text
    assert answer.json()["available"] == 250 - 5 - 10
    assert len(sent) <= REDEEM + KEY_CHECK, sent
