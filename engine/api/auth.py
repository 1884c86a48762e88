"""The API key a request comes with: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.

``Depends(require_scope("loyalty"))`` on a route answers 401 when the key is
missing, unknown or revoked, and 403 when it lacks the scope; otherwise it
gives the route the :class:`~engine.api.keys.ApiKeyInfo` of the client system
(its name is the ``source`` of the events it records).
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from engine.api.keys import ApiKeyInfo, find_api_key
from engine.errors import ApiError

bearer = HTTPBearer(auto_error=False, description="the key from `crm api-keys create`")
header = APIKeyHeader(name="X-API-Key", auto_error=False, description="the same key, in its own header")
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="crm-engine"'}


def require_scope(scope: str) -> Callable[..., ApiKeyInfo]:
    """A dependency that lets through only requests with an active key having ``scope``."""

    def client(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Security(bearer),
        api_key: str | None = Security(header),
    ) -> ApiKeyInfo:
        presented = credentials.credentials if credentials is not None else api_key
        if not presented:
            raise ApiError(
                401,
                "missing_api_key",
                "an API key is needed: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                headers=_CHALLENGE,
            )
        found = find_api_key(request.app.state.engine, presented)
        if found is None:
            raise ApiError(401, "invalid_api_key", "this API key is not known", headers=_CHALLENGE)
        if not found.active:
            raise ApiError(401, "revoked_api_key", f"API key {found.name!r} was revoked", headers=_CHALLENGE)
        if scope not in found.scopes:
            raise ApiError(
                403,
                "forbidden",
                f"API key {found.name!r} has scopes {', '.join(found.scopes)}; this needs {scope!r}",
            )
        return found

    return client


__all__ = ["require_scope"]
