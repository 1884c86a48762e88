"""Delivery status notifications (RFC 3464): what a bounce message says, and how bad it is.

A DSN is a ``multipart/report; report-type=delivery-status`` message with a
``message/delivery-status`` part (a block of per-message fields, then one
block per recipient: ``Final-Recipient``, ``Action``, ``Status``,
``Diagnostic-Code``...) and the returned message or its headers
(``message/rfc822`` or ``text/rfc822-headers``), whose ``Message-ID`` names
the message that bounced.

Classification of one recipient:

* ``hard``: ``Action: failed`` with a permanent status (``5.x.x``): the
  address does not take mail;
* ``soft``: ``Action: delayed``, or ``failed`` with a transient status
  (``4.x.x``: mailbox full, server unreachable until the sender gave up);
* none: ``delivered``, ``relayed`` or ``expanded`` (a success report).

Anything else (a plain-text bounce, a complaint feedback report, a DSN
without recipients or without the returned headers) raises
:class:`NotADeliveryReport` with the reason.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser

from engine.errors import NotADeliveryReport

HARD = "hard"
SOFT = "soft"
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_BASIC = re.compile(r"\b([245])\d\d\b")


@dataclass(frozen=True)
class RecipientStatus:
    """What the reporting server says about one recipient."""

    recipient: str  # Final-Recipient (else Original-Recipient), lower-case
    action: str  # failed, delayed, delivered, relayed, expanded
    status: str  # the enhanced status code, e.g. 5.1.1
    diagnostic: str | None  # Diagnostic-Code, e.g. "smtp; 550 5.1.1 User unknown"
    last_attempt: dt.datetime | None

    @property
    def classification(self) -> str | None:
        """``hard``, ``soft`` or None (not a bounce: a success report)."""
        return classify(self.action, self.status)

    @property
    def detail(self) -> str:
        """Status and diagnostic, as recorded with the bounce."""
        return f"{self.status} {self.diagnostic}"[:2000] if self.diagnostic else self.status


@dataclass(frozen=True)
class DeliveryReport:
    """One DSN: its own Message-ID, the Message-ID of the message it reports on, and the recipients."""

    message_id: str | None
    original_message_id: str
    reporting_mta: str | None
    reported_at: dt.datetime | None  # the DSN's Date
    arrived_at: dt.datetime | None  # Arrival-Date: when the bounced message reached the reporting server
    recipients: tuple[RecipientStatus, ...]

    def occurred_at(self, recipient: RecipientStatus) -> dt.datetime | None:
        """When ``recipient`` bounced: its last attempt, else when the DSN was written, else arrival."""
        return recipient.last_attempt or self.reported_at or self.arrived_at


def classify(action: str, status: str) -> str | None:
    """``hard`` (failed 5.x.x), ``soft`` (delayed, failed 4.x.x) or None (delivered, relayed, expanded)."""
    action = action.strip().lower()
    if action == "delayed":
        return SOFT
    if action == "failed":
        return HARD if status.startswith("5") else SOFT
    return None


def parse_report(message: Message) -> DeliveryReport:
    """The DSN ``message`` read; :class:`NotADeliveryReport` when it is none or names no message."""
    content_type = message.get_content_type()
    report_type = (message.get_param("report-type", header="content-type") or "").__str__().lower()
    if content_type != "multipart/report" or report_type != "delivery-status":
        found = content_type + (f"; report-type={report_type}" if report_type else "")
        what = "a feedback report (a complaint)" if report_type == "feedback-report" else found
        raise NotADeliveryReport(
            f"not a delivery status notification ({what}; expected multipart/report; "
            "report-type=delivery-status)"
        )
    parts = _messages(message.get_payload())
    status_part = next((p for p in parts if p.get_content_type() == "message/delivery-status"), None)
    if status_part is None:
        raise NotADeliveryReport("a delivery report without a message/delivery-status part")
    blocks = _messages(status_part.get_payload())
    if len(blocks) < 2:
        raise NotADeliveryReport("the message/delivery-status part names no recipient")
    per_message, *per_recipient = blocks
    recipients = tuple(_recipient(block) for block in per_recipient)
    original = _original_message_id(parts)
    if original is None:
        raise NotADeliveryReport("no Message-ID of the bounced message (the returned headers are missing)")
    return DeliveryReport(
        message_id=_message_id(message.get("Message-ID")),
        original_message_id=original,
        reporting_mta=_value(per_message.get("Reporting-MTA")),
        reported_at=_date(message.get("Date")),
        arrived_at=_date(per_message.get("Arrival-Date")),
        recipients=recipients,
    )


def _messages(payload: object) -> list[Message]:
    """The sub-messages of a multipart payload (none for a text payload)."""
    return [item for item in payload if isinstance(item, Message)] if isinstance(payload, list) else []


def _recipient(block: Message) -> RecipientStatus:
    address = _value(block.get("Final-Recipient")) or _value(block.get("Original-Recipient"))
    action = _text(block.get("Action")).lower()
    if not address or not action:
        raise NotADeliveryReport("a recipient block without Final-Recipient or Action")
    diagnostic = _text(block.get("Diagnostic-Code")) or None
    status = _status(_text(block.get("Status")), diagnostic)
    if status is None:
        raise NotADeliveryReport(f"no valid Status for recipient {address}")
    return RecipientStatus(
        recipient=address.strip("<>").lower(),
        action=action,
        status=status,
        diagnostic=diagnostic,
        last_attempt=_date(block.get("Last-Attempt-Date")),
    )


def _status(text: str, diagnostic: str | None) -> str | None:
    """The enhanced status code, else one made from the diagnostic's basic SMTP code (550 -> 5.0.0)."""
    found = _STATUS.search(text) or _STATUS.search(diagnostic or "")
    if found:
        return ".".join(found.groups())
    basic = _BASIC.search(diagnostic or "")
    return f"{basic.group(1)}.0.0" if basic else None


def _original_message_id(parts: list[Message]) -> str | None:
    for part in parts:
        kind = part.get_content_type()
        if kind == "message/rfc822":
            returned = _messages(part.get_payload())
            if returned and returned[0].get("Message-ID"):
                return _message_id(returned[0].get("Message-ID"))
        elif kind == "text/rfc822-headers":
            payload = part.get_payload(decode=True)
            text = (
                payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(part.get_payload())
            )
            headers = HeaderParser().parsestr(text.lstrip())
            if headers.get("Message-ID"):
                return _message_id(headers.get("Message-ID"))
    return None


def _text(value: object) -> str:
    return " ".join(str(value).split()) if value is not None else ""


def _value(value: object) -> str | None:
    """The value after ``type;`` of a DSN field (``rfc822; anna@example.ru`` -> the address)."""
    text = _text(value)
    if not text:
        return None
    return text.split(";", 1)[1].strip() if ";" in text else text


def _message_id(value: object) -> str | None:
    text = _text(value)
    if not text:
        return None
    return text if text.startswith("<") else f"<{text.strip('<>')}>"


def _date(value: object) -> dt.datetime | None:
    text = _text(value)
    if not text:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
