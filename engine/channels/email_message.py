"""The MIME of one email: multipart/alternative, deterministic Message-ID, no header injection.

:func:`build_email` builds a stdlib :class:`~email.message.EmailMessage`:
the reference, easy to read and to inspect, but a few milliseconds a
message. The channels send the same email as bytes through
:class:`engine.channels.mime_template.MimeTemplate` (or
:func:`engine.channels.mime_template.email_bytes`), which builds what does
not vary once and is tested to read back as what :func:`build_email` gives.
:func:`html_to_text` makes the text part of an HTML email.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate

from engine.channels.base import OutgoingMessage, message_id
from engine.errors import HeaderInjectionError

_ATTRIBUTES = r"""(?:[^>"']++|"[^"]*+"|'[^']*+')*+"""  # a tag's attributes, quoted values may hold ">"
_LEFT_OUT = re.compile(  # comments, doctype, and the elements whose text is not part of the message
    rf"<!--.*?-->|<[!?][^>]*>|<(head|style|script)\b{_ATTRIBUTES}>.*?(?:</\1\s*>|\Z)", re.S | re.I
)
_LINK = re.compile(rf"<a\b({_ATTRIBUTES})>(.*?)</a\s*>", re.S | re.I)
_ATTRIBUTE = re.compile(r"""([^\s=/>]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s>]*))?""")
_BLOCK = r"</?(?:p|div|br|tr|li|h[1-4]|table)\b"  # a line break where these start and end
_EMPTY_BLOCK = re.compile(rf"{_BLOCK}{_ATTRIBUTES}(?<=/)>", re.I)  # <br/>: starts and ends
_BLOCK_TAG = re.compile(rf"{_BLOCK}{_ATTRIBUTES}>", re.I)
_TAG = re.compile(rf"</?[a-zA-Z][^\t\n\r\f />\x00]*+{_ATTRIBUTES}>")
_SPACES = re.compile("  +")
_BLANK_LINES = re.compile(r"\n{3,}")


def _spelt_out(link: re.Match[str]) -> str:
    """A link's text followed by its address: ``Shop (https://...)``."""
    href = None
    for attribute in _ATTRIBUTE.finditer(link.group(1)):
        if attribute.group(1).lower() == "href":
            href = attribute.group(2)
            if href is not None and len(href) > 1 and href[0] in "\"'" and href[0] == href[-1]:
                href = href[1:-1]
    return f"{link.group(2)} ({href.replace('<', '&lt;')})" if href else link.group(2)


def html_to_text(document: str) -> str:
    """A plain-text rendering of ``document`` for the text/plain part.

    Paragraphs, divisions, table rows, list items and headings start new
    lines, links are spelt out after their text (``Shop (https://...)``),
    the head, styles and scripts are left out, runs of spaces and blank
    lines are collapsed. A few passes of regular expressions, several times
    faster than walking the document with an ``HTMLParser``.
    """
    text = _LINK.sub(_spelt_out, _LEFT_OUT.sub("", document))
    text = _TAG.sub("", _BLOCK_TAG.sub("\n", _EMPTY_BLOCK.sub("\n\n", text)))
    text = html.unescape(html.unescape(text)).replace("\t", " ")  # entities, also as written in attributes
    lines = [line.strip() for line in _SPACES.sub(" ", text).splitlines()]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip() + "\n"


def _header(value: str, name: str) -> str:
    if "\r" in value or "\n" in value:
        raise HeaderInjectionError(f"{name} contains a line break: refused")
    return value


def build_email(
    message: OutgoingMessage, *, sender: str, domain: str, extra_headers: Mapping[str, str] | None = None
) -> EmailMessage:
    """The MIME message for ``message``: text and HTML alternatives, Message-ID from its key and installation.

    Raises :class:`HeaderInjectionError` when a header value holds a line break.
    """
    email = EmailMessage(policy=SMTP)
    email["From"] = _header(sender, "From")
    email["To"] = _header(message.recipient, "To")
    email["Subject"] = _header(message.subject or "", "Subject")
    email["Date"] = formatdate(usegmt=True)
    email["Message-ID"] = message_id(message.key, domain, installation=message.installation)
    for name, value in {**(extra_headers or {}), **message.headers}.items():
        email[_header(name, "header name")] = _header(value, name)
    text = message.text if message.text is not None else html_to_text(message.html or "")
    email.set_content(text)
    if message.html is not None:
        email.add_alternative(message.html, subtype="html")
    return email
