"""Channels: one protocol (:mod:`engine.channels.base`), one module per way of reaching a customer.

So far: memory, Maildir email, SMTP email, call lists and SMS through an
HTTP gateway; postal lists and meetings will follow the same protocol.
"""

from __future__ import annotations

from engine.channels.base import Channel, DeliveryResult, DeliveryStatus, OutgoingMessage, message_id
from engine.channels.call_list import CallListChannel, schedule_calls
from engine.channels.maildir_email import MaildirEmailChannel
from engine.channels.memory import MemoryChannel
from engine.channels.sms_webhook import SmsGatewaySettings, SmsWebhookChannel
from engine.channels.smtp_email import SmtpEmailChannel, SmtpSettings

__all__ = [
    "CallListChannel",
    "Channel",
    "DeliveryResult",
    "DeliveryStatus",
    "MaildirEmailChannel",
    "MemoryChannel",
    "OutgoingMessage",
    "SmsGatewaySettings",
    "SmsWebhookChannel",
    "SmtpEmailChannel",
    "SmtpSettings",
    "message_id",
    "schedule_calls",
]
