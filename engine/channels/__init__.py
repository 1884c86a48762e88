"""Channels: one protocol (:mod:`engine.channels.base`), one module per way of reaching a customer.

So far: memory, Maildir email and SMTP email; call lists, postal lists,
meetings and SMS follow the same protocol.
"""

from __future__ import annotations

from engine.channels.base import Channel, DeliveryResult, DeliveryStatus, OutgoingMessage, message_id
from engine.channels.maildir_email import MaildirEmailChannel
from engine.channels.memory import MemoryChannel
from engine.channels.smtp_email import SmtpEmailChannel, SmtpSettings

__all__ = [
    "Channel",
    "DeliveryResult",
    "DeliveryStatus",
    "MaildirEmailChannel",
    "MemoryChannel",
    "OutgoingMessage",
    "SmtpEmailChannel",
    "SmtpSettings",
    "message_id",
]
