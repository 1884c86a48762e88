"""The HTTP API (FastAPI): tracking links, unsubscribe, loyalty for the shop's systems, events.

:func:`engine.api.app.create_app` builds the application; ``crm serve`` runs it under uvicorn.
"""

from __future__ import annotations

from engine.api.app import create_app
from engine.api.keys import create_api_key, list_api_keys, revoke_api_key
from engine.api.local_server import serving

__all__ = [
    "create_api_key",
    "create_app",
    "list_api_keys",
    "revoke_api_key",
    "serving",
]
