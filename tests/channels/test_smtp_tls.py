"""SMTP over STARTTLS and implicit TLS, with login: the session carries on over the secured connection."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from engine.channels import DeliveryStatus, OutgoingMessage, message_id
from engine.channels.smtp_email import SmtpEmailChannel, SmtpSettings
from tests.channels.smtp_servers import Recorder, free_port

pytestmark = [
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make a certificate"),
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
    command += ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"]
    command += ["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"]
    subprocess.run(
        command,
        check=True,
        capture_output=True,
    )
    return cert, key


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"shop", b"s3cret")
    return AuthResult(success=ok)


@contextmanager
def tls_server(recorder: Recorder, certificate: tuple[Path, Path], *, implicit: bool) -> Iterator[int]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    port = free_port()
    options: dict[str, Any] = {"authenticator": _authenticate, "auth_required": True}
    if implicit:  # aiosmtpd counts only STARTTLS as TLS for AUTH: allow it on the TLS connection
        options["auth_require_tls"] = False
        controller = Controller(recorder, hostname="127.0.0.1", port=port, ssl_context=context, **options)
    else:
        controller = Controller(
            recorder, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True, **options
        )
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def _batch(count: int) -> list[OutgoingMessage]:
    return [
        OutgoingMessage(key=f"run4:{n}:0", customer_id=0, recipient=f"c{n}@example.ru", subject="Да", text="")
        for n in range(count)
    ]


class Journal:
    def __init__(self) -> None:
        self.keys: list[str] = []

    async def committing(self, key: str) -> None:
        self.keys.append(key)


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "tls"])
def test_secured_and_logged_in_every_message_is_delivered(
    certificate: tuple[Path, Path], implicit: bool
) -> None:
    recorder, journal = Recorder(), Journal()
    with tls_server(recorder, certificate, implicit=implicit) as port:
        settings = SmtpSettings(
            host="127.0.0.1",
            port=port,
            starttls=not implicit,
            use_tls=implicit,
            username="shop",
            password="s3cret",
            timeout=5,
            concurrency=2,
            cert_bundle=str(certificate[0]),
        )
        channel = SmtpEmailChannel(settings, sender="news@shop.example", domain="shop.example")
        results = asyncio.run(channel.send(_batch(6), journal=journal))
    assert [r.status for r in results] == [DeliveryStatus.SENT] * 6
    assert sorted(recorder.message_ids) == sorted(
        message_id(f"run4:{n}:0", "shop.example", installation="") for n in range(6)
    )
    assert sorted(journal.keys) == [f"run4:{n}:0" for n in range(6)]


def test_a_wrong_password_is_a_temporary_failure(certificate: tuple[Path, Path]) -> None:
    recorder = Recorder()
    with tls_server(recorder, certificate, implicit=False) as port:
        settings = SmtpSettings(
            host="127.0.0.1",
            port=port,
            starttls=True,
            username="shop",
            password="wrong",
            timeout=2,
            concurrency=1,
            cert_bundle=str(certificate[0]),
        )
        channel = SmtpEmailChannel(settings, sender="news@shop.example", domain="shop.example")
        [result] = asyncio.run(channel.send(_batch(1)))
    assert result.status is DeliveryStatus.TEMPORARY_FAILURE and recorder.message_ids == []


def test_an_untrusted_certificate_is_refused(certificate: tuple[Path, Path]) -> None:
    recorder = Recorder()
    with tls_server(recorder, certificate, implicit=True) as port:
        settings = SmtpSettings(host="127.0.0.1", port=port, use_tls=True, timeout=5, concurrency=1)
        channel = SmtpEmailChannel(settings, sender="news@shop.example", domain="shop.example")
        [result] = asyncio.run(channel.send(_batch(1)))
    assert result.status is DeliveryStatus.TEMPORARY_FAILURE and recorder.message_ids == []
