"""The FastAPI application: one router per area, the config and the database on ``app.state``."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import Engine

from engine.api import events, health, loyalty, tracking, unsubscribe
from engine.api.errors import install_error_handlers
from engine.api.limits import BodySizeLimit
from engine.config import Config
from engine.db import make_engine


def create_app(config: Config, engine: Engine | None = None) -> FastAPI:
    """The API over ``config``'s database (or ``engine``)."""
    app = FastAPI(
        title="crm-engine",
        version="1",
        description="Tracking links, unsubscribe, loyalty points for the shop's systems, custom events.",
    )
    app.state.config = config
    app.state.engine = engine if engine is not None else make_engine(config.database_url)
    for module in (health, tracking, unsubscribe, loyalty, events):
        app.include_router(module.router)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=config.settings.api.max_body_bytes)
    return app
