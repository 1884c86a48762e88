"""DKIM: every email signed over the headers RFC 8058 names, verified by dkimpy against the public key.

Through the bytes of a template, a real SMTP server on loopback (the bytes it
received) and a Maildir (LF line ends, no CR at all); ``List-Id`` with the
campaign's public name. The key pair is a real one made by openssl.
"""

from __future__ import annotations

import asyncio
import re
from email import policy
from email.parser import BytesParser
from typing import Any

import dkim
import pytest

from engine.channels import DkimSigner, OutgoingMessage
from engine.channels.maildir_email import MaildirEmailChannel
from engine.channels.mime_template import MimeTemplate, lf_line_ends
from engine.channels.smtp_email import SmtpEmailChannel, SmtpSettings
from engine.errors import HeaderInjectionError
from tests.channels.dkim_keys import key_pair
from tests.channels.smtp_servers import smtp_server

SENDER = "Магазин <news@shop.example>"
LIST_ID = "Предложения для постоянных покупателей <winback.shop.example>"
SIGNED_HEADERS = [
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "list-id",
    "mime-version",
    "content-type",
]
PARSER = BytesParser(policy=policy.default)


def _signer(selector: str = "crm") -> DkimSigner:
    return DkimSigner(selector=selector, domain="shop.example", private_key=key_pair().private_pem)


def _message(n: int = 1, **fields: Any) -> OutgoingMessage:
    values: dict[str, Any] = {
        "key": f"run3:{n}:0",
        "customer_id": n,
        "recipient": f"Анна <anna{n}@example.ru>",
        "subject": "Анна, мы кое-что для вас сохранили",
        "html": "<p>Скидка 15 % до 28 февраля.</p><p><a href='https://shop.example/'>Магазин</a></p>",
        "headers": {
            "List-Unsubscribe": "<https://crm.shop.example/u/u.1.winback?s=x>, <mailto:u@shop.example>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "List-Id": LIST_ID,
        },
        "installation": "ab" * 16,
    }
    values.update(fields)
    return OutgoingMessage(**values)


def _tags(data: bytes) -> dict[str, str]:
    header = PARSER.parsebytes(data)["DKIM-Signature"]
    return {
        k.strip(): re.sub(r"\s+", "", v)
        for k, v in (t.split("=", 1) for t in str(header).split(";") if t.strip())
    }


@pytest.mark.parametrize("eight_bit", [False, True])
def test_a_signed_message_verifies_against_the_public_key(eight_bit: bool) -> None:
    data = MimeTemplate(sender=SENDER, domain="shop.example", signer=_signer()).render(
        _message(), eight_bit=eight_bit
    )
    assert data.startswith(b"DKIM-Signature: ")
    assert dkim.verify(data, dnsfunc=key_pair().dns())
    tags = _tags(data)
    assert (tags["a"], tags["c"], tags["d"], tags["s"]) == (
        "rsa-sha256",
        "relaxed/relaxed",
        "shop.example",
        "crm",
    )
    assert tags["h"].split(":") == SIGNED_HEADERS


def test_a_changed_header_or_body_breaks_the_signature() -> None:
    data = MimeTemplate(sender=SENDER, domain="shop.example", signer=_signer()).render(_message())
    for before, after in (
        (b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"List-Unsubscribe-Post: nothing"),
        (b"To: ", b"To: x"),
        (b"winback.shop.example", b"other.shop.example"),
    ):
        assert before in data
        assert not dkim.verify(data.replace(before, after, 1), dnsfunc=key_pair().dns())
    # a header signed as absent cannot be added on the way
    message = _message(headers={"List-Unsubscribe": "<https://crm.shop.example/u/x>"})
    plain = MimeTemplate(sender=SENDER, domain="shop.example", signer=_signer()).render(message)
    assert dkim.verify(plain, dnsfunc=key_pair().dns())
    added = plain.replace(
        b"MIME-Version:", b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\nMIME-Version:"
    )
    assert not dkim.verify(added, dnsfunc=key_pair().dns())
    # the wrong selector's record does not verify it
    assert not dkim.verify(
        MimeTemplate(sender=SENDER, domain="shop.example", signer=_signer("other")).render(_message()),
        dnsfunc=key_pair().dns(),
    )


def test_list_id_carries_the_public_name_and_refuses_injection() -> None:
    data = MimeTemplate(sender=SENDER, domain="shop.example").render(_message())
    email = PARSER.parsebytes(data)
    assert email["List-Id"] == LIST_ID
    for bad in (
        "Name <winback.shop.example>\r\nBcc: all@example.com",
        "Name winback.shop.example",
        "Name <not an id>",
        "Name <a@b.example>",
    ):
        with pytest.raises(HeaderInjectionError):
            MimeTemplate(sender=SENDER, domain="shop.example").render(_message(headers={"List-Id": bad}))


class _Keeper:
    """An SMTP server that keeps every message's bytes as it received them."""

    def __init__(self) -> None:
        self.received: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(bytes(envelope.original_content or envelope.content))
        return "250 OK"


def test_mail_sent_over_smtp_arrives_signed_and_verifies() -> None:
    keeper = _Keeper()
    batch = [_message(n) for n in range(4)]
    with smtp_server(keeper) as port:  # type: ignore[arg-type]
        settings = SmtpSettings(host="127.0.0.1", port=port, timeout=5, concurrency=2)
        channel = SmtpEmailChannel(settings, sender=SENDER, domain="shop.example", signer=_signer())
        results = asyncio.run(channel.send(batch))
    assert all(r.status.value == "sent" for r in results)
    assert len(keeper.received) == 4
    for data in keeper.received:
        assert max(data) < 0x80  # 7-bit clean though the server offers 8BITMIME: no relay converts it
        assert data.startswith(b"DKIM-Signature: ")
        assert dkim.verify(data, dnsfunc=key_pair().dns())
        assert PARSER.parsebytes(data)["List-Id"] == LIST_ID


def test_a_maildir_file_has_lf_line_ends_and_its_signature_verifies(tmp_path) -> None:  # type: ignore[no-untyped-def]
    channel = MaildirEmailChannel(
        tmp_path / "maildir", sender=SENDER, domain="shop.example", signer=_signer()
    )
    results = asyncio.run(
        channel.send([_message(1), _message(2, html=None, text="Только текст\r\nвторая строка")])
    )
    assert all(r.status.value == "sent" for r in results)
    files = sorted((tmp_path / "maildir" / "new").iterdir())
    assert len(files) == 2
    for path in files:
        data = path.read_bytes()
        assert b"\r" not in data  # mutt shows no ^M
        assert b"\n\n" in data and data.startswith(b"DKIM-Signature: ")
        assert dkim.verify(data, dnsfunc=key_pair().dns())
        assert PARSER.parsebytes(data)["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_unsigned_maildir_files_have_lf_line_ends_too(tmp_path) -> None:  # type: ignore[no-untyped-def]
    channel = MaildirEmailChannel(tmp_path / "maildir", sender=SENDER, domain="shop.example")
    asyncio.run(channel.send([_message()]))
    [path] = list((tmp_path / "maildir" / "new").iterdir())
    data = path.read_bytes()
    assert b"\r" not in data and b"DKIM-Signature" not in data
    assert lf_line_ends(b"a\r\nb\r\n") == b"a\nb\n"
    assert PARSER.parsebytes(data)["Subject"] == "Анна, мы кое-что для вас сохранили"
