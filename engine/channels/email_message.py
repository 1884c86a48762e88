"""Building the MIME of one email: multipart/alternative, deterministic Message-ID, no header injection."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate
from html.parser import HTMLParser

from engine.channels.base import OutgoingMessage, message_id


class HeaderInjectionError(ValueError):
    """A header value carries a line break: refused, never sent."""


class _TextExtractor(HTMLParser):
    """HTML to readable plain text: paragraphs and line breaks kept, links spelt out."""

    _BLOCKS = frozenset({"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "table"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._href: str | None = None
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script", "head"):
            self._skip += 1
        if tag in self._BLOCKS:
            self.parts.append("\n")
        if tag == "a":
            self._href = dict(attrs).get("href")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "head"):
            self._skip = max(0, self._skip - 1)
        if tag == "a" and self._href:
            self.parts.append(f" ({self._href})")
            self._href = None
        if tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(document: str) -> str:
    """A plain-text rendering of ``document`` for the text/plain part."""
    parser = _TextExtractor()
    parser.feed(document)
    text = html.unescape("".join(parser.parts))
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def _header(value: str, name: str) -> str:
    if "\r" in value or "\n" in value:
        raise HeaderInjectionError(f"{name} contains a line break: refused")
    return value


def build_email(
    message: OutgoingMessage, *, sender: str, domain: str, extra_headers: Mapping[str, str] | None = None
) -> EmailMessage:
    """The MIME message for ``message``: text and HTML alternatives, Message-ID from its key."""
    email = EmailMessage(policy=SMTP)
    email["From"] = _header(sender, "From")
    email["To"] = _header(message.recipient, "To")
    email["Subject"] = _header(message.subject or "", "Subject")
    email["Date"] = formatdate(usegmt=True)
    email["Message-ID"] = message_id(message.key, domain)
    for name, value in {**(extra_headers or {}), **message.headers}.items():
        email[_header(name, "header name")] = _header(value, name)
    text = message.text if message.text is not None else html_to_text(message.html or "")
    email.set_content(text)
    if message.html is not None:
        email.add_alternative(message.html, subtype="html")
    return email
