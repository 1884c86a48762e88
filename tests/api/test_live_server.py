"""The live server fixture serves the real application over loopback."""

from __future__ import annotations

import httpx

from engine.api.app import create_app
from engine.config.checked import load_config


def test_openapi_is_published(db, write_config, serve_app) -> None:  # type: ignore[no-untyped-def]
    app = create_app(load_config(write_config()), db)
    base = serve_app(app)
    answer = httpx.get(f"{base}/openapi.json", timeout=10)
    assert answer.status_code == 200
    assert answer.json()["info"]["title"] == "crm-engine"
