"""Tracking links of sent emails against a live server: opens and clicks recorded, forgeries refused."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from engine.api.app import create_app
from engine.contact_policy.links import click_token, open_token, read_click, read_open, sign
from tests.api.mailings import (
    AUTUMN,
    BASE_URL,
    NEW,
    counts,
    links_of,
    live,
    responses,
    send_mailing,
)
from tests.outbox.factories import SECRET


def _click_target(href: str) -> tuple[str, str]:
    """The token and the ``u`` of a click link."""
    parts = urlsplit(href)
    assert parts.path.startswith("/t/c/"), href
    return parts.path.removeprefix("/t/c/"), parse_qs(parts.query)["u"][0]


def test_sent_emails_carry_signed_click_links_of_their_row_and_an_open_pixel(  # type: ignore[no-untyped-def]
    db, write_config, tmp_path: Path
) -> None:
    mailing = send_mailing(db, write_config, tmp_path)
    first, second = mailing.customers
    hrefs, images = links_of(mailing.html(first))

    tracked = [href for href in hrefs if href.startswith(f"{BASE_URL}/t/c/")]
    assert [_click_target(href)[1] for href in tracked] == [AUTUMN, NEW]
    for href in tracked:
        token, url = _click_target(href)
        assert read_click(token, url, SECRET) == mailing.outbox[first]
        assert read_click(token, url, SECRET + "x") is None
    unsubscribe = mailing.unsubscribe_header_url(first)
    assert unsubscribe in hrefs  # the unsubscribe link untouched, the same as the header's
    assert "mailto:help@shop.example" in hrefs and "#top" in hrefs
    assert len(hrefs) == 5  # nothing else appeared or vanished
    [pixel] = [src for src in images if "/t/o/" in src]
    assert pixel == f"{BASE_URL}/t/o/{open_token(mailing.outbox[first], SECRET)}"
    assert read_open(pixel.rsplit("/", 1)[1], SECRET) == mailing.outbox[first]
    assert mailing.html(first).index("/t/o/") > mailing.html(first).index("Unsubscribe</a>")
    assert "/t/c/" not in mailing.text(first) and "/t/o/" not in mailing.text(first)

    other = [_click_target(h)[0] for h in links_of(mailing.html(second))[0] if "/t/c/" in h]
    assert all(read_click(token, AUTUMN, SECRET) != mailing.outbox[first] for token in other)
    assert read_click(other[0], AUTUMN, SECRET) == mailing.outbox[second]


def test_the_open_pixel_records_the_first_open_of_its_row(  # type: ignore[no-untyped-def]
    db, write_config, tmp_path: Path, serve_app
) -> None:
    mailing = send_mailing(db, write_config, tmp_path)
    first = mailing.customers[0]
    server = serve_app(create_app(mailing.config, db))
    pixel = live(next(src for src in links_of(mailing.html(first))[1] if "/t/o/" in src), server)

    answers = [httpx.get(pixel, timeout=10) for _ in range(2)]

    for answer in answers:
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "image/gif" and answer.content.startswith(b"GIF89a")
        assert "no-store" in answer.headers["cache-control"] and answer.headers["pragma"] == "no-cache"
    [opened] = responses(db)
    assert (opened.kind, opened.source, opened.key) == ("open", "tracking", f"open:{mailing.outbox[first]}")
    assert (opened.outbox_id, opened.customer_id, opened.campaign, opened.channel) == (
        mailing.outbox[first],
        first,
        "note",
        "email",
    )
    assert opened.occurred_at.tzinfo is not None


def test_a_click_redirects_to_its_link_and_records_the_click_and_the_open(  # type: ignore[no-untyped-def]
    db, write_config, tmp_path: Path, serve_app
) -> None:
    mailing = send_mailing(db, write_config, tmp_path)
    first = mailing.customers[0]
    outbox = mailing.outbox[first]
    server = serve_app(create_app(mailing.config, db))
    autumn, new = (live(h, server) for h in links_of(mailing.html(first))[0] if "/t/c/" in h)

    with httpx.Client(follow_redirects=False, timeout=10) as client:
        clicks = [client.get(autumn), client.get(autumn), client.get(new)]
        pixel = client.get(f"{server}/t/o/{open_token(outbox, SECRET)}")

    assert [c.status_code for c in clicks] == [302, 302, 302]
    assert [c.headers["location"] for c in clicks] == [AUTUMN, AUTUMN, NEW]
    assert pixel.status_code == 200
    recorded = responses(db)
    assert (
        [(r.kind, r.key) for r in recorded]
        == [
            ("open", f"open:{outbox}"),  # a click implies the email was opened: once, however often
            ("click", f"click:{outbox}:{hashlib.sha256(AUTUMN.encode()).hexdigest()[:16]}"),
            ("click", f"click:{outbox}:{hashlib.sha256(NEW.encode()).hexdigest()[:16]}"),
        ]
    )
    assert {(r.outbox_id, r.customer_id, r.campaign, r.channel, r.source) for r in recorded} == {
        (outbox, first, "note", "email", "tracking")
    }
    assert [r.detail for r in recorded[1:]] == [AUTUMN, NEW]


def _attempts(server: str, outbox: int, other: int) -> list[str]:
    """Forged, tampered and open-redirect links for the row ``outbox`` (``other``: another row)."""
    good = click_token(outbox, AUTUMN, SECRET)
    signature = good.split(".", 1)[1]
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    evil = "https://evil.example/phish"
    return [
        # the open pixel
        f"{server}/t/o/garbage",
        f"{server}/t/o/{outbox}.{flipped}",
        f"{server}/t/o/{other}.{open_token(outbox, SECRET).split('.', 1)[1]}",  # another row's signature
        f"{server}/t/o/{good}",  # a click token is no open token
        f"{server}/t/o/{open_token(outbox, 'another-secret')}",
        f"{server}/t/o/{open_token(999_999, SECRET)}",  # signed, but no such row
        f"{server}/t/o/{open_token(outbox, SECRET)}x",
        # clicks
        f"{server}/t/c/{good}",  # no u
        f"{server}/t/c/{good}?u={quote(evil, safe='')}",  # the URL altered
        f"{server}/t/c/{good}?u={quote(AUTUMN + '&next=' + evil, safe='')}",  # extended
        f"{server}/t/c/{good}?u={quote('//evil.example', safe='')}",
        f"{server}/t/c/{good}?u={quote('javascript:alert(1)', safe='')}",
        f"{server}/t/c/{good}?u={quote('data:text/html,<script>alert(1)</script>', safe='')}",
        f"{server}/t/c/{other}.{signature}?u={quote(AUTUMN, safe='')}",  # the signature of another row
        f"{server}/t/c/{click_token(other, AUTUMN, SECRET)}?u={quote(NEW, safe='')}",
        f"{server}/t/c/{outbox}.{flipped}?u={quote(AUTUMN, safe='')}",
        f"{server}/t/c/{open_token(outbox, SECRET)}?u={quote(AUTUMN, safe='')}",  # an open token
        f"{server}/t/c/{click_token(outbox, AUTUMN, 'another-secret')}?u={quote(AUTUMN, safe='')}",
        f"{server}/t/c/{click_token(999_999, AUTUMN, SECRET)}?u={quote(AUTUMN, safe='')}",  # no such row
        # signed with the real secret, but not http(s): the engine never makes these, the API refuses them
        f"{server}/t/c/{outbox}.{sign(f'c.{outbox}.javascript:alert(1)', SECRET)}?u=javascript:alert(1)",
        f"{server}/t/c/{outbox}.{sign(f'c.{outbox}.//evil.example', SECRET)}?u=//evil.example",
    ]


def test_forged_and_tampered_links_are_refused_and_record_nothing(  # type: ignore[no-untyped-def]
    db, write_config, tmp_path: Path, serve_app
) -> None:
    mailing = send_mailing(db, write_config, tmp_path)
    first, second = mailing.customers
    server = serve_app(create_app(mailing.config, db))

    with httpx.Client(follow_redirects=False, timeout=10) as client:
        answers = [
            (url, client.get(url)) for url in _attempts(server, mailing.outbox[first], mailing.outbox[second])
        ]

    for url, answer in answers:
        assert 400 <= answer.status_code < 500, url
        assert "location" not in answer.headers, url
        assert "evil" not in answer.text and "Traceback" not in answer.text, url
    assert counts(db) == (0, 0)
    pixels = [answer for url, answer in answers if "/t/o/" in url]
    assert {(a.status_code, a.content) for a in pixels} == {(404, pixels[0].content)}  # all alike


@pytest.mark.parametrize("secret", [None, ""])
def test_without_a_secret_no_link_is_valid(  # type: ignore[no-untyped-def]
    db, write_config, tmp_path: Path, serve_app, secret: str | None
) -> None:
    mailing = send_mailing(db, write_config, tmp_path, count=1)
    config = mailing.config
    links = config.settings.links.model_copy(update={"secret": secret})
    unsigned = dataclasses.replace(config, settings=config.settings.model_copy(update={"links": links}))
    server = serve_app(create_app(unsigned, db))
    outbox = mailing.outbox[mailing.customers[0]]

    with httpx.Client(follow_redirects=False, timeout=10) as client:
        pixel = client.get(f"{server}/t/o/{open_token(outbox, SECRET)}")
        click = client.get(f"{server}/t/c/{click_token(outbox, AUTUMN, SECRET)}?u={quote(AUTUMN, safe='')}")

    assert (pixel.status_code, click.status_code) == (404, 404)
    assert counts(db) == (0, 0)
