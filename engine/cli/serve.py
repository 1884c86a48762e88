"""``crm serve``: the HTTP API (tracking links, unsubscribe, loyalty, events) under uvicorn."""

from __future__ import annotations

import os

import typer
import uvicorn
from fastapi import FastAPI

from engine.api import create_app
from engine.cli.common import console, state
from engine.config import load_config
from engine.db import make_engine


def application() -> FastAPI:
    """The app a uvicorn worker serves: the config ``crm serve`` was given (``CRM_CONFIG``).

    Its connection pool keeps up to 20 connections (requests run in a pool of
    40 threads; the default 5 would close and reopen connections under load)
    and does not ping a connection before each use (a round trip per
    checkout): a connection lost when the database restarts fails one
    request with 503, and SQLAlchemy then replaces the whole pool.
    """
    config = load_config()
    engine = make_engine(config.database_url, pool_pre_ping=False, pool_size=20, max_overflow=20)
    return create_app(config, engine)


def serve(
    host: str | None = typer.Option(None, "--host", help="address to listen on (default: [api].host)"),
    port: int | None = typer.Option(None, "--port", min=1, max=65535, help="port (default: [api].port)"),
    workers: int = typer.Option(
        1, "--workers", min=1, max=256, help="worker processes (PostgreSQL: one per core)"
    ),
    access_log: bool = typer.Option(True, "--access-log/--no-access-log", help="log every request"),
) -> None:
    """Serve the HTTP API until stopped (Ctrl+C); the OpenAPI schema is at /openapi.json, docs at /docs.

    Example: crm serve
    Example: crm serve --host 0.0.0.0 --port 8080 --workers 2
    """
    config = state.config()
    state.engine(config).dispose()  # the database must be reachable and have its schema
    settings = config.settings.api
    os.environ["CRM_CONFIG"] = str(config.path.resolve())  # the workers read the same config
    host, port = host or settings.host, port or settings.port
    console.print(f"crm-engine API on http://{host}:{port} (OpenAPI: /openapi.json, docs: /docs)")
    uvicorn.run(
        "engine.cli.serve:application",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        log_level="info",
        timeout_worker_healthcheck=30,  # a worker importing the engine on a busy host is not hung
    )


def register(app: typer.Typer) -> None:
    """Add ``crm serve`` to ``app``."""
    app.command("serve")(serve)
