"""A scripted SMTP server on loopback: PIPELINING, and faults at exact points of a transaction.

aiosmtpd announces no PIPELINING and only misbehaves after the whole DATA;
this server can also cut the connection after a given number of bytes of
the message (before its final ``.``), stay silent after it, or answer with
multi-line replies.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from tests.channels.smtp_servers import free_port


@dataclass
class Script:
    """How the server behaves; ``received`` collects the messages it accepted (dot-unstuffed)."""

    pipelining: bool = True
    rcpt_answers: dict[str, str] = field(default_factory=dict)  # address -> "550 ..." (may be multi-line)
    final_answers: list[str] = field(default_factory=list)  # in turn, for the answer after the final "."
    drop_after_bytes: int | None = None  # cut the connection after this much of the first message's data
    stall_after_bytes: int | None = None  # stop reading (connection open) after this much of the data
    silent_after_data: bool = False  # never answer after the final "."
    received: list[bytes] = field(default_factory=list)
    commands: list[bytes] = field(default_factory=list)
    sessions: int = 0


def _reply(text: str) -> bytes:
    """``text`` with ``\\n`` between lines as an SMTP reply (``250-a``, ``250 b``)."""
    code, lines = text[:3], text[4:].split("\n")
    return b"".join(
        f"{code}{'-' if n < len(lines) - 1 else ' '}{line}\r\n".encode() for n, line in enumerate(lines)
    )


async def _session(script: Script, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    script.sessions += 1
    writer.write(b"220 scripted ESMTP\r\n")
    recipients: list[str] = []
    try:
        while line := await reader.readline():
            script.commands.append(line.rstrip())
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                extensions = ["scripted", "SIZE 100000000", "8BITMIME"]
                if script.pipelining:
                    extensions.append("PIPELINING")
                writer.write(_reply("250 " + "\n".join(extensions)))
            elif verb == b"MAIL":
                recipients = []
                writer.write(b"250 2.1.0 ok\r\n")
            elif verb == b"RCPT":
                address = line.decode().split("<", 1)[1].split(">", 1)[0]
                answer = script.rcpt_answers.get(address)
                if answer:
                    writer.write(_reply(answer))
                else:
                    recipients.append(address)
                    writer.write(b"250 2.1.5 ok\r\n")
            elif verb == b"DATA":
                if not recipients:
                    writer.write(b"554 5.5.1 no valid recipients\r\n")
                    continue
                writer.write(b"354 go ahead\r\n")
                if script.stall_after_bytes is not None:
                    await reader.readexactly(script.stall_after_bytes)
                    await asyncio.sleep(3600)  # until the server stops
                if script.drop_after_bytes is not None:
                    await reader.readexactly(script.drop_after_bytes)
                    script.drop_after_bytes = None
                    writer.transport.abort()
                    return
                lines = []
                while (content := await reader.readline()) != b".\r\n":
                    if not content:
                        return  # the client went away: the unfinished message is dropped
                    lines.append(content[1:] if content.startswith(b"..") else content)
                if script.silent_after_data:
                    await reader.read()  # until the client gives up
                    return
                script.received.append(b"".join(lines))
                answer = script.final_answers.pop(0) if script.final_answers else "250 2.0.0 queued"
                writer.write(_reply(answer))
            elif verb == b"RSET":
                recipients = []
                writer.write(b"250 2.0.0 ok\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 2.0.0 bye\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"502 5.5.2 not implemented\r\n")
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


@contextmanager
def scripted_server(script: Script) -> Iterator[int]:
    """Run ``script`` on a loopback port in a thread of its own for the block; yields the port."""
    port = free_port()
    loop = asyncio.new_event_loop()
    started = threading.Event()

    async def serve() -> asyncio.Server:
        return await asyncio.start_server(lambda r, w: _session(script, r, w), "127.0.0.1", port, limit=2**20)

    def run() -> None:
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(serve())
        started.set()
        loop.run_forever()
        server.close()
        sessions = asyncio.all_tasks(loop)
        for task in sessions:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*sessions, return_exceptions=True))
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield port
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
