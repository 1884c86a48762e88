"""Channels: one protocol (:mod:`engine.channels.base`), one module per way of reaching a customer.

Memory, Maildir email, SMTP email (both DKIM-signed when configured), call lists, postal lists, meeting task
lists and SMS through an HTTP gateway.
"""

from __future__ import annotations

from engine.channels.base import (
    Channel,
    DeliveryResult,
    DeliveryStatus,
    OutgoingMessage,
    SendJournal,
    message_id,
)
from engine.channels.call_list import CallListChannel, schedule_calls
from engine.channels.dkim_signing import DkimSigner
from engine.channels.email_message import html_to_text
from engine.channels.maildir_email import MaildirEmailChannel
from engine.channels.meeting_list import MeetingListChannel
from engine.channels.memory import MemoryChannel
from engine.channels.postal_list import PostalListChannel
from engine.channels.registry import (
    LIST_CHANNELS,
    business_day,
    check_channel_name,
    delivers_on_send,
    dkim_signer,
    open_channel,
)
from engine.channels.sms_webhook import SmsGatewaySettings, SmsWebhookChannel
from engine.channels.smtp_email import SmtpEmailChannel, SmtpSettings
from engine.channels.unit_costs import UnitCosts, named_in_prices

__all__ = [
    "LIST_CHANNELS",
    "CallListChannel",
    "Channel",
    "DeliveryResult",
    "DeliveryStatus",
    "DkimSigner",
    "MaildirEmailChannel",
    "MeetingListChannel",
    "MemoryChannel",
    "OutgoingMessage",
    "PostalListChannel",
    "SendJournal",
    "SmsGatewaySettings",
    "SmsWebhookChannel",
    "SmtpEmailChannel",
    "SmtpSettings",
    "UnitCosts",
    "business_day",
    "check_channel_name",
    "delivers_on_send",
    "dkim_signer",
    "html_to_text",
    "message_id",
    "named_in_prices",
    "open_channel",
    "schedule_calls",
]
