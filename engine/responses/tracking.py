"""Tracking a sent email: its links become signed click links, and an open pixel is added.

:func:`track_email` rewrites a rendered email's HTML for one outbox row:

* every ``href`` of an ``<a>`` or ``<area>`` that is an absolute http(s) URL
  becomes ``<base_url>/t/c/<outbox_id>.<signature>?u=<url>`` (see
  :mod:`engine.contact_policy.links`), which records the click and redirects to the URL;
* links into the engine itself (the unsubscribe link ``/u/...``, tracking
  links) and anything else (``mailto:``, ``tel:``, anchors, relative URLs)
  stay as they are;
* a 1x1 pixel ``<base_url>/t/o/<outbox_id>.<signature>`` goes just before
  ``</body>`` (at the end when there is none), recording the open.

The text part of the email keeps the plain URLs. :func:`record_open` and
:func:`record_click` record what the links report as responses of the
outbox row (source ``tracking``): the first open (key ``open:<outbox_id>``)
and the first click on each URL (key ``click:<outbox_id>:<sha256(url)[:16]>``);
a click implies the email was opened.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html as html_text
import re
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, select

from engine.clock import utcnow
from engine.contact_policy import click_url, open_url, trackable
from engine.db import write_transaction
from engine.errors import NotFoundError
from engine.models import CLICK, OPEN, OUTBOX, RUN
from engine.responses.recording import NewResponse, record_response

SOURCE = "tracking"

_LINK_TAG = re.compile(r"""<(?:a|area)(\s(?:[^>"']|"[^"]*"|'[^']*')*)>""", re.IGNORECASE)
_ATTRIBUTE = re.compile(r"""([^\s"'>/=]+)(?:(\s*=\s*)("[^"]*"|'[^']*'|[^\s"'=<>`]+))?""")
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


def _engine_link(url: str, base_url: str) -> bool:
    base = base_url.rstrip("/")
    return url.startswith((f"{base}/u/", f"{base}/t/"))


def track_email(html: str, outbox_id: int, *, base_url: str, secret: str, keep: Collection[str] = ()) -> str:
    """``html`` with its http(s) links as signed click links of ``outbox_id`` and an open pixel.

    URLs in ``keep`` and links into the engine (``base_url``'s ``/u/`` and
    ``/t/``) are left as they are.
    """

    def rewrite_attributes(attributes: str) -> str:
        def rewrite(match: re.Match[str]) -> str:
            name, equals, quoted = match.group(1), match.group(2), match.group(3)
            if name.lower() != "href" or quoted is None:
                return match.group(0)
            raw = quoted[1:-1] if quoted[0] in "\"'" else quoted
            url = html_text.unescape(raw).strip()
            if url in keep or _engine_link(url, base_url) or not trackable(url):
                return match.group(0)
            tracked = click_url(base_url, outbox_id, url, secret)
            return f'{name}{equals}"{html_text.escape(tracked, quote=True)}"'

        return _ATTRIBUTE.sub(rewrite, attributes)

    def rewrite_tag(match: re.Match[str]) -> str:
        start, end = match.span(1)
        whole = match.group(0)
        offset = match.start()
        return whole[: start - offset] + rewrite_attributes(match.group(1)) + whole[end - offset :]

    tracked_html = _LINK_TAG.sub(rewrite_tag, html)
    pixel = (
        f'<img src="{html_text.escape(open_url(base_url, outbox_id, secret), quote=True)}" width="1" '
        'height="1" alt="" style="display:block;width:1px;height:1px;border:0">'
    )
    ends = list(_BODY_END.finditer(tracked_html))
    if not ends:
        return tracked_html + pixel
    at = ends[-1].start()
    return tracked_html[:at] + pixel + tracked_html[at:]


# --- recording what the links report ---------------------------------------------------------------


@dataclass(frozen=True)
class TrackedContact:
    """The outbox row a tracking link belongs to: who got it, from which campaign, on which channel."""

    outbox_id: int
    customer_id: int
    campaign: str
    channel: str


def open_key(outbox_id: int) -> str:
    """The key of the (first) open of an outbox row."""
    return f"open:{outbox_id}"


def click_key(outbox_id: int, url: str) -> str:
    """The key of the (first) click on ``url`` in an outbox row."""
    return f"click:{outbox_id}:{hashlib.sha256(url.encode()).hexdigest()[:16]}"


def _contact(connection: Connection, outbox_id: int) -> TrackedContact:
    row = connection.execute(
        select(OUTBOX.c.id, OUTBOX.c.customer_id, OUTBOX.c.channel, RUN.c.campaign)
        .join(RUN, RUN.c.id == OUTBOX.c.run_id)
        .where(OUTBOX.c.id == outbox_id)
    ).first()
    if row is None:
        raise NotFoundError("outbox row", str(outbox_id))
    return TrackedContact(row.id, row.customer_id, row.campaign, row.channel)


def _response(
    contact: TrackedContact, kind: str, key: str, now: dt.datetime, detail: str | None = None
) -> NewResponse:
    return NewResponse(
        customer_id=contact.customer_id,
        kind=kind,
        occurred_at=now,
        outbox_id=contact.outbox_id,
        source=SOURCE,
        key=key,
        campaign=contact.campaign,
        channel=contact.channel,
        detail=detail,
    )


def record_open(engine: Engine, outbox_id: int, *, now: dt.datetime | None = None) -> bool:
    """Record the open of outbox row ``outbox_id``; False when it was recorded before.

    Raises :class:`NotFoundError` when there is no such row.
    """
    now = now or utcnow()
    with write_transaction(engine) as connection:
        contact = _contact(connection, outbox_id)
        return record_response(connection, _response(contact, OPEN, open_key(outbox_id), now))


def record_click(engine: Engine, outbox_id: int, url: str, *, now: dt.datetime | None = None) -> bool:
    """Record a click on ``url`` in outbox row ``outbox_id`` (and its open if none); False if seen before.

    Raises :class:`NotFoundError` when there is no such row.
    """
    now = now or utcnow()
    with write_transaction(engine) as connection:
        contact = _contact(connection, outbox_id)
        record_response(connection, _response(contact, OPEN, open_key(outbox_id), now))
        return record_response(
            connection, _response(contact, CLICK, click_key(outbox_id, url), now, detail=url[:2000])
        )
