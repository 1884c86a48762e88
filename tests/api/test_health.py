"""``GET /health`` says whether the database answers with the expected schema; ``crm serve`` serves."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

from engine.api.app import create_app
from engine.config.checked import load_config
from engine.db.engines import make_engine
from engine.db.schema import head_revision
from tests.cli.test_cli import CRM, ROOT


def test_health_is_200_with_the_schema_and_503_without(db, write_config, serve_app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = load_config(write_config())
    ok = httpx.get(serve_app(create_app(config, db)) + "/health", timeout=10)
    assert ok.status_code == 200, ok.text
    assert ok.json() == {
        "status": "ok",
        "database": "reachable",
        "schema_revision": head_revision(),
        "expected_revision": head_revision(),
    }

    empty = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    no_schema = httpx.get(serve_app(create_app(config, empty)) + "/health", timeout=10)
    assert no_schema.status_code == 503
    assert no_schema.json()["database"] == "reachable, no schema: run crm init"

    down = make_engine("postgresql://postgres@127.0.0.1:1/nothing", connect_args={"connect_timeout": 2})
    unreachable = httpx.get(serve_app(create_app(config, down)) + "/health", timeout=10)
    assert unreachable.status_code == 503
    assert unreachable.json()["database"].startswith("unreachable: ")
    empty.dispose()
    down.dispose()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_crm_serve_serves_the_api(sqlite_template: Path, tmp_path: Path) -> None:
    """Once, on SQLite: the command starts uvicorn on the app (the routes are tested on both databases)."""
    port = _free_port()
    database = tmp_path / "crm.db"
    shutil.copyfile(sqlite_template, database)
    config = tmp_path / "config.toml"
    config.write_text((ROOT / "config.toml").read_text(encoding="utf-8"), encoding="utf-8")
    env = {**os.environ, "CRM_CONFIG": str(config), "CRM_DATABASE_URL": f"sqlite:///{database}"}
    server = subprocess.Popen(
        [str(CRM), "serve", "--port", str(port), "--no-access-log"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.communicate()[0]
                assert time.monotonic() < deadline, "crm serve did not start"
                time.sleep(0.2)
        assert answer.status_code == 200 and answer.json()["status"] == "ok"
        schema = httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=5).json()
        assert "/v1/loyalty/{programme}/redeem" in schema["paths"] and "/v1/events" in schema["paths"]
    finally:
        server.send_signal(signal.SIGINT)
        output = server.communicate(timeout=30)[0]
    assert f"http://127.0.0.1:{port}" in output
