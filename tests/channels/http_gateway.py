"""A real HTTP SMS gateway on loopback for the tests, with scripted answers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Gateway:
    """Records each JSON body it accepts; ``answers`` gives a phone number another (status, body)."""

    def __init__(self, answers: dict[str, tuple[int, str]] | None = None) -> None:
        self.answers = dict(answers or {})
        self.received: list[dict[str, Any]] = []
        self.lock = threading.Lock()


@contextmanager
def http_gateway(gateway: Gateway) -> Iterator[str]:
    """Serve ``gateway`` on a loopback port; yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status, text = gateway.answers.get(
                body["to"], (200, json.dumps({"message_id": f"gw-{body['id']}"}))
            )
            if status == 200:
                with gateway.lock:
                    gateway.received.append({**body, "authorization": self.headers.get("Authorization")})
            payload = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/sms"
    finally:
        server.shutdown()
        server.server_close()
