"""A live API over a test database: a ``shop`` programme, a key per scope, counts of what it wrote."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import Engine, func, select

from engine.api.app import create_app
from engine.api.keys import create_api_key
from engine.config.checked import Config, load_config
from engine.models import CustomerEvent, Purchase
from engine.models.tables import ENTRY, OPERATION
from tests.factories import add_customer

EVENT = CustomerEvent.__table__  # type: ignore[attr-defined]
PURCHASE = Purchase.__table__  # type: ignore[attr-defined]

SHOP = """
[loyalty.programmes.shop]
point_value = 0.5
pending_days = 0
expiry = "365d"
hold_timeout = "15m"
rewards = { coffee = 150 }
earn = [
  { name = "base", when = "true", points = "amount * 0.05" },
  { name = "cosmetics x2", when = "category == 'cosmetics'", multiplier = 2 },
  { name = "referral", on = "referral", points = 300 },
]
"""


@dataclass
class Api:
    """A running server: its URL, database, config and one key per scope (``all`` has both)."""

    base: str
    db: Engine
    config: Config
    keys: dict[str, str]

    def post(
        self,
        path: str,
        body: Any = None,
        *,
        key: str | None = "loyalty",
        idempotency: str | None = None,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        """POST ``body`` as JSON (or raw ``content``) with the key of scope ``key`` and an Idempotency-Key."""
        sent = dict(headers or {})
        if key is not None:
            sent["Authorization"] = f"Bearer {self.keys[key]}"
        if idempotency is not None:
            sent["Idempotency-Key"] = idempotency
        if content is not None:
            sent.setdefault("Content-Type", "application/json")
            return httpx.post(self.base + path, content=content, headers=sent, timeout=30)
        return httpx.post(self.base + path, json=body, headers=sent, timeout=30)

    def get(
        self, path: str, *, key: str | None = "loyalty", params: dict[str, str] | None = None
    ) -> httpx.Response:
        """GET with the key of scope ``key``."""
        sent = {"Authorization": f"Bearer {self.keys[key]}"} if key is not None else {}
        return httpx.get(self.base + path, headers=sent, params=params, timeout=30)

    def counts(self) -> dict[str, int]:
        """Rows of what the API may write: ledger operations and entries, purchases, events."""
        with self.db.connect() as connection:
            return {
                name: int(connection.execute(select(func.count()).select_from(table)).scalar_one())
                for name, table in (
                    ("operations", OPERATION),
                    ("entries", ENTRY),
                    ("purchases", PURCHASE),
                    ("events", EVENT),
                )
            }


def start_api(
    db: Engine,
    write_config: Callable[..., Path],
    serve_app: Callable[[FastAPI], str],
    extra: str = "",
    customers: tuple[str, ...] = ("C1", "C2"),
) -> Api:
    """Customers ``customers`` (external ids; C1 has email c1@example.com), keys, and a live server."""
    config = load_config(write_config(SHOP + extra))
    with db.begin() as connection:
        for name in customers:
            add_customer(connection, external_id=name, email=f"{name.lower()}@example.com")
    keys = {
        "loyalty": create_api_key(db, "pos", ["loyalty"]).key,
        "events": create_api_key(db, "web-shop", ["events"]).key,
        "all": create_api_key(db, "back-office", ["loyalty", "events"]).key,
    }
    return Api(serve_app(create_app(config, db)), db, config, keys)
