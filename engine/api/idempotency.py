"""The ``Idempotency-Key`` header of every request that changes something, and how a replay is answered.

The key is required (400 when missing or malformed) and is the engine's own
idempotency key: the ledger operation's key for loyalty commands (for a
purchase it must be the order id: the ledger keys a purchase by its order, so
it earns once whether it comes from the till or from ``crm import purchases``),
the event's key for events. The first request answers 201; a retry with the
same key and the same body answers 200 with the stored result and the header
``Idempotent-Replayed: true`` and changes nothing; the same key with another
body answers 409 and changes nothing.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request, Response

from engine.api.errors import documented
from engine.errors import ApiError

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")

#: ``openapi_extra`` of a route that takes the key: the header is documented as required
OPENAPI: dict[str, Any] = {
    "parameters": [
        {
            "name": HEADER,
            "in": "header",
            "required": True,
            "description": "your id of this request (a retry sends the same); for a purchase, the order id",
            "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[!-~]+$"},
            "example": "POS-2027-000123",
        }
    ]
}

#: the answers a route with the key documents beside its 201
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": f"a replay: the stored result, header `{REPLAYED}: true`, nothing changed",
        "headers": {REPLAYED: {"schema": {"type": "string", "enum": ["true"]}}},
    },
    **documented(400, 401, 403, 404, 409, 413, 422, 503),
}


async def idempotency_key(request: Request) -> str:
    """The request's ``Idempotency-Key`` (1 to 200 visible ASCII characters), or 400."""
    key = request.headers.get(HEADER)
    if key is None:
        raise ApiError(400, "missing_idempotency_key", f"this request needs an {HEADER} header")
    if not _KEY.match(key):
        raise ApiError(400, "invalid_idempotency_key", f"{HEADER} must be 1 to 200 visible ASCII characters")
    return key


def mark_replay(response: Response, replayed: bool) -> None:
    """Answer 200 with ``Idempotent-Replayed: true`` for a replay (the route's default is 201)."""
    if replayed:
        response.status_code = 200
        response.headers[REPLAYED] = "true"


__all__ = ["HEADER", "OPENAPI", "REPLAYED", "RESPONSES", "idempotency_key", "mark_replay"]
