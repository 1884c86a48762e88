"""One SMTP session's mail transactions, pipelined where the server allows it (RFC 2920).

aiosmtplib opens the connection (TLS or STARTTLS, EHLO, login); the open
transport is then handed to a :class:`SmtpSession`, which carries the mail
transactions of the session. aiosmtplib sends one command at a time and
spends tens of microseconds of Python on each; a session writes MAIL, RCPT
and DATA in one go when the server announces PIPELINING and reads the three
answers, so a message costs two round trips instead of four.

A transaction writes the message and awaits ``journal.committing(key)``
before it writes the final ``.`` line: see
:mod:`engine.channels.smtp_email` for why.
"""

from __future__ import annotations

import asyncio
import collections
import re
from typing import Any, cast

import aiosmtplib
from aiosmtplib import SMTPResponse

from engine.channels.base import SendJournal
from engine.errors import JournalError

MAX_RESPONSE = 32 * 1024  # a whole answer, continuation lines included (as aiosmtplib)
_DOT_AFTER_LINE_BREAK = re.compile(rb"\n\.")
_END_OF_DATA = b".\r\n"


def dot_stuffed(data: bytes) -> bytes:
    """``data`` (CRLF lines, ending with CRLF) with a ``.`` added before each line that starts with one."""
    if _DOT_AFTER_LINE_BREAK.search(data) is not None:  # a regex finds it faster than ``in``
        data = data.replace(b"\n.", b"\n..")
    return b"." + data if data.startswith(b".") else data


class SmtpSession(asyncio.Protocol):
    """Mail transactions over the connection of ``client``, taken over after its EHLO and login.

    ``client`` is not used again; ``timeout`` bounds each wait for an answer.
    """

    def __init__(self, client: aiosmtplib.SMTP, timeout: float) -> None:
        self.timeout = timeout
        self.pipelining = client.supports_extension("pipelining")
        self.size = client.supports_extension("size")
        self.eight_bit = client.supports_extension("8bitmime")
        self._loop = asyncio.get_running_loop()
        self._buffer = b""  # the start of a line still to come
        self._lines: list[bytes] = []
        self._answers: collections.deque[SMTPResponse] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._error: Exception | None = None
        self._writable: asyncio.Future[None] | None = None
        transport = client.transport
        if transport is None or transport.is_closing():
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_protocol(self)

    # asyncio.Protocol

    def data_received(self, data: bytes) -> None:
        *lines, self._buffer = (self._buffer + data).split(b"\n") if self._buffer else data.split(b"\n")
        for line in lines:
            if line[3:4] == b"-":  # a continuation line
                self._lines.append(line)
                continue
            try:
                code = int(line[:3])
            except ValueError:
                self._fail(aiosmtplib.SMTPResponseException(-1, f"Malformed SMTP response: {line!r}"))
                return
            if self._lines:
                text = b"\n".join(part[4:].strip() for part in [*self._lines, line])
                self._lines = []
            else:
                text = line[4:].strip()
            self._answers.append(SMTPResponse(code, text.decode("utf-8", "surrogateescape")))
        if len(self._buffer) + sum(map(len, self._lines)) > MAX_RESPONSE:
            self._fail(aiosmtplib.SMTPResponseException(-1, "Response too long"))
        self._wake()

    def eof_received(self) -> bool:
        self._fail(aiosmtplib.SMTPServerDisconnected("Unexpected EOF received"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        error = aiosmtplib.SMTPServerDisconnected("Connection lost")
        error.__cause__ = exc
        self._error = self._error or error
        self._wake()
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def pause_writing(self) -> None:
        self._writable = self._loop.create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    # reading and writing

    def _fail(self, error: Exception) -> None:
        self._error = self._error or error
        self.transport.close()
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def ready(self) -> bool:
        """Whether the connection is open and idle; an answer nobody asked for (421 on idle) closes it."""
        if self._answers:
            self.close()
        return self._error is None and not self.transport.is_closing()

    def write(self, data: bytes) -> None:
        if self._error is not None:
            raise self._error
        if self.transport.is_closing():
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        self.transport.write(data)

    async def drain(self) -> None:
        """Wait (up to the timeout) until the transport's buffer is below its high-water mark again."""
        writable = self._writable
        if writable is not None:
            expiry = self._loop.call_later(self.timeout, _expire, writable, "Timed out writing to the server")
            try:
                await writable
            finally:
                expiry.cancel()
        if self._error is not None:
            raise self._error

    async def read(self) -> SMTPResponse:
        """The server's next answer, in command order; raises on a timeout or a lost connection."""
        while not self._answers:
            if self._error is not None:
                raise self._error
            self._waiter = waiter = self._loop.create_future()
            expiry = self._loop.call_later(self.timeout, _expire, waiter, "Timed out waiting for an answer")
            try:
                await waiter
            finally:
                expiry.cancel()
                self._waiter = None
        return self._answers.popleft()

    def close(self) -> None:
        """Drop the connection (an unfinished transaction is discarded by the server)."""
        if not self.transport.is_closing():
            self.transport.close()

    # commands

    async def command(self, line: bytes) -> SMTPResponse:
        """Send one command line (without CRLF) and return its answer."""
        self.write(line + b"\r\n")
        return await self.read()

    async def transaction(
        self,
        sender: bytes,
        recipient: bytes,
        data: bytes,
        *,
        key: str,
        journal: SendJournal | None,
        eight_bit: bool = False,
    ) -> SMTPResponse:
        """Send ``data`` from ``sender`` to ``recipient`` (bare addresses); return the final 2xx answer.

        Raises ``SMTPSenderRefused``, ``SMTPRecipientRefused`` or
        ``SMTPDataError`` with the server's answer (the session then carries
        on after RSET), :class:`JournalError`, or aiosmtplib's disconnection
        and timeout errors (the session is then closed).
        """
        options = b""
        if self.size:
            options += b" SIZE=%d" % len(data)
        if eight_bit:
            options += b" BODY=8BITMIME"
        mail = b"MAIL FROM:<" + sender + b">" + options + b"\r\n"
        rcpt = b"RCPT TO:<" + recipient + b">\r\n"
        try:
            if self.pipelining:
                self.write(mail + rcpt + b"DATA\r\n")
                answers = [await self.read(), await self.read(), await self.read()]
            else:
                answers = []
                for line in (mail, rcpt, b"DATA\r\n"):
                    self.write(line)
                    answers.append(await self.read())
                    if answers[-1].code >= 400:
                        break
            await self._check_envelope(answers, sender, recipient)
            self.write(dot_stuffed(data))
            await self.drain()
            if journal is not None:
                try:
                    await journal.committing(key)
                except Exception as exc:
                    raise JournalError(f"journal: {type(exc).__name__}: {exc}") from exc
            self.write(_END_OF_DATA)  # the point of no return
            answer = await self.read()
        except aiosmtplib.SMTPResponseException:
            raise  # refused: the session carries on after RSET
        except BaseException:
            self.close()  # lost, timed out, journal failed, cancelled: never leave a half transaction
            raise
        if not 200 <= answer.code < 300:
            await self._reset()
            raise aiosmtplib.SMTPDataError(answer.code, answer.message)
        return answer

    async def _check_envelope(self, answers: list[SMTPResponse], sender: bytes, recipient: bytes) -> None:
        mail, *rest = answers
        rcpt = rest[0] if rest else None
        data = rest[1] if len(rest) > 1 else None
        if data is not None and data.code == 354 and (mail.code != 250 or rcpt is None or rcpt.code >= 300):
            self.close()  # in DATA without a valid envelope: a broken server, drop the transaction
            raise aiosmtplib.SMTPServerDisconnected("Server accepted DATA without a valid envelope")
        if mail.code != 250:
            await self._reset()
            raise aiosmtplib.SMTPSenderRefused(mail.code, mail.message, sender.decode())
        if rcpt is None or rcpt.code not in (250, 251):
            code, text = (rcpt.code, rcpt.message) if rcpt is not None else (mail.code, mail.message)
            await self._reset()
            raise aiosmtplib.SMTPRecipientRefused(code, text, recipient.decode())
        if data is None or data.code != 354:
            await self._reset()
            code, text = (data.code, data.message) if data is not None else (rcpt.code, rcpt.message)
            raise aiosmtplib.SMTPDataError(code, text)

    async def _reset(self) -> None:
        """RSET after a refused transaction so the session can carry the next message."""
        try:
            answer = await self.command(b"RSET")
        except (aiosmtplib.SMTPException, OSError):
            self.close()
            return
        if answer.code != 250:
            self.close()

    async def quit(self) -> None:
        """QUIT and close, politely; errors only close."""
        try:
            if self.ready():
                await self.command(b"QUIT")
        except (aiosmtplib.SMTPException, OSError):
            pass
        finally:
            self.close()


def _expire(waiter: asyncio.Future[Any], what: str) -> None:
    if not waiter.done():
        waiter.set_exception(aiosmtplib.SMTPTimeoutError(what))
