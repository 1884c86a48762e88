"""A real uvicorn server on loopback for API tests: ``serve_app(app)`` returns its base URL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
from fastapi import FastAPI

from engine.api.local_server import serving


@pytest.fixture
def serve_app() -> Iterator[Callable[[FastAPI], str]]:
    """Start ``app`` under uvicorn in a thread on a free loopback port; stopped at teardown."""
    with ExitStack() as servers:

        def serve(app: FastAPI) -> str:
            return servers.enter_context(serving(app))

        yield serve
