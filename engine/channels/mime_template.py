"""The fast MIME path: one email skeleton per sender, personalised per message as bytes.

Building a stdlib :class:`~email.message.EmailMessage` and flattening it
costs about 2 ms a message, most of it in header parsing and folding. A
:class:`MimeTemplate` does that work once: the From line and other headers
that do not vary, the boundary and the part headers are bytes kept from the
start. Each message then only adds what differs: To, Subject, Date,
Message-ID, its own headers (List-Unsubscribe...) and the two bodies.

The output is what :func:`engine.channels.email_message.build_email` would
give once parsed (the tests check it with the stdlib parser), 7-bit clean
so any server takes it without 8BITMIME:

* header values that are not plain printable ASCII (a Cyrillic subject or
  display name, leading or doubled spaces, text that looks like an encoded
  word) become RFC 2047 encoded words, UTF-8 in base64;
* each body is sent as is when it is short-lined printable ASCII, else
  quoted-printable when it is mostly ASCII (HTML markup) and base64 when it
  is mostly not (Russian text);
* lines end with CRLF, the form SMTP and RFC 5322 expect (a Maildir file
  takes them as LF: :func:`lf_line_ends`);
* ``List-Id`` is a structured header: ``Public name <key.domain>``, the
  phrase encoded as a display name is, the id checked to be a dot-atom;
* with a :class:`~engine.channels.dkim_signing.DkimSigner` the final bytes
  are DKIM-signed (the signature header goes first);
* a line break in any header value raises :class:`HeaderInjectionError`, as
  does a header that would replace one the template writes itself, or a
  recipient that would name more than one address.
"""

from __future__ import annotations

import binascii
import functools
import re
import secrets
import time
from collections.abc import Mapping
from email.utils import formatdate
from typing import TYPE_CHECKING

from engine.channels.base import OutgoingMessage, message_id
from engine.channels.email_message import html_to_text
from engine.errors import HeaderInjectionError

if TYPE_CHECKING:
    from engine.channels.dkim_signing import DkimSigner

CRLF = b"\r\n"
MAX_LINE = 78  # RFC 5322's recommended line length; encoded words stay within 76
_ENCODED_WORD_OVERHEAD = len("=?utf-8?b??=")
_CONTINUATION_BYTES = (76 - 1 - _ENCODED_WORD_OVERHEAD) // 4 * 3  # raw bytes per folded encoded word

# Headers the template writes itself: a message cannot replace or repeat them.
_OWN_HEADERS = frozenset(
    {"from", "to", "subject", "date", "message-id"}
    | {"mime-version", "content-type", "content-transfer-encoding"}
)
_HEADER_NAME = re.compile(r"[!-9;-~]+")  # printable ASCII without the colon (RFC 5322 ftext)
_PLAIN_VALUE = re.compile(r"[!-~]+(?: [!-~]+)*")  # printable ASCII words, single spaces
_ATOM_PHRASE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?: [A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)+")
_ADDRESS = re.compile(r"[^\s<>\"(),;:\[\]\\]+@[^\s<>\"(),;:\[\]\\@]+")
_CONTROLS = bytes([*range(0x09), *range(0x0B, 0x20), 0x7F])  # other than tab and line feed


def _check(value: str, name: str) -> str:
    if "\r" in value or "\n" in value:
        raise HeaderInjectionError(f"{name} contains a line break: refused")
    return value


def encoded_words(value: str, first_line_room: int) -> list[bytes]:
    """``value`` as RFC 2047 encoded words (UTF-8, base64), split between characters.

    The first word fits in ``first_line_room`` characters where possible,
    the others on continuation lines of at most 76.
    """
    data = value.encode("utf-8")
    words = []
    start = 0
    limit = max(6, (first_line_room - _ENCODED_WORD_OVERHEAD) // 4 * 3)
    while start < len(data):
        end = min(start + limit, len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:  # never split a character
            end -= 1
        words.append(b"=?utf-8?b?" + binascii.b2a_base64(data[start:end], newline=False) + b"?=")
        start = end
        limit = _CONTINUATION_BYTES
    return words


def _fold_plain(line: str) -> bytes:
    """A header line of printable ASCII words, folded before spaces to keep lines near 78."""
    if len(line) <= MAX_LINE:
        return line.encode("ascii") + CRLF
    out, current = [], ""
    for word in line.split(" "):
        if current and len(current) + 1 + len(word) > MAX_LINE:
            out.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    out.append(current)
    return "\r\n ".join(out).encode("ascii") + CRLF


def header_line(name: str, value: str) -> bytes:
    """One unstructured header, ``Name: value`` with CRLF, encoded and folded as needed."""
    _check(value, name)
    if not value or (_PLAIN_VALUE.fullmatch(value) and "=?" not in value):
        return _fold_plain(f"{name}: {value}")
    words = encoded_words(value, 76 - len(name) - 2)
    return name.encode("ascii") + b": " + b"\r\n ".join(words) + CRLF


def mailbox(value: str, name: str = "To") -> tuple[str, str]:
    """``(display name, address)`` of ``addr`` or ``Display Name <addr>``; one plain address or refused."""
    _check(value, name)
    value = value.strip()
    display, address = "", value
    if value.endswith(">") and "<" in value:
        cut = value.rindex("<")
        display, address = value[:cut].strip(), value[cut + 1 : -1].strip()
        if len(display) >= 2 and display[0] == display[-1] == '"':
            display = display[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if not _ADDRESS.fullmatch(address) or "<" in display or ">" in display:
        raise HeaderInjectionError(f"{name} is not one plain address: {value!r} refused")
    return display, address


def address_line(name: str, value: str) -> bytes:
    """An address header (From, To) for one mailbox: ``addr`` or ``Display Name <addr>``.

    Runs of white space in the display name become one space, as a reader
    of the header would show them anyway.
    """
    display, address = mailbox(value, name)
    if not display.strip():
        return f"{name}: {address}".encode() + CRLF
    return _phrase_and_angle(name, display, address)


def _phrase_and_angle(name: str, display: str, inside: str) -> bytes:
    """``Name: phrase <inside>``: the phrase as an atom, a quoted string or encoded words."""
    display = " ".join(display.split())
    if not display:
        return f"{name}: <{inside}>".encode() + CRLF
    if _ATOM_PHRASE.fullmatch(display) and "=?" not in display:
        phrase = display.encode("ascii")
    elif _PLAIN_VALUE.fullmatch(display) and "=?" not in display:
        phrase = b'"' + display.replace("\\", "\\\\").replace('"', '\\"').encode("ascii") + b'"'
    else:
        phrase = b"\r\n ".join(encoded_words(display, 76 - len(name) - 2))
    last_line = phrase.rsplit(CRLF, 1)[-1] if CRLF in phrase else name.encode() + b": " + phrase
    separator = b" <" if len(last_line) + len(inside) + 3 <= MAX_LINE else b"\r\n <"
    return name.encode("ascii") + b": " + phrase + separator + inside.encode() + b">" + CRLF


def list_id_line(value: str) -> bytes:
    """``List-Id: Public name <label.domain>`` (RFC 2919): the id a dot-atom, the phrase encoded as needed."""
    _check(value, "List-Id")
    value = value.strip()
    if not value.endswith(">") or "<" not in value:
        raise HeaderInjectionError(f"List-Id is not 'name <id>': {value!r} refused")
    cut = value.rindex("<")
    display, inside = value[:cut].strip(), value[cut + 1 : -1].strip()
    if not _DOT_ATOM.fullmatch(inside) or "<" in display or ">" in display:
        raise HeaderInjectionError(f"List-Id is not 'name <label.domain>': {value!r} refused")
    return _phrase_and_angle("List-Id", display, inside)


def lf_line_ends(data: bytes) -> bytes:
    """A message's bytes with LF line ends, as a Maildir file keeps them (mail clients read LF there)."""
    return data.replace(CRLF, b"\n")


def _line(name: str, value: str) -> bytes:
    """One header a message sets: List-Id structured, the others unstructured."""
    return list_id_line(value) if name.lower() == "list-id" else header_line(name, value)


def header_name(name: str) -> str:
    """A header name a message may set, or :class:`HeaderInjectionError`."""
    if not _HEADER_NAME.fullmatch(name):
        raise HeaderInjectionError(f"header name {name!r} is not allowed: refused")
    if name.lower() in _OWN_HEADERS:
        raise HeaderInjectionError(f"{name} is written by the engine and cannot be set by a message: refused")
    return name


def _base64_lines(data: bytes) -> bytes:
    encoded = binascii.b2a_base64(data, newline=False)
    return CRLF.join([encoded[i : i + 76] for i in range(0, len(encoded), 76)]) + CRLF


def encode_body(text: str, boundary: bytes, *, eight_bit: bool = False) -> tuple[bytes, bytes]:
    """``(Content-Transfer-Encoding, body)`` of a text part, lines ending with CRLF.

    Line breaks are normalised and a final one added, as the stdlib does.
    With ``eight_bit`` (the server announced 8BITMIME; files), UTF-8 text
    with lines of at most 998 bytes goes as it is.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.endswith("\n"):
        text += "\n"
    data = text.encode("utf-8")
    ascii_only = len(data) == len(text)
    if (
        (ascii_only or eight_bit)
        and len(data.translate(None, _CONTROLS)) == len(data)  # faster than a regex search
        and max(map(len, data.split(b"\n"))) <= 998
        and b"--" + boundary not in data
    ):
        return (b"7bit" if ascii_only else b"8bit"), data.replace(b"\n", CRLF)
    # quoted-printable escapes "=", so the boundary can never appear in the encoded form;
    # it takes 3 characters for a non-ASCII byte, base64 4/3 for every byte
    non_ascii_bytes = 2 * (len(data) - len(text))  # about: Cyrillic takes two bytes a character
    if non_ascii_bytes * 6 < len(data):
        return b"quoted-printable", binascii.b2a_qp(data, istext=True).replace(b"\n", CRLF)
    return b"base64", _base64_lines(data.replace(b"\n", CRLF))


class MimeTemplate:
    """The emails of one sender (and domain), built once and personalised per message as bytes.

    ``extra_headers`` go into every message (a message's own ``headers``
    win over them by name). ``render`` gives the bytes of one message:
    ``multipart/alternative`` with a text and an HTML part, or a single text
    part when the message has no HTML; the text part is made from the HTML
    when the message has none.
    """

    def __init__(
        self,
        *,
        sender: str,
        domain: str,
        extra_headers: Mapping[str, str] | None = None,
        boundary: str | None = None,
        signer: DkimSigner | None = None,
    ) -> None:
        self.sender = sender
        self.domain = domain
        self.signer = signer
        self.extra_headers = dict(extra_headers or {})
        self._from = address_line("From", sender)
        self._extra = b"".join(_line(header_name(k), v) for k, v in self.extra_headers.items())
        # random per template: customer data cannot guess it, and bodies are checked against it
        self.boundary = (boundary or f"=_crm_{secrets.token_hex(12)}").encode("ascii")
        self._multipart = (
            b'MIME-Version: 1.0\r\nContent-Type: multipart/alternative;\r\n boundary="'
            + self.boundary
            + b'"\r\n\r\n'
        )
        self._text_part = b'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: '
        # the CRLF before a delimiter belongs to the delimiter, not to the body before it
        self._html_part = (
            b"\r\n--"
            + self.boundary
            + b'\r\nContent-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: '
        )
        self._end = b"\r\n--" + self.boundary + b"--\r\n"
        self._date_second = -1
        self._date = b""

    def _date_line(self) -> bytes:
        now = int(time.time())
        if now != self._date_second:  # formatting a date costs more than the rest of the headers
            self._date_second = now
            self._date = b"Date: " + formatdate(now, usegmt=True).encode("ascii") + CRLF
        return self._date

    def _headers(self, message: OutgoingMessage) -> bytes:
        if not message.headers:
            return self._extra
        merged = {**self.extra_headers, **message.headers}
        return b"".join(_line(header_name(k), v) for k, v in merged.items())

    def render(self, message: OutgoingMessage, *, eight_bit: bool = False) -> bytes:
        """The bytes of ``message``, ready for SMTP (CRLF line ends), DKIM-signed when the template signs.

        ``eight_bit`` lets UTF-8 bodies go unencoded (for a server that
        announced 8BITMIME, or a file); headers are 7-bit in every case.
        """
        data = self._render(message, eight_bit=eight_bit)
        return self.signer.sign(data) if self.signer is not None else data

    def _render(self, message: OutgoingMessage, *, eight_bit: bool) -> bytes:
        head = [
            self._from,
            address_line("To", message.recipient),
            header_line("Subject", message.subject or ""),
            self._date_line(),
            b"Message-ID: "
            + message_id(message.key, self.domain, installation=message.installation).encode("ascii")
            + CRLF,
            self._headers(message),
        ]
        text = message.text if message.text is not None else html_to_text(message.html or "")
        text_cte, text_body = encode_body(text, self.boundary, eight_bit=eight_bit)
        if message.html is None:
            head += [b"MIME-Version: 1.0\r\n", self._text_part, text_cte, b"\r\n\r\n", text_body]
            return b"".join(head)
        html_cte, html_body = encode_body(message.html, self.boundary, eight_bit=eight_bit)
        head += [
            self._multipart,
            b"--",
            self.boundary,
            b"\r\n",
            self._text_part,
            text_cte,
            b"\r\n\r\n",
            text_body,
            self._html_part,
            html_cte,
            b"\r\n\r\n",
            html_body,
            self._end,
        ]
        return b"".join(head)


@functools.lru_cache(maxsize=64)
def _template(sender: str, domain: str, extra_headers: tuple[tuple[str, str], ...]) -> MimeTemplate:
    return MimeTemplate(sender=sender, domain=domain, extra_headers=dict(extra_headers))


def email_bytes(
    message: OutgoingMessage, *, sender: str, domain: str, extra_headers: Mapping[str, str] | None = None
) -> bytes:
    """:func:`~engine.channels.email_message.build_email` as bytes, through a template kept per sender.

    Raises :class:`HeaderInjectionError` as ``build_email`` does (and also for
    a header the template writes itself, or a recipient with two addresses).
    """
    return _template(sender, domain, tuple((extra_headers or {}).items())).render(message)
