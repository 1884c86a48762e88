"""API routes: tracking links of sent emails (no API key: the links are signed).

* ``GET /t/o/{token}``: the open pixel, a 1x1 GIF that records the open;
* ``GET /t/c/{token}?u=<url>``: a click, recorded, then redirected to ``url``.

A token signs its outbox row (and a click's URL, see :mod:`engine.contact_policy.links`),
so a click only ever redirects to a URL the engine put into a sent message.
A forged or altered link gets a plain 404 that tells nothing, and nothing
is recorded.
"""

from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from engine.contact_policy import read_click, read_open
from engine.errors import NotFoundError
from engine.responses import record_click, record_open

router = APIRouter(tags=["tracking"])

#: a transparent 1x1 GIF
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_CACHE = {
    "Cache-Control": "no-store, no-cache, must-revalidate, max-age=0",
    "Pragma": "no-cache",
    "Expires": "0",
}
_GIF: dict[str, Any] = {"content": {"image/gif": {}}}


def _not_found() -> Response:
    return PlainTextResponse("This link is not valid.", status_code=404, headers=NO_CACHE)


@router.get(
    "/t/o/{token}",
    summary="Open pixel of a sent email",
    response_class=Response,
    responses={200: {"description": "a 1x1 GIF; the open is recorded", **_GIF}, 404: _GIF},
)
async def open_pixel(token: str, request: Request) -> Response:
    """Record the open of the email the token signs and answer a 1x1 GIF (404, the same GIF, when forged)."""
    outbox_id = read_open(token, request.app.state.config.settings.links.secret)
    status = 404
    if outbox_id is not None:
        try:
            await run_in_threadpool(record_open, request.app.state.engine, outbox_id)
            status = 200
        except NotFoundError:
            pass
    return Response(PIXEL, status_code=status, media_type="image/gif", headers=NO_CACHE)


@router.get(
    "/t/c/{token}",
    summary="Tracked link of a sent email",
    response_class=RedirectResponse,
    status_code=302,
    responses={
        302: {"description": "the click is recorded; redirect to u"},
        404: {"description": "forged, altered or no u: nothing recorded"},
    },
)
async def click(
    token: str,
    request: Request,
    u: str | None = Query(None, description="the URL the email linked to, as signed"),
) -> Response:
    """Record a click on ``u`` in the email the token signs and redirect there; 404 when forged or altered."""
    outbox_id = read_click(token, u or "", request.app.state.config.settings.links.secret)
    if outbox_id is None or u is None:
        return _not_found()
    try:
        await run_in_threadpool(record_click, request.app.state.engine, outbox_id, u)
    except NotFoundError:
        return _not_found()
    return RedirectResponse(u, status_code=302, headers=NO_CACHE)
