"""Signed links: unsubscribe and tracking URLs that cannot be forged or altered.

A link carries its payload (``u.<customer>.<campaign>``) and an HMAC-SHA256
of it under the engine's secret, base64url without padding; the API checks
the signature before acting on it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote, urlencode


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(payload: str, secret: str) -> str:
    """The signature of ``payload`` (22 characters: 128 bits of HMAC-SHA256)."""
    if not secret:
        raise ValueError("signing links needs a secret")
    return _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()[:16])


def verify(payload: str, signature: str, secret: str) -> bool:
    """True when ``signature`` is the signature of ``payload`` (constant-time)."""
    return hmac.compare_digest(sign(payload, secret), signature)


def unsubscribe_url(base_url: str, customer_id: int, campaign: str, secret: str) -> str:
    """The one-click unsubscribe link (RFC 8058) of one customer for one campaign."""
    payload = f"u.{customer_id}.{campaign}"
    return f"{base_url.rstrip('/')}/u/{quote(payload, safe='')}?{urlencode({'s': sign(payload, secret)})}"
