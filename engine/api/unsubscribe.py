"""API routes: unsubscribe links (no API key: the links are signed).

* ``GET /u/{payload}?s=<signature>``: a small page saying who (the masked
  email) unsubscribes from what (the campaign's emails, by its public name), with the choice
  of emails only or all marketing; it changes nothing (mail scanners follow
  links), its form posts to the same URL;
* ``POST /u/{payload}?s=<signature>``: the page's form (``scope=email|all``)
  or RFC 8058 one-click (``List-Unsubscribe=One-Click``, urlencoded or
  multipart): unsubscribes at once (:func:`engine.responses.unsubscribe.unsubscribe`)
  and answers 200 with the confirmation, also when done before.

A forged or altered link gets a 403 page and changes nothing; an unknown
customer a 404 page.
"""

from __future__ import annotations

import email.parser
import email.policy
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from engine.campaigns import load_campaigns
from engine.config import Config
from engine.contact_policy import Contacts, UnsubscribeLink, contacts, read_unsubscribe
from engine.db import write_transaction
from engine.errors import BodyTooLargeError, ConfigError, NotFoundError
from engine.responses import EMAIL_ONLY, SCOPES, mask_email, unsubscribe

router = APIRouter(tags=["unsubscribe"])

_PAGES = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True)
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    ),
}
_HTML: dict[str, Any] = {"content": {"text/html": {}}}
_PAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "no choice in the form", **_HTML},
    403: {"description": "forged or altered link: nothing changed", **_HTML},
    404: {"description": "unknown customer", **_HTML},
    413: {"description": "body too large", **_HTML},
}


def _page(status: int, title: str, **values: Any) -> HTMLResponse:
    html = _PAGES.get_template("unsubscribe.html.j2").render(title=title, **values)
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def _message(status: int, title: str, message: str) -> HTMLResponse:
    return _page(status, title, page="message", message=message)


def _forged() -> HTMLResponse:
    return _message(
        403,
        "Link not valid",
        "This unsubscribe link is not valid. Please use the link from the email as it is.",
    )


def _unknown() -> HTMLResponse:
    return _message(404, "Unknown address", "We have no record of this address.")


def _campaign_name(config: Config, key: str) -> str:
    """The name the customer knows the campaign by: its ``public_name`` (else its name).

    The key and internal names are never shown: a campaign that is gone (or
    files that do not load) is named as its sender is, ``Shop`` of ``Shop <news@...>``.
    """
    try:
        found = load_campaigns(config).get(key)
    except ConfigError:
        found = None
    if found is not None:
        return found.campaign.shown_name
    sender = config.settings.channels.email.sender
    display = sender.rsplit("<", 1)[0].strip().strip('"') if "<" in sender else ""
    return display or "our mailings"


def _who(found: Contacts) -> str:
    return mask_email(found.email) if found.email else "your address"


def _link(request: Request, payload: str, signature: str | None) -> UnsubscribeLink | None:
    return read_unsubscribe(payload, signature or "", request.app.state.config.settings.links.secret)


def _describe(engine: Engine, config: Config, link: UnsubscribeLink) -> tuple[Contacts, str]:
    with engine.connect() as connection:
        found = contacts(connection, link.customer_id)
    return found, _campaign_name(config, link.campaign)


def _apply(engine: Engine, config: Config, link: UnsubscribeLink, scope: str) -> tuple[Contacts, str]:
    with write_transaction(engine) as connection:
        unsubscribe(
            connection,
            link.customer_id,
            link.campaign,
            scope,
            region=config.settings.engine.default_region,
        )
        found = contacts(connection, link.customer_id)
    return found, _campaign_name(config, link.campaign)


async def _form(request: Request, limit: int) -> dict[str, str]:
    """The fields of a small urlencoded or multipart body (no python-multipart needed)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLargeError(limit)
    content_type = request.headers.get("content-type", "")
    if content_type.lower().startswith("multipart/form-data"):
        return _multipart(bytes(body), content_type)
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def _multipart(body: bytes, content_type: str) -> dict[str, str]:
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
    try:
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        fields: dict[str, str] = {}
        for part in message.iter_parts() if message.is_multipart() else ():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                fields[name] = payload.decode("utf-8", "replace").strip()
        return fields
    except Exception:  # a malformed body is no choice at all
        return {}


@router.get(
    "/u/{payload}",
    summary="Unsubscribe page",
    response_class=HTMLResponse,
    responses=_PAGE_RESPONSES,
)
def unsubscribe_page(payload: str, request: Request, s: str | None = None) -> HTMLResponse:
    """What the link unsubscribes from, and the choice of emails only or all marketing; changes nothing."""
    link = _link(request, payload, s)
    if link is None:
        return _forged()
    try:
        found, campaign = _describe(request.app.state.engine, request.app.state.config, link)
    except NotFoundError:
        return _unknown()
    return _page(
        200,
        "Unsubscribe",
        page="choose",
        email=_who(found),
        campaign=campaign,
        action="?" + urlencode({"s": s}),
    )


@router.post(
    "/u/{payload}",
    summary="Unsubscribe (the page's form or RFC 8058 one-click)",
    response_class=HTMLResponse,
    responses=_PAGE_RESPONSES,
)
async def unsubscribe_now(payload: str, request: Request, s: str | None = None) -> HTMLResponse:
    """Unsubscribe from emails (one-click, or ``scope=email``) or all marketing (``scope=all``)."""
    link = _link(request, payload, s)
    if link is None:
        return _forged()
    config: Config = request.app.state.config
    try:
        form = await _form(request, config.settings.api.max_body_bytes)
    except BodyTooLargeError:
        return _message(413, "Too large", "The request is too large.")
    one_click = form.get("List-Unsubscribe", "").strip() == "One-Click"
    scope = form.get("scope") or (EMAIL_ONLY if one_click else "")
    if scope not in SCOPES:
        return _message(400, "Unsubscribe", "Please choose what to unsubscribe from.")
    try:
        found, campaign = await run_in_threadpool(_apply, request.app.state.engine, config, link, scope)
    except NotFoundError:
        return _unknown()
    return _page(200, "Unsubscribed", page="done", email=_who(found), campaign=campaign, scope=scope)
