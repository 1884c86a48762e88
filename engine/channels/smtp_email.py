"""Email through an SMTP server (aiosmtplib): a pool of reused connections, answers sorted into retry or not.

A batch is shared among ``concurrency`` connections, each sending its
messages one after another over one session (STARTTLS or TLS, optional
login). The server's answer decides each message:

* 2xx: sent;
* 4xx, a timeout, a dropped connection or no server at all: temporary
  failure, to retry later (the connection is opened again for the next one);
* 5xx: permanent failure, with the server's answer as the reason (a hard
  bounce for the suppression list).

A message is never sent twice by this channel within a batch; across
retries, its deterministic Message-ID lets anyone recognise a repeat the
server had accepted just before a connection dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import aiosmtplib

from engine.channels.base import DeliveryResult, DeliveryStatus, OutgoingMessage, SendJournal, message_id
from engine.channels.email_message import HeaderInjectionError, build_email


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to reach the SMTP server."""

    host: str = "localhost"
    port: int = 587
    starttls: bool = False
    use_tls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0
    concurrency: int = 4


def _answer(exc: aiosmtplib.SMTPResponseException) -> str:
    return f"{exc.code} {exc.message}".strip()


class SmtpEmailChannel:
    """Sends each email over SMTP; per-message results, never an exception for one message."""

    def __init__(self, settings: SmtpSettings, *, sender: str, domain: str, name: str = "email") -> None:
        self.name = name
        self.settings = settings
        self.sender = sender
        self.domain = domain

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        client = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            use_tls=s.use_tls,
            start_tls=s.starttls if not s.use_tls else False,
            timeout=s.timeout,
        )
        await client.connect()
        if s.username:
            await client.login(s.username, s.password or "")
        return client

    async def _send_one(self, client: aiosmtplib.SMTP, message: OutgoingMessage) -> DeliveryResult:
        reference = message_id(message.key, self.domain)
        try:
            email = build_email(message, sender=self.sender, domain=self.domain)
        except HeaderInjectionError as exc:
            return DeliveryResult(message.key, DeliveryStatus.PERMANENT_FAILURE, detail=str(exc))
        try:
            refused, _ = await client.send_message(email)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            [first, *_] = exc.recipients
            await _reset(client)
            status = (
                DeliveryStatus.PERMANENT_FAILURE if first.code >= 500 else DeliveryStatus.TEMPORARY_FAILURE
            )
            return DeliveryResult(message.key, status, detail=_answer(first))
        except aiosmtplib.SMTPResponseException as exc:
            status = DeliveryStatus.PERMANENT_FAILURE if exc.code >= 500 else DeliveryStatus.TEMPORARY_FAILURE
            if exc.code >= 400:
                await _reset(client)
            return DeliveryResult(message.key, status, detail=_answer(exc))
        if refused:
            code, text = next(iter(refused.values()))
            status = DeliveryStatus.PERMANENT_FAILURE if code >= 500 else DeliveryStatus.TEMPORARY_FAILURE
            return DeliveryResult(message.key, status, detail=f"{code} {text}")
        return DeliveryResult(message.key, DeliveryStatus.SENT, reference=reference)

    async def _drain(
        self, queue: asyncio.Queue[tuple[int, OutgoingMessage]], results: list[DeliveryResult | None]
    ) -> None:
        client: aiosmtplib.SMTP | None = None
        try:
            while not queue.empty():
                index, message = queue.get_nowait()
                try:
                    if client is None or not client.is_connected:
                        client = await self._connect()
                    results[index] = await self._send_one(client, message)
                except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
                    # no server, a dropped connection, a timeout: this message waits for a retry
                    detail = f"{type(exc).__name__}: {exc}".strip()
                    results[index] = DeliveryResult(
                        message.key, DeliveryStatus.TEMPORARY_FAILURE, detail=detail
                    )
                    _discard(client)
                    client = None
        finally:
            await _quit(client)

    async def send(
        self, messages: Sequence[OutgoingMessage], *, journal: SendJournal | None = None
    ) -> list[DeliveryResult]:
        """Send a batch over up to ``concurrency`` connections; one result per message, in order."""
        queue: asyncio.Queue[tuple[int, OutgoingMessage]] = asyncio.Queue()
        for item in enumerate(messages):
            queue.put_nowait(item)
        results: list[DeliveryResult | None] = [None] * len(messages)
        workers = max(1, min(self.settings.concurrency, len(messages)))
        await asyncio.gather(*(self._drain(queue, results) for _ in range(workers)))
        return [r for r in results if r is not None]

    async def close(self) -> None:
        """Connections live for one batch; nothing stays open between batches."""


async def _reset(client: aiosmtplib.SMTP) -> None:
    """After a refused transaction, RSET so the session can carry the next message."""
    try:
        await client.rset()
    except (aiosmtplib.SMTPException, OSError):
        client.close()


def _discard(client: aiosmtplib.SMTP | None) -> None:
    if client is not None:
        client.close()


async def _quit(client: aiosmtplib.SMTP | None) -> None:
    if client is not None and client.is_connected:
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, OSError):
            client.close()
