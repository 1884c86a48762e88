"""SMS through a real HTTP gateway on loopback: accepted, refused, overloaded, absent."""

from __future__ import annotations

import asyncio

from engine.channels import DeliveryStatus, OutgoingMessage
from engine.channels.sms_webhook import SmsGatewaySettings, SmsWebhookChannel
from tests.channels.http_gateway import Gateway, http_gateway
from tests.channels.smtp_servers import free_port


def _batch(count: int) -> list[OutgoingMessage]:
    return [
        OutgoingMessage(key=f"run5:{n}:1", customer_id=n, recipient=f"+7916000{n:04d}", text=f"Скидка {n} %")
        for n in range(count)
    ]


def _send(url: str, batch: list[OutgoingMessage]) -> list:  # type: ignore[type-arg]
    channel = SmsWebhookChannel(
        SmsGatewaySettings(url=url, headers={"Authorization": "Bearer t0k"}, timeout=5)
    )

    async def run() -> list:  # type: ignore[type-arg]
        try:
            return await channel.send(batch)
        finally:
            await channel.close()

    return asyncio.run(run())


def test_each_message_is_posted_once_with_its_key() -> None:
    gateway = Gateway()
    batch = _batch(20)
    with http_gateway(gateway) as url:
        results = _send(url, batch)
    assert [r.key for r in results] == [m.key for m in batch]
    assert {r.status for r in results} == {DeliveryStatus.SENT}
    assert results[3].reference == "gw-run5:3:1"
    assert sorted(b["id"] for b in gateway.received) == sorted(m.key for m in batch)
    first = next(b for b in gateway.received if b["id"] == "run5:0:1")
    assert (
        first["text"] == "Скидка 0 %"
        and first["to"] == "+79160000000"
        and first["authorization"] == "Bearer t0k"
    )


def test_gateway_answers_decide_retry_or_not() -> None:
    gateway = Gateway(
        answers={
            "+79160000001": (400, '{"error": "invalid number"}'),
            "+79160000002": (503, "busy"),
            "+79160000003": (429, "slow down"),
        }
    )
    with http_gateway(gateway) as url:
        results = _send(url, _batch(4))
    assert [r.status for r in results] == [
        DeliveryStatus.SENT,
        DeliveryStatus.PERMANENT_FAILURE,
        DeliveryStatus.TEMPORARY_FAILURE,
        DeliveryStatus.TEMPORARY_FAILURE,
    ]
    assert results[1].detail == '400 {"error": "invalid number"}'


def test_no_gateway_is_temporary() -> None:
    results = _send(f"http://127.0.0.1:{free_port()}/sms", _batch(2))
    assert [r.status for r in results] == [DeliveryStatus.TEMPORARY_FAILURE] * 2
    assert all("ConnectError" in (r.detail or "") for r in results)
