"""Signed links: unsubscribe and tracking URLs that cannot be forged or altered.

A link carries its payload and an HMAC-SHA256 of it under the engine's
secret (``[links].secret``), base64url without padding; the API checks the
signature before acting on it. Three kinds of payload:

* ``u.<customer>.<campaign>``: unsubscribe, ``/u/<payload>?s=<signature>``;
* ``o.<outbox_id>``: the open pixel of one sent email, ``/t/o/<outbox_id>.<signature>``;
* ``c.<outbox_id>.<url>``: a click on ``url`` in that email,
  ``/t/c/<outbox_id>.<signature>?u=<url>``. The signature covers the URL, so
  a click link only ever redirects to a URL the engine put into a message
  (no open redirect).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit

_TOKEN = re.compile(r"([1-9][0-9]{0,18})\.([A-Za-z0-9_-]{22})")
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")  # control characters, blanks and backslashes


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(payload: str, secret: str) -> str:
    """The signature of ``payload`` (22 characters: 128 bits of HMAC-SHA256)."""
    if not secret:
        raise ValueError("signing links needs a secret")
    return _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()[:16])


def verify(payload: str, signature: str, secret: str) -> bool:
    """True when ``signature`` is the signature of ``payload`` (constant-time; any text is safe)."""
    return hmac.compare_digest(sign(payload, secret).encode(), signature.encode("utf-8", "replace"))


# --- unsubscribe ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnsubscribeLink:
    """What a verified unsubscribe link names: one customer, one campaign."""

    customer_id: int
    campaign: str


def unsubscribe_payload(customer_id: int, campaign: str) -> str:
    """The signed payload of an unsubscribe link: ``u.<customer>.<campaign>``."""
    return f"u.{customer_id}.{campaign}"


def unsubscribe_url(base_url: str, customer_id: int, campaign: str, secret: str) -> str:
    """The one-click unsubscribe link (RFC 8058) of one customer for one campaign."""
    payload = unsubscribe_payload(customer_id, campaign)
    return f"{base_url.rstrip('/')}/u/{quote(payload, safe='')}?{urlencode({'s': sign(payload, secret)})}"


def read_unsubscribe(payload: str, signature: str, secret: str | None) -> UnsubscribeLink | None:
    """The customer and campaign of a signed unsubscribe payload; None when forged, altered or malformed."""
    if not secret or not verify(payload, signature, secret):
        return None
    kind, _, rest = payload.partition(".")
    customer, _, campaign = rest.partition(".")
    if kind != "u" or not customer.isascii() or not customer.isdigit() or not campaign:
        return None
    return UnsubscribeLink(int(customer), campaign)


# --- tracking ------------------------------------------------------------------------------------


def trackable(url: str) -> bool:
    """Whether ``url`` may become a click link: absolute http(s) with a host, no blanks or controls."""
    if _UNSAFE.search(url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def open_token(outbox_id: int, secret: str) -> str:
    """The token of the open pixel of outbox row ``outbox_id``: ``<id>.<signature of o.<id>>``."""
    return f"{outbox_id}.{sign(f'o.{outbox_id}', secret)}"


def click_token(outbox_id: int, url: str, secret: str) -> str:
    """The token of a click on ``url`` in outbox row ``outbox_id``: ``<id>.<signature of c.<id>.<url>>``."""
    return f"{outbox_id}.{sign(f'c.{outbox_id}.{url}', secret)}"


def open_url(base_url: str, outbox_id: int, secret: str) -> str:
    """The 1x1 open pixel of one sent email."""
    return f"{base_url.rstrip('/')}/t/o/{open_token(outbox_id, secret)}"


def click_url(base_url: str, outbox_id: int, url: str, secret: str) -> str:
    """The tracked form of ``url`` in one sent email (it must be :func:`trackable`)."""
    if not trackable(url):
        raise ValueError(f"{url!r} is not an absolute http(s) URL")
    query = urlencode({"u": url})
    return f"{base_url.rstrip('/')}/t/c/{click_token(outbox_id, url, secret)}?{query}"


def _outbox_of(token: str) -> tuple[int, str] | None:
    match = _TOKEN.fullmatch(token)
    return (int(match.group(1)), match.group(2)) if match else None


def read_open(token: str, secret: str | None) -> int | None:
    """The outbox id of a signed open token; None when forged, altered or malformed."""
    found = _outbox_of(token)
    if not secret or found is None:
        return None
    outbox_id, signature = found
    return outbox_id if verify(f"o.{outbox_id}", signature, secret) else None


def read_click(token: str, url: str, secret: str | None) -> int | None:
    """The outbox id of a signed click on ``url``; None when forged, altered, malformed or not http(s)."""
    found = _outbox_of(token)
    if not secret or found is None or not trackable(url):
        return None
    outbox_id, signature = found
    return outbox_id if verify(f"c.{outbox_id}.{url}", signature, secret) else None
