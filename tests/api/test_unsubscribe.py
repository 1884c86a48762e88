"""Unsubscribe links against a live server: the page, the form, RFC 8058 one-click, forgeries refused."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx

from engine.api.app import create_app
from engine.channels import MemoryChannel
from engine.contact_policy.links import sign, unsubscribe_url
from engine.models import outbox as states
from engine.outbox import drain
from tests.api.mailings import BASE_URL, consents, counts, live, responses, send_mailing, suppressions
from tests.outbox.factories import SECRET, T0, Clock, add_run, queue, rows_of

ONE_CLICK = {"content-type": "application/x-www-form-urlencoded"}
ALL_CONSENTS = ("email", "sms", "call", "post")


def _given(db, customer: int) -> dict[str, bool]:  # type: ignore[no-untyped-def]
    values = consents(db, customer)
    return {channel: values[f"consent_{channel}"] for channel in ALL_CONSENTS}


def test_the_page_shows_who_and_what_and_offers_all_marketing_but_changes_nothing(  # type: ignore[no-untyped-def]
    db, write_config, tmp_path: Path, serve_app
) -> None:
    mailing = send_mailing(db, write_config, tmp_path, count=1)
    [anna] = mailing.customers
    server = serve_app(create_app(mailing.config, db))
    url = live(mailing.unsubscribe_header_url(anna), server)

    page = httpx.get(url, timeout=10)

    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "a***@example.ru" in page.text and "anna0@example.ru" not in page.text
    assert "Autumn note" in page.text and "emails" in page.text
    assert re.search(r'name="scope" value="email"', page.text)
    assert re.search(r'name="scope" value="all"', page.text)
    assert "All marketing (email, SMS, calls, letters)" in page.text
    action = re.search(r'<form method="post" action="([^"]+)"', page.text)
    assert action is not None and action.group(1) == "?" + urlsplit(url).query.replace("&", "&amp;")
    assert (
        page.headers["cache-control"] == "no-store"
        and "frame-ancestors 'none'" in (page.headers["content-security-policy"])
    )
    assert counts(db) == (0, 0) and all(_given(db, anna).values())


def test_one_click_on_the_list_unsubscribe_header_unsubscribes_from_email_at_once(  # type: ignore[no-untyped-def]
    db, write_config, tmp_path: Path, serve_app
) -> None:
    mailing = send_mailing(db, write_config, tmp_path)
    anna, boris = mailing.customers
    server = serve_app(create_app(mailing.config, db))
    header_url = mailing.unsubscribe_header_url(anna)
    assert mailing.emails[anna]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    with httpx.Client(follow_redirects=False, timeout=10) as client:
        answer = client.post(
            live(header_url, server), content="List-Unsubscribe=One-Click", headers=ONE_CLICK
        )
        state = (consents(db, anna), suppressions(db), [tuple(r) for r in responses(db)])
        again = client.post(live(header_url, server), content="List-Unsubscribe=One-Click", headers=ONE_CLICK)

    assert answer.status_code == 200 and "no longer receive our emails" in answer.text
    assert again.status_code == 200 and again.text == answer.text  # idempotent, the same confirmation
    assert (consents(db, anna), suppressions(db), [tuple(r) for r in responses(db)]) == state  # nothing new
    assert _given(db, anna) == {"email": False, "sms": True, "call": True, "post": True}
    withdrawn_at = consents(db, anna)["consent_email_at"]
    assert withdrawn_at is not None and abs(dt.datetime.now(dt.UTC) - withdrawn_at) < dt.timedelta(minutes=1)
    assert suppressions(db) == {("email", "anna0@example.ru", "unsubscribe", anna)}
    [unsubscribed] = responses(db)
    assert (unsubscribed.kind, unsubscribed.source, unsubscribed.key, unsubscribed.detail) == (
        "unsubscribe",
        "tracking",
        f"unsubscribe:{anna}:note",
        "email",
    )
    assert (unsubscribed.customer_id, unsubscribed.outbox_id, unsubscribed.campaign) == (
        anna,
        mailing.outbox[anna],
        "note",
    )
    assert all(_given(db, boris).values())  # only the link's customer

    with db.begin() as connection:  # the next mailing leaves her out
        run = add_run(connection, scheduled_for=T0 + dt.timedelta(days=1))
        queue(connection, run, mailing.customers, scheduled_at=T0 + dt.timedelta(days=1))
    memory = MemoryChannel("email")
    drain(
        db,
        mailing.config,
        channels={"email": memory},
        until_idle=True,
        clock=Clock(T0 + dt.timedelta(days=1)),
    )
    assert rows_of(db, run)[(anna, 0)].state == states.NO_CONSENT
    assert list(memory.sent) == [f"{run}:{boris}:0"]


def test_one_click_also_comes_as_multipart_form_data(  # type: ignore[no-untyped-def]
    db, write_config, tmp_path: Path, serve_app
) -> None:
    mailing = send_mailing(db, write_config, tmp_path, count=1)
    [anna] = mailing.customers
    server = serve_app(create_app(mailing.config, db))

    answer = httpx.post(
        live(mailing.unsubscribe_header_url(anna), server),
        files={"List-Unsubscribe": (None, "One-Click")},
        timeout=10,
    )

    assert answer.status_code == 200
    assert answer.request.headers["content-type"].startswith("multipart/form-data")
    assert _given(db, anna) == {"email": False, "sms": True, "call": True, "post": True}
    assert [(r.kind, r.detail) for r in responses(db)] == [("unsubscribe", "email")]


def test_the_form_unsubscribes_from_all_marketing_and_suppresses_every_address(  # type: ignore[no-untyped-def]
    db, write_config, tmp_path: Path, serve_app
) -> None:
    mailing = send_mailing(db, write_config, tmp_path)
    anna, boris = mailing.customers
    server = serve_app(create_app(mailing.config, db))

    with httpx.Client(follow_redirects=False, timeout=10) as client:
        first = client.post(live(mailing.unsubscribe_header_url(anna), server), data={"scope": "all"})
        email_only = client.post(live(mailing.unsubscribe_header_url(boris), server), data={"scope": "email"})
        widened = client.post(live(mailing.unsubscribe_header_url(boris), server), data={"scope": "all"})

    assert [a.status_code for a in (first, email_only, widened)] == [200, 200, 200]
    assert "no longer receive any marketing" in first.text and "SMS" in first.text
    for customer in (anna, boris):
        values = consents(db, customer)
        assert not any(_given(db, customer).values())
        assert all(values[f"consent_{channel}_at"] is not None for channel in ALL_CONSENTS)
    assert suppressions(db) == {
        ("email", "anna0@example.ru", "unsubscribe", anna),
        ("sms", "+79165550000", "unsubscribe", anna),
        ("call", "+79165550000", "unsubscribe", anna),
        ("post", "Moscow, Tverskaya 1", "unsubscribe", anna),
        ("email", "anna1@example.ru", "unsubscribe", boris),
        ("sms", "+79165550001", "unsubscribe", boris),
        ("call", "+79165550001", "unsubscribe", boris),
        ("post", "Moscow, Tverskaya 2", "unsubscribe", boris),
    }
    assert sorted((r.customer_id, r.key, r.detail) for r in responses(db)) == [
        (anna, f"unsubscribe:{anna}:note", "all"),
        (boris, f"unsubscribe:{boris}:note", "all"),  # email only, then widened to all
    ]


def _forgeries(server: str, anna: int, signed: str) -> list[str]:
    """Unsubscribe URLs with forged or tampered payloads and signatures (``signed``: anna's real URL)."""
    signature = urlsplit(signed).query.removeprefix("s=")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    path = f"{server}/u/{quote(f'u.{anna}.note', safe='')}"
    return [
        path,  # no signature
        f"{path}?s=",
        f"{path}?s={flipped}",
        f"{path}?s={signature}x",
        f"{path}?s=%C3%A9%C3%A9%C3%A9",  # not even ASCII
        f"{server}/u/{quote(f'u.{anna + 1}.note', safe='')}?s={signature}",  # another customer
        f"{server}/u/{quote(f'u.{anna}.other', safe='')}?s={signature}",  # another campaign
        f"{server}/u/{quote(f'x.{anna}.note', safe='')}?s={signature}",
        unsubscribe_url(server, anna, "note", "another-secret"),
        f"{server}/u/{quote(f'u.{anna}', safe='')}?s={sign(f'u.{anna}', SECRET)}",  # no campaign
        f"{server}/u/{quote('u.x.note', safe='')}?s={sign('u.x.note', SECRET)}",  # not a customer id
    ]


def test_forged_or_tampered_links_are_refused_and_change_nothing(  # type: ignore[no-untyped-def]
    db, write_config, tmp_path: Path, serve_app
) -> None:
    mailing = send_mailing(db, write_config, tmp_path)
    anna, boris = mailing.customers
    server = serve_app(create_app(mailing.config, db))
    signed = live(mailing.unsubscribe_header_url(anna), server)
    before = (consents(db, anna), consents(db, boris))

    with httpx.Client(follow_redirects=False, timeout=10) as client:
        for url in _forgeries(server, anna, signed):
            for answer in (
                client.get(url),
                client.post(url, content="List-Unsubscribe=One-Click", headers=ONE_CLICK),
                client.post(url, data={"scope": "all"}),
            ):
                assert answer.status_code == 403, (url, answer.status_code)
                assert "not valid" in answer.text and "a***@" not in answer.text
        no_choice = client.post(signed, data={"scope": "everything"})
        empty = client.post(signed, content=b"", headers=ONE_CLICK)
        huge = client.post(signed, content="List-Unsubscribe=One-Click&" + "x" * 200_000, headers=ONE_CLICK)

    assert (no_choice.status_code, empty.status_code, huge.status_code) == (400, 400, 413)
    assert counts(db) == (0, 0)
    assert (consents(db, anna), consents(db, boris)) == before


def test_an_unknown_customer_is_not_found(  # type: ignore[no-untyped-def]
    db, write_config, tmp_path: Path, serve_app
) -> None:
    mailing = send_mailing(db, write_config, tmp_path, count=1)
    server = serve_app(create_app(mailing.config, db))
    url = unsubscribe_url(server, 999_999, "note", SECRET)

    page = httpx.get(url, timeout=10)
    posted = httpx.post(url, content="List-Unsubscribe=One-Click", headers=ONE_CLICK, timeout=10)

    assert (page.status_code, posted.status_code) == (404, 404)
    assert counts(db) == (0, 0)
    assert BASE_URL not in page.text


def test_the_page_names_the_campaign_as_customers_know_it(  # type: ignore[no-untyped-def]
    db, write_config, tmp_path: Path, serve_app
) -> None:
    mailing = send_mailing(db, write_config, tmp_path, count=1)
    campaign = tmp_path / "campaigns" / "note.toml"
    text = campaign.read_text(encoding="utf-8")
    campaign.write_text(
        text.replace('name = "Autumn note"\n', 'name = "Autumn note"\npublic_name = "Новости & скидки"\n'),
        encoding="utf-8",
    )
    [anna] = mailing.customers
    server = serve_app(create_app(mailing.config, db))
    url = live(mailing.unsubscribe_header_url(anna), server)

    page = httpx.get(url, timeout=10)
    assert "Новости &amp; скидки" in page.text and "Autumn note" not in page.text
    done = httpx.post(url, data={"scope": "email"}, timeout=10)
    assert done.status_code == 200
    assert "Новости &amp; скидки" in done.text and "Autumn note" not in done.text

    campaign.unlink()  # a campaign that is gone is named as its sender is, never by its key
    page = httpx.get(url, timeout=10)
    assert "Shop" in page.text and "note" not in page.text.replace("noindex", "")
