"""Signed links and the tracking of an email's HTML: what is signed verifies, nothing else does."""

from __future__ import annotations

import hashlib
from html.parser import HTMLParser
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.contact_policy.links import (
    UnsubscribeLink,
    click_token,
    click_url,
    open_token,
    open_url,
    read_click,
    read_open,
    read_unsubscribe,
    sign,
    trackable,
    unsubscribe_url,
    verify,
)
from engine.responses.tracking import click_key, open_key, track_email

SECRET = "links-test-secret"
BASE = "https://crm.shop.example"


def test_signatures_verify_only_their_payload_and_secret() -> None:
    signature = sign("u.1.note", SECRET)
    assert len(signature) == 22 and verify("u.1.note", signature, SECRET)
    assert not verify("u.2.note", signature, SECRET)
    assert not verify("u.1.note", signature, SECRET + "x")
    assert not verify("u.1.note", "ééé", SECRET)  # any text is refused, never an error
    with pytest.raises(ValueError, match="needs a secret"):
        sign("u.1.note", "")


def test_unsubscribe_links_name_their_customer_and_campaign() -> None:
    url = unsubscribe_url(BASE + "/", 42, "winback.autumn", SECRET)
    parts = urlsplit(url)
    payload, signature = unquote(parts.path.removeprefix("/u/")), parse_qs(parts.query)["s"][0]
    assert url.startswith(f"{BASE}/u/u.42.winback.autumn?s=")
    assert read_unsubscribe(payload, signature, SECRET) == UnsubscribeLink(42, "winback.autumn")
    assert read_unsubscribe(payload, signature, None) is None
    assert read_unsubscribe("u.43.winback.autumn", signature, SECRET) is None
    assert read_unsubscribe("u.x.note", sign("u.x.note", SECRET), SECRET) is None
    assert read_unsubscribe("o.42.note", sign("o.42.note", SECRET), SECRET) is None


def test_open_and_click_tokens_belong_to_one_row_and_one_url() -> None:
    url = "https://shop.example/sale?a=1&b=2"
    assert open_url(BASE, 7, SECRET) == f"{BASE}/t/o/{open_token(7, SECRET)}"
    assert read_open(open_token(7, SECRET), SECRET) == 7
    assert read_open(open_token(7, SECRET), None) is None
    assert read_open(click_token(7, url, SECRET), SECRET) is None
    token = open_token(7, SECRET)
    assert read_open("8" + token[1:], SECRET) is None
    assert read_open("07." + token.split(".")[1], SECRET) is None  # one spelling of the id only
    assert read_open(token + "=", SECRET) is None

    tracked = urlsplit(click_url(BASE, 7, url, SECRET))
    got_token, got_url = tracked.path.removeprefix("/t/c/"), parse_qs(tracked.query)["u"][0]
    assert got_url == url and read_click(got_token, got_url, SECRET) == 7
    assert read_click(got_token, url + "&c=3", SECRET) is None
    assert read_click(open_token(7, SECRET), url, SECRET) is None
    assert read_click(click_token(8, url, SECRET), url, SECRET) == 8
    assert read_click(click_token(8, url, SECRET).replace("8.", "7.", 1), url, SECRET) is None


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://shop.example/a", True),
        ("HTTP://shop.example", True),
        ("//evil.example", False),
        ("/relative", False),
        ("javascript:alert(1)", False),
        ("data:text/html,hi", False),
        ("mailto:a@shop.example", False),
        ("https://", False),
        ("https://shop.example/a b", False),
        ("https://shop.example/\r\nSet-Cookie: x", False),
        ("https://shop.example\\@evil.example", False),
    ],
)
def test_only_absolute_http_links_are_trackable(url: str, ok: bool) -> None:
    assert trackable(url) is ok
    if not ok:
        with pytest.raises(ValueError):
            click_url(BASE, 1, url, SECRET)
        assert read_click(f"1.{sign(f'c.1.{url}', SECRET)}", url, SECRET) is None  # even when signed


@given(
    st.integers(min_value=1, max_value=10**12),
    st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x2FF, exclude_characters="\\\x7f"),
        max_size=40,
    ),
    st.integers(min_value=0, max_value=60),
)
def test_a_click_link_verifies_for_its_url_and_no_altered_one(outbox_id: int, path: str, at: int) -> None:
    url = f"https://shop.example/{path}"
    tracked = urlsplit(click_url(BASE, outbox_id, url, SECRET))
    token, got = tracked.path.removeprefix("/t/c/"), parse_qs(tracked.query)["u"][0]
    assert got == url and read_click(token, got, SECRET) == outbox_id
    altered = got[:at] + "X" + got[at:]
    assert read_click(token, altered, SECRET) is None


class _Parsed(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parsed = _Parsed()
    parsed.feed(html)
    return parsed.tags


def test_tracking_rewrites_every_http_link_of_the_email_and_nothing_else() -> None:
    unsubscribe = unsubscribe_url(BASE, 3, "note", SECRET)
    html = (
        "<html><head><link rel='stylesheet' href='https://shop.example/s.css'></head><BODY>"
        '<a href="https://shop.example/a?x=1&amp;y=2" title="see href=https://evil.example">A</a>'
        "<A HREF='https://shop.example/b'>B</A>"
        "<a class=x href=https://shop.example/c>C</a>"
        '<a data-href="https://shop.example/d" href="mailto:hi@shop.example">mail</a>'
        '<a href="#top">top</a><a href="/relative">rel</a><a name="n">no href</a>'
        f'<a href="{unsubscribe.replace("&", "&amp;")}">Unsubscribe</a>'
        f'<a href="{BASE}/u/u.3.other?s=abc">other unsubscribe</a>'
        '<map><area shape="rect" coords="0,0,1,1" href="https://shop.example/e"></map>'
        '<img src="https://shop.example/logo.png" alt="">'
        "</BODY></html>"
    )

    tracked = track_email(html, 5, base_url=BASE + "/", secret=SECRET, keep={unsubscribe})

    tags = _tags(tracked)
    hrefs = [attrs.get("href") for tag, attrs in tags if tag in ("a", "area")]
    clicks = {
        parse_qs(urlsplit(h).query)["u"][0]: urlsplit(h).path.removeprefix("/t/c/")
        for h in hrefs
        if h and h.startswith(f"{BASE}/t/c/")
    }
    assert list(clicks) == [
        "https://shop.example/a?x=1&y=2",
        "https://shop.example/b",
        "https://shop.example/c",
        "https://shop.example/e",
    ]
    assert all(read_click(token, url, SECRET) == 5 for url, token in clicks.items())
    assert [h for h in hrefs if h and "/t/c/" not in h] == [
        "mailto:hi@shop.example",
        "#top",
        "/relative",
        unsubscribe,
        f"{BASE}/u/u.3.other?s=abc",
    ]
    assert ("a", {"name": "n"}) in tags
    assert ("link", {"rel": "stylesheet", "href": "https://shop.example/s.css"}) in tags
    assert 'title="see href=https://evil.example"' in tracked
    assert 'data-href="https://shop.example/d"' in tracked
    assert tags[-1] == (
        "img",
        {
            "src": open_url(BASE, 5, SECRET),
            "width": "1",
            "height": "1",
            "alt": "",
            "style": "display:block;width:1px;height:1px;border:0",
        },
    )
    assert tracked.endswith("</BODY></html>")


def test_an_email_without_a_body_tag_gets_the_pixel_at_its_end() -> None:
    tracked = track_email("<p>Hi</p>", 9, base_url=BASE, secret=SECRET)
    assert tracked.startswith("<p>Hi</p><img ") and open_token(9, SECRET) in tracked


def test_response_keys_name_the_row_and_a_digest_of_the_url() -> None:
    digest = hashlib.sha256(b"https://shop.example/").hexdigest()
    assert open_key(12) == "open:12"
    assert click_key(12, "https://shop.example/") == f"click:12:{digest[:16]}"
