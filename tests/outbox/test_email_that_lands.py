"""Email that lands, through the worker: DKIM from config.toml, List-Id, the customer's language.

A campaign with a public name and ``[steps.languages.ru]`` is drained by a
real worker into a Maildir and to a real SMTP server on loopback; each
message is verified with dkimpy against the public key.
"""

from __future__ import annotations

import datetime as dt
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import dkim
import pytest

from engine.channels import MemoryChannel
from engine.config import load_config
from engine.errors import ConfigErrors
from engine.models import outbox as states
from engine.outbox import drain
from tests.channels.dkim_keys import key_pair
from tests.channels.smtp_servers import smtp_server
from tests.factories import add_customer
from tests.outbox.factories import CAMPAIGN, T0, Clock, add_run, queue, rows_of, workspace

PARSER = BytesParser(policy=policy.default)
LOCALISED = (
    CAMPAIGN.replace('name = "Autumn note"\n', 'name = "Autumn note"\npublic_name = "Новости магазина"\n')
    .replace(
        '[[variants]]\nname = "b"\nsubject = "Only for you, {{ customer.first_name }}"\n',
        '[[variants]]\nname = "b"\nsubject = "Only for you, {{ customer.first_name }}"\n'
        '[variants.languages.ru]\nsubject = "Только для вас, {{ customer.first_name }}"\n',
    )
    .replace(
        'subject = "{{ customer.first_name }}, a note for you"\n',
        'subject = "{{ customer.first_name }}, a note for you"\n\n'
        "[steps.languages.ru]\n"
        'template = "note.ru.html.j2"\n'
        'subject = "{{ customer.first_name }}, письмо для вас"\n',
    )
)
NOTE_RU = "<html><body><p>{{ customer.first_name }}, скидка 10 % до 31 декабря.</p></body></html>"
DKIM = '\n[channels.email.dkim]\nselector = "crm"\nkey_file = "dkim.pem"\n'


def _workspace(write_config: Any, tmp_path: Path, *, email: str = "") -> Any:
    (tmp_path / "dkim.pem").write_bytes(key_pair().private_pem)
    templates = tmp_path / "campaigns" / "templates"
    templates.mkdir(parents=True, exist_ok=True)
    (templates / "note.ru.html.j2").write_text(NOTE_RU, encoding="utf-8")
    return workspace(write_config, tmp_path, email=email + DKIM, campaign=LOCALISED)


def _customers(connection: Any) -> dict[str, int]:
    return {
        language or "none": add_customer(
            connection,
            first_name=name,
            email=f"{name.lower()}@example.ru",
            consent_email=True,
            language=language,
        )
        for name, language in (("Anna", "ru"), ("Boris", "ru-RU"), ("Eve", "en"), ("Kim", None))
    }


def test_the_customers_language_picks_the_template_with_a_fallback(db, write_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = _workspace(write_config, tmp_path)
    with db.begin() as connection:
        ids = _customers(connection)
        run = add_run(connection)
        queue(connection, run, [ids["ru"], ids["en"]], variant="a")
        queue(connection, run, [ids["ru-RU"], ids["none"]], variant="b")
    memory = MemoryChannel("email")
    drain(db, config, channels={"email": memory}, until_idle=True, clock=Clock(T0 + dt.timedelta(minutes=5)))
    sent = {language: memory.sent[f"{run}:{customer}:0"] for language, customer in ids.items()}
    assert sent["ru"].subject == "Anna, письмо для вас" and "скидка 10 %" in (sent["ru"].html or "")
    assert sent["ru-RU"].subject == "Только для вас, Boris"  # variant b's Russian subject, the ru template
    assert "скидка 10 %" in (sent["ru-RU"].html or "")
    assert sent["en"].subject == "Eve, a note for you" and "10 % off" in (sent["en"].html or "")
    assert sent["none"].subject == "Only for you, Kim" and "10 % off" in (sent["none"].html or "")
    for message in sent.values():
        assert message.headers["List-Id"] == "Новости магазина <note.shop.example>"


def test_the_maildir_gets_signed_lf_files_with_the_public_name_in_list_id(
    db, write_config, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    config = _workspace(write_config, tmp_path)
    with db.begin() as connection:
        ids = _customers(connection)
        run = add_run(connection)
        queue(connection, run, variant="a")
    summary = drain(db, config, until_idle=True, clock=Clock(T0 + dt.timedelta(minutes=5)))
    assert summary.delivered == 4
    files = list((tmp_path / "maildir" / "new").iterdir())
    assert len(files) == 4
    subjects = set()
    for path in files:
        data = path.read_bytes()
        assert b"\r" not in data
        assert dkim.verify(data, dnsfunc=key_pair().dns())
        email = PARSER.parsebytes(data)
        assert email["List-Id"] == "Новости магазина <note.shop.example>"
        assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        subjects.add(email["Subject"])
    assert subjects == {
        "Anna, письмо для вас",
        "Boris, письмо для вас",
        "Eve, a note for you",
        "Kim, a note for you",
    }
    assert {r.state for r in rows_of(db, run).values()} == {states.DELIVERED}
    assert set(ids)  # every customer had a file


class _Keeper:
    def __init__(self) -> None:
        self.received: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(bytes(envelope.original_content or envelope.content))
        return "250 OK"


def test_mail_sent_by_the_worker_over_smtp_verifies(db, write_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    keeper = _Keeper()
    with smtp_server(keeper) as port:  # type: ignore[arg-type]
        email = (
            f'transport = "smtp"\n\n[channels.email.smtp]\nhost = "127.0.0.1"\nport = {port}\ntimeout = 10\n'
        )
        config = _workspace(write_config, tmp_path, email=email)
        with db.begin() as connection:
            _customers(connection)
            run = add_run(connection)
            queue(connection, run, variant="a")
        summary = drain(db, config, until_idle=True, clock=Clock(T0 + dt.timedelta(minutes=5)))
    assert summary.sent == 4 and len(keeper.received) == 4
    for data in keeper.received:
        assert dkim.verify(data, dnsfunc=key_pair().dns())
        assert PARSER.parsebytes(data)["List-Id"] == "Новости магазина <note.shop.example>"
    assert {r.state for r in rows_of(db, run).values()} == {states.SENT}


def test_the_key_may_come_from_the_environment(db, write_config, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CRM_CHANNELS__EMAIL__DKIM__PRIVATE_KEY", key_pair().private_pem.decode())
    workspace(write_config, tmp_path, email='\n[channels.email.dkim]\nselector = "crm"\n', campaign=LOCALISED)
    (tmp_path / "campaigns" / "templates" / "note.ru.html.j2").write_text(NOTE_RU, encoding="utf-8")
    config = load_config(tmp_path / "config.toml")
    with db.begin() as connection:
        _customers(connection)
        run = add_run(connection)
        queue(connection, run, variant="a")
    drain(db, config, until_idle=True, clock=Clock(T0 + dt.timedelta(minutes=5)))
    files = list((tmp_path / "maildir" / "new").iterdir())
    assert len(files) == 4
    assert all(dkim.verify(path.read_bytes(), dnsfunc=key_pair().dns()) for path in files)


@pytest.mark.parametrize(
    ("setup", "found"),
    [
        ("missing", "no key file"),
        ("folder", "is a folder"),
        ("garbage", "not a PEM RSA private key"),
        ("encrypted", "has a passphrase"),
    ],
)
def test_a_key_that_cannot_sign_is_a_config_error_with_its_line(  # type: ignore[no-untyped-def]
    write_config, tmp_path: Path, setup: str, found: str
) -> None:
    key = tmp_path / "dkim.pem"
    if setup == "folder":
        key.mkdir()
    elif setup == "garbage":
        key.write_text("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    elif setup == "encrypted":
        key.write_text(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nbm90IGEga2V5\n-----END ENCRYPTED PRIVATE KEY-----\n"
        )
    path = write_config(text=f'[channels.email]\nfrom = "Shop <news@shop.example>"\n{DKIM}')
    with pytest.raises(ConfigErrors) as raised:
        load_config(path)
    [error] = raised.value.errors
    text = str(error)
    assert text.startswith(f"{path}:6 channels.email.dkim.key_file: ") and found in text


def test_a_dkim_table_without_a_key_or_selector_is_refused(write_config) -> None:  # type: ignore[no-untyped-def]
    path = write_config(text='[channels.email.dkim]\nselector = "crm"\n')
    with pytest.raises(ConfigErrors, match="a DKIM key is needed"):
        load_config(path)
    path = write_config(text='[channels.email.dkim]\nkey_file = "dkim.pem"\n')
    with pytest.raises(ConfigErrors, match=r"channels\.email\.dkim\.selector: required field is missing"):
        load_config(path)
