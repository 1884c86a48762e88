"""Channel names and ``[channels.*]`` settings become instances in one place; unknown names are listed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from engine.channels import CallListChannel, MaildirEmailChannel, SmsWebhookChannel, SmtpEmailChannel
from engine.channels.registry import open_channel
from engine.config.checked import load_config
from engine.errors import ConfigValueError, NotFoundError
from engine.outbox import drain


def _config(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.delenv("CRM_DATABASE_URL", raising=False)
    return load_config(path)


def test_email_opens_the_configured_transport(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    maildir = open_channel("email", _config(tmp_path, '[channels.email]\nmaildir = "mail"\n', monkeypatch))
    assert isinstance(maildir, MaildirEmailChannel) and maildir.root == tmp_path / "mail"
    assert maildir.domain == "shop.example"
    smtp = open_channel(
        "email",
        _config(
            tmp_path,
            '[channels.email]\ntransport = "smtp"\nconcurrency = 3\nfrom = "CRM <crm@mail.example>"\n'
            '[channels.email.smtp]\nhost = "mx.example"\nport = 2525\ntls = true\nusername = "crm"\n',
            monkeypatch,
        ),
    )
    assert isinstance(smtp, SmtpEmailChannel) and smtp.domain == "mail.example"
    settings = smtp.settings
    assert (settings.host, settings.port, settings.use_tls, settings.username, settings.concurrency) == (
        "mx.example",
        2525,
        True,
        "crm",
        3,
    )


def test_list_channels_write_for_a_day_and_sms_needs_its_gateway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path, '[channels.call]\nfolder = "calls"\n', monkeypatch)
    calls = open_channel("call", config, day=dt.date(2026, 12, 7))
    assert isinstance(calls, CallListChannel) and calls.day == dt.date(2026, 12, 7)
    assert calls.folder == tmp_path / "calls"
    with pytest.raises(ConfigValueError, match=r"channels\.sms\.url: not set"):
        open_channel("sms", config)
    sms = open_channel(
        "sms",
        _config(tmp_path, '[channels.sms]\nurl = "http://sms.example/send"\ntoken = "t0k"\n', monkeypatch),
    )
    assert isinstance(sms, SmsWebhookChannel) and sms.settings.headers == {"Authorization": "Bearer t0k"}


def test_an_unknown_channel_name_lists_the_known_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path, "", monkeypatch)
    known = r"\(known: call, email, meeting, post, sms\)"
    with pytest.raises(NotFoundError, match=rf"unknown channel 'e-mail' {known}"):
        open_channel("e-mail", config)
    with pytest.raises(NotFoundError, match=rf"unknown channel 'fax' {known}"):
        drain(None, config, only=["fax"])  # type: ignore[arg-type]
