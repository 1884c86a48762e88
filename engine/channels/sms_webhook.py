"""SMS through a generic HTTP gateway: one JSON POST per message (httpx), answers sorted into retry or not.

The gateway receives ``{"id": <idempotency key>, "to": "+7...", "text": "...",
"sender": "..."}``; gateways that deduplicate by ``id`` make a resend after a
crash harmless. Its answer decides each message:

* 2xx: sent (a ``"id"`` or ``"message_id"`` in a JSON answer is kept as the reference);
* 429, 5xx, a timeout or no gateway at all: temporary failure, retried later;
* other 4xx: permanent failure with the gateway's answer (a bad number).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine.channels.base import DeliveryResult, DeliveryStatus, OutgoingMessage, SendJournal

if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True)
class SmsGatewaySettings:
    """Where the gateway is and how to talk to it."""

    url: str
    sender: str = "SHOP"
    headers: dict[str, str] = field(default_factory=dict)  # e.g. {"Authorization": "Bearer ..."}
    timeout: float = 10.0
    concurrency: int = 8


class SmsWebhookChannel:
    """Posts each SMS to the gateway; per-message results, never an exception for one message."""

    def __init__(self, settings: SmsGatewaySettings, *, name: str = "sms") -> None:
        self.name = name
        self.settings = settings
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.settings.timeout, headers=self.settings.headers)
        return self._client

    async def _post(self, message: OutgoingMessage) -> DeliveryResult:
        import httpx

        body = {
            "id": message.key,
            "to": message.recipient,
            "text": message.text or "",
            "sender": self.settings.sender,
        }
        try:
            response = await self._http().post(self.settings.url, json=body)
        except httpx.HTTPError as exc:
            detail = f"{type(exc).__name__}: {exc}".strip()
            return DeliveryResult(message.key, DeliveryStatus.TEMPORARY_FAILURE, detail=detail)
        answer = f"{response.status_code} {response.text[:200]}".strip()
        if response.is_success:
            return DeliveryResult(
                message.key, DeliveryStatus.SENT, reference=_reference(response) or message.key
            )
        if response.status_code == 429 or response.status_code >= 500:
            return DeliveryResult(message.key, DeliveryStatus.TEMPORARY_FAILURE, detail=answer)
        return DeliveryResult(message.key, DeliveryStatus.PERMANENT_FAILURE, detail=answer)

    async def send(
        self, messages: Sequence[OutgoingMessage], *, journal: SendJournal | None = None
    ) -> list[DeliveryResult]:
        """Post a batch, ``concurrency`` requests at a time; one result per message, in order."""
        limit = asyncio.Semaphore(max(1, self.settings.concurrency))

        async def one(message: OutgoingMessage) -> DeliveryResult:
            async with limit:
                return await self._post(message)

        return list(await asyncio.gather(*(one(m) for m in messages)))

    async def close(self) -> None:
        """Close the HTTP connection pool."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _reference(response: httpx.Response) -> str | None:
    try:
        answer = response.json()
    except ValueError:
        return None
    if isinstance(answer, dict):
        value = answer.get("message_id") or answer.get("id")
        return str(value) if value is not None else None
    return None
