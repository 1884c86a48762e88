"""Channels: one protocol (:mod:`engine.channels.base`), one module per way of reaching a customer.

Only the memory channel and Maildir email exist so far; SMTP, call lists,
postal lists, meetings and SMS follow the same protocol.
"""

from __future__ import annotations

from engine.channels.base import Channel, DeliveryResult, DeliveryStatus, OutgoingMessage, message_id
from engine.channels.maildir_email import MaildirEmailChannel
from engine.channels.memory import MemoryChannel

__all__ = [
    "Channel",
    "DeliveryResult",
    "DeliveryStatus",
    "MaildirEmailChannel",
    "MemoryChannel",
    "OutgoingMessage",
    "message_id",
]
