"""Email through an SMTP server (aiosmtplib): a pool of reused connections, answers sorted into retry or not.

A batch is shared among ``concurrency`` connections, each sending its
messages one after another over one session (STARTTLS or TLS, optional
login). The server's answer decides each message:

* 2xx: sent;
* 4xx, a timeout, a dropped connection or no server at all: temporary
  failure, to retry later (the connection is opened again for the next one);
* 5xx: permanent failure, with the server's answer as the reason (a hard
  bounce for the suppression list).

**The point of no return.** Each transaction is MAIL, RCPT, DATA (354),
the dot-stuffed message, then the final ``.`` line, after which the server
answers and may deliver. Just before writing that final line the channel
awaits ``journal.committing(key)``. A worker that dies before it leaves
nothing at the server: a server discards a transaction whose data never
ended. A worker that dies after it may have handed the message over, and
the journal says so. While the worker lives, the result is what counts: a
connection lost or a timeout after the final line is a temporary failure
like any other, and the deterministic Message-ID lets anyone recognise the
repeat of a message the server had in fact accepted. The journal is called
exactly once for each message that reaches the final line, and for no
other; when it fails, the final line is not written, the connection is
dropped and the message is a temporary failure.

Messages are built by one :class:`~engine.channels.mime_template.MimeTemplate`
per channel (no header injection; bodies in 8 bits when the server announces
8BITMIME, else 7-bit clean; DKIM-signed over the bytes sent when a
:class:`~engine.channels.dkim_signing.DkimSigner` is given, and then always
7-bit clean, since a relay converting an 8-bit body would break the signature).
aiosmtplib opens each connection (TLS or STARTTLS, EHLO, login); the transactions then run on a
:class:`~engine.channels.smtp_session.SmtpSession`, which pipelines MAIL,
RCPT and DATA when the server announces PIPELINING.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.channels.base import DeliveryResult, DeliveryStatus, OutgoingMessage, SendJournal, message_id
from engine.channels.mime_template import MimeTemplate, mailbox
from engine.errors import HeaderInjectionError, JournalError

if TYPE_CHECKING:
    import aiosmtplib

    from engine.channels.dkim_signing import DkimSigner
    from engine.channels.smtp_session import SmtpSession


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
    cert_bundle: str | None = None  # CA certificates to trust for TLS (default: the system's)


def _answer(exc: aiosmtplib.SMTPResponseException) -> str:
    return f"{exc.code} {exc.message}".strip()


class SmtpEmailChannel:
    """Sends each email over SMTP; per-message results, never an exception for one message."""

    def __init__(
        self,
        settings: SmtpSettings,
        *,
        sender: str,
        domain: str,
        name: str = "email",
        signer: DkimSigner | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.sender = sender
        self.domain = domain
        self.mime = MimeTemplate(sender=sender, domain=domain, signer=signer)
        self._envelope_sender = mailbox(sender, "From")[1].encode("ascii")

    async def _connect(self) -> SmtpSession:
        import aiosmtplib

        from engine.channels.smtp_session import SmtpSession

        s = self.settings
        client = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            use_tls=s.use_tls,
            start_tls=s.starttls if not s.use_tls else False,
            timeout=s.timeout,
            cert_bundle=s.cert_bundle,
        )
        await client.connect()
        try:
            if s.username:
                await client.login(s.username, s.password or "")
            if client.is_ehlo_or_helo_needed:
                try:
                    await client.ehlo()
                except aiosmtplib.SMTPHeloError:
                    await client.helo()
            return SmtpSession(client, s.timeout)
        except BaseException:
            client.close()
            raise

    async def _send_one(
        self, session: SmtpSession, message: OutgoingMessage, journal: SendJournal | None
    ) -> DeliveryResult:
        import aiosmtplib

        reference = message_id(message.key, self.domain, installation=message.installation)
        # a signed message stays 7-bit clean: a relay that converts 8-bit bodies would break its signature
        eight_bit = session.eight_bit and self.mime.signer is None
        try:
            data = self.mime.render(message, eight_bit=eight_bit)
            recipient = mailbox(message.recipient)[1].encode("ascii")
        except HeaderInjectionError as exc:
            return DeliveryResult(message.key, DeliveryStatus.PERMANENT_FAILURE, detail=str(exc))
        except UnicodeError:
            detail = f"recipient {message.recipient!r}: a non-ASCII address needs SMTPUTF8, not supported"
            return DeliveryResult(message.key, DeliveryStatus.PERMANENT_FAILURE, detail=detail)
        try:
            await session.transaction(
                self._envelope_sender,
                recipient,
                data,
                key=message.key,
                journal=journal,
                eight_bit=eight_bit,
            )
        except JournalError as exc:
            return DeliveryResult(message.key, DeliveryStatus.TEMPORARY_FAILURE, detail=str(exc))
        except aiosmtplib.SMTPResponseException as exc:
            status = DeliveryStatus.PERMANENT_FAILURE if exc.code >= 500 else DeliveryStatus.TEMPORARY_FAILURE
            return DeliveryResult(message.key, status, detail=_answer(exc))
        return DeliveryResult(message.key, DeliveryStatus.SENT, reference=reference)

    async def _drain(
        self,
        queue: asyncio.Queue[tuple[int, OutgoingMessage]],
        results: list[DeliveryResult | None],
        journal: SendJournal | None,
    ) -> None:
        import aiosmtplib

        session: SmtpSession | None = None
        try:
            while not queue.empty():
                index, message = queue.get_nowait()
                try:
                    if session is None or not session.ready():
                        session = await self._connect()
                    results[index] = await self._send_one(session, message, journal)
                except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
                    # no server, a dropped connection, a timeout: this message waits for a retry
                    detail = f"{type(exc).__name__}: {exc}".strip()
                    results[index] = DeliveryResult(
                        message.key, DeliveryStatus.TEMPORARY_FAILURE, detail=detail
                    )
                    if session is not None:
                        session.close()
                    session = None
        except BaseException:
            if session is not None:
                session.close()  # cancelled mid-transaction: never QUIT inside DATA
            raise
        if session is not None:
            await session.quit()

    async def send(
        self, messages: Sequence[OutgoingMessage], *, journal: SendJournal | None = None
    ) -> list[DeliveryResult]:
        """Send a batch over up to ``concurrency`` connections; one result per message, in order.

        ``journal.committing(key)`` is awaited just before each message passes
        its point of no return (see the module's documentation).
        """
        queue: asyncio.Queue[tuple[int, OutgoingMessage]] = asyncio.Queue()
        for item in enumerate(messages):
            queue.put_nowait(item)
        results: list[DeliveryResult | None] = [None] * len(messages)
        workers = max(1, min(self.settings.concurrency, len(messages)))
        await asyncio.gather(*(self._drain(queue, results, journal) for _ in range(workers)))
        return [r for r in results if r is not None]

    async def close(self) -> None:
        """Connections live for one batch; nothing stays open between batches."""
