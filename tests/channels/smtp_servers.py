"""Real SMTP servers on loopback (aiosmtpd) for the tests: a recorder and servers that misbehave."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Recorder:
    """Accepts everything; keeps each message's Message-ID and recipients.

    ``data_answers`` / ``rcpt_answers`` are answers given, in turn, before
    accepting (``"451 ..."``, ``"550 ..."``, or ``"drop"`` to cut the
    connection in the middle of DATA).
    """

    def __init__(
        self, data_answers: list[str] | None = None, rcpt_answers: dict[str, str] | None = None
    ) -> None:
        self.data_answers = list(data_answers or [])
        self.rcpt_answers = dict(rcpt_answers or {})
        self.message_ids: list[str] = []
        self.recipients: list[str] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        answer = self.rcpt_answers.get(address)
        if answer:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_answers:
            answer = self.data_answers.pop(0)
            if answer == "drop":
                server.transport.close()
                return "421 closing"
            return answer
        self.message_ids.append(str(message_from_bytes(envelope.content)["Message-ID"]))
        self.recipients.extend(envelope.rcpt_tos)
        return "250 OK"


@contextmanager
def smtp_server(handler: Recorder) -> Iterator[int]:
    """Run ``handler`` on a loopback port for the duration of the block; yields the port."""
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()
