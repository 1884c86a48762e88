"""An SMTP sink in a process of its own: accepts every message and appends its Message-ID to a file.

``python -m tests.outbox.smtp_sink PORT FILE`` serves on 127.0.0.1:PORT until
SIGTERM. A line is written (and flushed) before the server answers 250, so
the file holds every message the server accepted, whatever happens to the
client.
"""

from __future__ import annotations

import re
import signal
import sys
from typing import IO, Any

from aiosmtpd.controller import Controller

_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(<[^>\r\n]+>)", re.I | re.M)


class Sink:
    """Records the Message-ID of every message it accepts."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        head = envelope.content.split(b"\r\n\r\n", 1)[0]
        found = _MESSAGE_ID.search(head)
        self.out.write((found.group(1).decode() if found else "<none>") + "\n")
        self.out.flush()
        return "250 OK"


def main(argv: list[str]) -> None:
    port, path = int(argv[0]), argv[1]
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    with open(path, "a", encoding="ascii") as out:
        controller = Controller(Sink(out), hostname="127.0.0.1", port=port, server_hostname="sink.test")
        controller.start()
        print("ready", flush=True)
        signal.sigwait({signal.SIGTERM, signal.SIGINT})
        controller.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
