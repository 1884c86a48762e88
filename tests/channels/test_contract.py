"""One contract suite over every channel: per-item results, exactly once per key, no raise for one message."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import mailbox
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from engine.channels import (
    Channel,
    DeliveryStatus,
    MaildirEmailChannel,
    MemoryChannel,
    OutgoingMessage,
    message_id,
)
from engine.channels.call_list import CallListChannel
from engine.channels.list_file import ListFileChannel
from engine.channels.meeting_list import MeetingListChannel
from engine.channels.postal_list import PostalListChannel
from engine.channels.sms_webhook import SmsGatewaySettings, SmsWebhookChannel
from engine.channels.smtp_email import SmtpEmailChannel, SmtpSettings
from tests.channels.http_gateway import Gateway, http_gateway
from tests.channels.smtp_servers import Recorder, smtp_server

INSTALLATION = "5f0c3e2a9b7d4c1e8a6f2b0d9c7e5a31"  # the database whose outbox made the messages


def _message_id(key: str) -> str:
    return message_id(key, "shop.example", installation=INSTALLATION)


@dataclass
class Subject:
    """A channel under test and how to list what it delivered (keys or Message-IDs)."""

    channel: Channel
    delivered: Callable[[], list[str]]


def _maildir(tmp_path: Path) -> Subject:
    channel = MaildirEmailChannel(
        tmp_path / "Maildir", sender="Shop <news@shop.example>", domain="shop.example"
    )

    def delivered() -> list[str]:
        parser = BytesParser(policy=policy.default)
        return sorted(
            str(parser.parsebytes(p.read_bytes())["Message-ID"])
            for p in (tmp_path / "Maildir" / "new").iterdir()
        )

    return Subject(channel, delivered)


def _list_file(kind: type[ListFileChannel]) -> Callable[[Path], Subject]:
    def make(tmp_path: Path) -> Subject:
        channel = kind(tmp_path / "lists", dt.date(2026, 12, 7))  # type: ignore[call-arg]

        def delivered() -> list[str]:
            keys = []
            for path in (tmp_path / "lists").glob("*.csv"):
                with path.open(encoding="utf-8-sig", newline="") as handle:
                    keys += [row["key"] for row in csv.DictReader(handle, delimiter=";")]
            return sorted(_message_id(key) for key in keys)

        return Subject(channel, delivered)

    return make


LOCAL = {
    "memory": lambda tmp_path: _memory(tmp_path),
    "maildir": lambda tmp_path: _maildir(tmp_path),
    "calls": _list_file(CallListChannel),
    "letters": _list_file(PostalListChannel),
    "meetings": _list_file(MeetingListChannel),
}


def _memory(tmp_path: Path) -> Subject:
    channel = MemoryChannel()
    return Subject(channel, lambda: sorted(_message_id(key) for key in channel.sent))


@pytest.fixture
def smtp_subject() -> Iterator[Subject]:
    recorder = Recorder()
    with smtp_server(recorder) as port:
        settings = SmtpSettings(host="127.0.0.1", port=port, timeout=5, concurrency=2)
        channel = SmtpEmailChannel(settings, sender="Shop <news@shop.example>", domain="shop.example")
        yield Subject(channel, lambda: sorted(recorder.message_ids))


@pytest.fixture
def sms_subject() -> Iterator[Subject]:
    gateway = Gateway()
    with http_gateway(gateway) as url:
        channel = SmsWebhookChannel(SmsGatewaySettings(url=url, timeout=5))
        yield Subject(channel, lambda: sorted(_message_id(body["id"]) for body in gateway.received))


@pytest.fixture(params=[*LOCAL, "smtp", "sms"])
def subject(request: pytest.FixtureRequest, tmp_path: Path) -> Subject:
    """Every channel."""
    if request.param in ("smtp", "sms"):
        return request.getfixturevalue(f"{request.param}_subject")  # type: ignore[no-any-return]
    return LOCAL[request.param](tmp_path)


@pytest.fixture(params=list(LOCAL))
def remembering(request: pytest.FixtureRequest, tmp_path: Path) -> Subject:
    """The channels that can see a key they delivered before (SMTP and SMS cannot: the outbox guards them)."""
    return LOCAL[request.param](tmp_path)


def _message(n: int, **fields: object) -> OutgoingMessage:
    values: dict[str, object] = {
        "key": f"run1:{n}:0",
        "customer_id": n,
        "recipient": f"c{n}@example.ru",
        "subject": f"Здравствуйте, клиент {n}",
        "html": f"<p>Hello <b>{n}</b></p>",
        "installation": INSTALLATION,
    }
    values.update(fields)
    return OutgoingMessage(**values)  # type: ignore[arg-type]


def test_every_channel_implements_the_protocol(subject: Subject) -> None:
    assert isinstance(subject.channel, Channel)


def test_one_result_per_message_in_order(subject: Subject) -> None:
    batch = [_message(n) for n in range(5)]
    results = asyncio.run(subject.channel.send(batch))
    assert [r.key for r in results] == [m.key for m in batch]
    assert {r.status for r in results} == {DeliveryStatus.SENT}
    assert subject.delivered() == sorted(_message_id(m.key) for m in batch)


def test_the_same_key_is_delivered_once(remembering: Subject) -> None:
    batch = [_message(1), _message(2)]
    asyncio.run(remembering.channel.send(batch))
    again = asyncio.run(remembering.channel.send([*batch, _message(1)]))  # a retry after a crash
    assert [r.status for r in again] == [DeliveryStatus.SENT] * 3
    assert len(remembering.delivered()) == 2
    asyncio.run(remembering.channel.close())


def test_maildir_messages_open_in_a_mail_client(tmp_path: Path) -> None:
    channel = MaildirEmailChannel(
        tmp_path / "Maildir", sender="Shop <news@shop.example>", domain="shop.example"
    )
    html = "<html><head><style>p{color:red}</style></head><body><p>Скидка <a href='https://shop.example/x'>тут</a></p></body></html>"
    [result] = asyncio.run(
        channel.send([_message(7, html=html, headers={"List-Unsubscribe": "<https://u.example/1>"})])
    )
    assert result.status is DeliveryStatus.SENT and result.reference == _message_id("run1:7:0")
    [stored] = list(mailbox.Maildir(tmp_path / "Maildir", create=False))
    email = BytesParser(policy=policy.default).parsebytes(stored.as_bytes())
    assert email["Subject"] == "Здравствуйте, клиент 7" and email["To"] == "c7@example.ru"
    assert email["Message-ID"] == result.reference and email["List-Unsubscribe"] == "<https://u.example/1>"
    assert email.get_content_type() == "multipart/alternative"
    text = email.get_body(("plain",)).get_content()
    assert "Скидка тут (https://shop.example/x)" in text and "color" not in text
    assert "<a href='https://shop.example/x'>" in email.get_body(("html",)).get_content()
    assert not list((tmp_path / "Maildir" / "tmp").iterdir())


def test_the_same_key_of_another_installation_is_another_message(tmp_path: Path) -> None:
    # a database rebuilt from scratch writes into the Maildir its predecessor filled: run 1,
    # customer 1, step 0 again, but a message of its own, with a Message-ID of its own
    channel = MaildirEmailChannel(tmp_path / "Maildir", sender="news@shop.example", domain="shop.example")
    other = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    first = asyncio.run(channel.send([_message(1)]))
    second = asyncio.run(channel.send([_message(1, installation=other), _message(1)]))
    mine, theirs = _message_id("run1:1:0"), message_id("run1:1:0", "shop.example", installation=other)
    assert mine != theirs
    assert [r.reference for r in [*first, *second]] == [mine, theirs, mine]  # the retry: the same again
    stored = {
        str(BytesParser(policy=policy.default).parsebytes(p.read_bytes())["Message-ID"])
        for p in (tmp_path / "Maildir" / "new").iterdir()
    }
    assert stored == {mine, theirs}


def test_header_injection_fails_that_message_only(tmp_path: Path) -> None:
    channel = MaildirEmailChannel(tmp_path / "Maildir", sender="news@shop.example", domain="shop.example")
    evil = _message(1, subject="Hi\r\nBcc: everyone@example.com")
    results = asyncio.run(channel.send([evil, _message(2)]))
    assert results[0].status is DeliveryStatus.PERMANENT_FAILURE and "line break" in (results[0].detail or "")
    assert results[1].status is DeliveryStatus.SENT
    assert len(list((tmp_path / "Maildir" / "new").iterdir())) == 1


def test_memory_channel_reports_configured_failures() -> None:
    channel = MemoryChannel(fail={"c2@example.ru": DeliveryStatus.TEMPORARY_FAILURE})
    results = asyncio.run(channel.send([_message(1), _message(2)]))
    assert [r.status for r in results] == [DeliveryStatus.SENT, DeliveryStatus.TEMPORARY_FAILURE]
    assert list(channel.sent) == ["run1:1:0"]


def test_two_maildir_writers_racing_on_the_same_keys_deliver_each_once(tmp_path: Path) -> None:
    import concurrent.futures

    batch = [_message(n) for n in range(200)]

    def worker() -> list[DeliveryStatus]:
        channel = MaildirEmailChannel(tmp_path / "Maildir", sender="news@shop.example", domain="shop.example")
        return [r.status for r in asyncio.run(channel.send(batch))]

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(lambda _: worker(), range(4)))
    assert all(status is DeliveryStatus.SENT for statuses in outcomes for status in statuses)
    assert len(list((tmp_path / "Maildir" / "new").iterdir())) == 200
    assert not list((tmp_path / "Maildir" / "tmp").iterdir())
