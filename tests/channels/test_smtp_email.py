"""SMTP email against real servers on loopback: accepted, 451 then accepted, 550, dropped mid-DATA, none."""

from __future__ import annotations

import asyncio

from engine.channels import DeliveryStatus, OutgoingMessage, message_id
from engine.channels.smtp_email import SmtpEmailChannel, SmtpSettings
from tests.channels.smtp_servers import Recorder, free_port, smtp_server


def _batch(count: int) -> list[OutgoingMessage]:
    return [
        OutgoingMessage(
            key=f"run9:{n}:0",
            customer_id=n,
            recipient=f"c{n}@example.ru",
            subject=f"Письмо {n}",
            html=f"<p>{n}</p>",
        )
        for n in range(count)
    ]


def _channel(port: int, concurrency: int = 3) -> SmtpEmailChannel:
    settings = SmtpSettings(host="127.0.0.1", port=port, timeout=5, concurrency=concurrency)
    return SmtpEmailChannel(settings, sender="Shop <news@shop.example>", domain="shop.example")


def test_a_batch_is_delivered_once_each_over_a_pool_of_connections() -> None:
    recorder = Recorder()
    batch = _batch(30)
    with smtp_server(recorder) as port:
        results = asyncio.run(_channel(port).send(batch))
    assert [r.key for r in results] == [m.key for m in batch]
    assert {r.status for r in results} == {DeliveryStatus.SENT}
    assert sorted(recorder.message_ids) == sorted(
        message_id(m.key, "shop.example", installation="") for m in batch
    )
    assert len(set(recorder.message_ids)) == 30


def test_451_is_temporary_and_the_connection_carries_on() -> None:
    recorder = Recorder(data_answers=["451 4.3.0 try again later"])
    with smtp_server(recorder) as port:
        results = asyncio.run(_channel(port, concurrency=1).send(_batch(3)))
    assert results[0].status is DeliveryStatus.TEMPORARY_FAILURE and "451" in (results[0].detail or "")
    assert [r.status for r in results[1:]] == [DeliveryStatus.SENT, DeliveryStatus.SENT]
    assert len(recorder.message_ids) == 2


def test_550_is_permanent_with_the_servers_answer() -> None:
    recorder = Recorder(rcpt_answers={"c1@example.ru": "550 5.1.1 no such user"})
    with smtp_server(recorder) as port:
        results = asyncio.run(_channel(port, concurrency=1).send(_batch(3)))
    assert results[1].status is DeliveryStatus.PERMANENT_FAILURE
    assert results[1].detail == "550 5.1.1 no such user"
    assert [results[0].status, results[2].status] == [DeliveryStatus.SENT, DeliveryStatus.SENT]
    assert recorder.recipients == ["c0@example.ru", "c2@example.ru"]


def test_a_connection_dropped_mid_data_is_temporary_and_the_rest_goes_on() -> None:
    recorder = Recorder(data_answers=["drop"])
    with smtp_server(recorder) as port:
        results = asyncio.run(_channel(port, concurrency=1).send(_batch(4)))
    assert results[0].status is DeliveryStatus.TEMPORARY_FAILURE
    assert [r.status for r in results[1:]] == [DeliveryStatus.SENT] * 3
    assert len(recorder.message_ids) == 3


def test_nothing_listening_is_temporary_for_every_message() -> None:
    results = asyncio.run(_channel(free_port()).send(_batch(3)))
    assert [r.status for r in results] == [DeliveryStatus.TEMPORARY_FAILURE] * 3
    assert all("Connect" in (r.detail or "") or "refused" in (r.detail or "") for r in results)


def test_header_injection_is_refused_before_the_server() -> None:
    recorder = Recorder()
    evil = OutgoingMessage(
        key="run9:1:0", customer_id=1, recipient="a@example.ru\r\nBcc: all@example.com", text="x"
    )
    with smtp_server(recorder) as port:
        [result] = asyncio.run(_channel(port).send([evil]))
    assert result.status is DeliveryStatus.PERMANENT_FAILURE and recorder.message_ids == []
