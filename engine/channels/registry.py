"""The one place that turns channel names and ``[channels.*]`` settings into channel instances.

Everything above this module takes instances; config files and commands name
channels. ``open_channel("email", config)`` gives a Maildir or an SMTP
channel as ``[channels.email].transport`` says; list channels (calls,
letters, meetings) write one set of files per local day, so they are opened
for a ``day``. An unknown name raises an error that lists the known ones.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path
from typing import TYPE_CHECKING

from engine.channels.base import Channel
from engine.channels.call_list import CallListChannel
from engine.channels.dkim_signing import DkimSigner
from engine.channels.maildir_email import MaildirEmailChannel
from engine.channels.meeting_list import MeetingListChannel
from engine.channels.postal_list import PostalListChannel
from engine.channels.sms_webhook import SmsGatewaySettings, SmsWebhookChannel
from engine.channels.smtp_email import SmtpEmailChannel, SmtpSettings
from engine.errors import ConfigValueError, NotFoundError
from engine.settings import CHANNEL_NAMES

if TYPE_CHECKING:
    from engine.config import Config

#: channels that write files people work through, one set of files per local day
LIST_CHANNELS: tuple[str, ...] = ("call", "meeting", "post")


def check_channel_name(name: str) -> str:
    """``name`` if it names a channel, else :class:`NotFoundError` listing the known ones."""
    if name not in CHANNEL_NAMES:
        raise NotFoundError("channel", name, list(CHANNEL_NAMES))
    return name


def business_day(config: Config, now: dt.datetime) -> dt.date:
    """The date of ``now`` in the business time zone: the day a list file belongs to."""
    return now.astimezone(zoneinfo.ZoneInfo(config.settings.engine.timezone)).date()


def _beside_config(config: Config, folder: str) -> Path:
    path = Path(folder).expanduser()
    return path if path.is_absolute() else config.path.parent / path


def dkim_signer(config: Config) -> DkimSigner | None:
    """The signer ``[channels.email.dkim]`` sets up, or None when emails go unsigned.

    The key was checked when the config was loaded; one that went missing
    since is a :class:`ConfigValueError` naming the setting.
    """
    email = config.settings.channels.email
    if email.dkim is None:
        return None
    try:
        key = email.dkim.read_key(config.path.parent)
    except ValueError as exc:
        field = "private_key" if email.dkim.private_key is not None else "key_file"
        raise config.settings.error(f"channels.email.dkim.{field}", str(exc)) from exc
    return DkimSigner(selector=email.dkim.selector, domain=email.dkim_domain, private_key=key)


def open_channel(name: str, config: Config, *, day: dt.date | None = None) -> Channel:
    """A new instance of channel ``name`` as ``config`` sets it up.

    ``day`` is the local day list channels write their files for (default:
    today in the business time zone); the other channels ignore it.
    """
    channels = config.settings.channels
    check_channel_name(name)
    if name in LIST_CHANNELS and day is None:
        day = business_day(config, dt.datetime.now(dt.UTC))
    if name == "email":
        email = channels.email
        signer = dkim_signer(config)
        if email.transport == "maildir":
            return MaildirEmailChannel(
                _beside_config(config, email.maildir), sender=email.sender, domain=email.domain, signer=signer
            )
        smtp = email.smtp
        settings = SmtpSettings(
            host=smtp.host,
            port=smtp.port,
            starttls=smtp.starttls,
            use_tls=smtp.tls,
            username=smtp.username,
            password=smtp.password,
            timeout=smtp.timeout,
            concurrency=email.concurrency,
        )
        return SmtpEmailChannel(settings, sender=email.sender, domain=email.domain, signer=signer)
    if name == "sms":
        sms = channels.sms
        if not sms.url:
            raise ConfigValueError(
                str(config.path), "channels.sms.url", "not set: sending SMS needs the gateway's URL"
            )
        headers = {"Authorization": f"Bearer {sms.token}"} if sms.token else {}
        return SmsWebhookChannel(
            SmsGatewaySettings(url=sms.url, sender=sms.sender, headers=headers, concurrency=sms.concurrency)
        )
    assert day is not None
    if name == "call":
        folder = _beside_config(config, channels.call.folder)
        return CallListChannel(folder, day, centres=config.settings.responses.call_centres)
    if name == "post":
        return PostalListChannel(_beside_config(config, channels.post.folder), day)
    return MeetingListChannel(_beside_config(config, channels.meeting.folder), day)


def delivers_on_send(channel: Channel) -> bool:
    """Whether a message this channel sent is already delivered (a Maildir is the mailbox itself)."""
    return isinstance(channel, MaildirEmailChannel)
