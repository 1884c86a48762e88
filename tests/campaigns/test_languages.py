"""Content per customer language and the public name: checked at load time as the default content is."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.campaigns import load_campaigns, step_content
from engine.config.checked import load_config
from engine.errors import ConfigErrors
from tests.cli.test_cli import crm

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A copy of the example config and campaigns (winback has Russian content)."""
    shutil.copy(ROOT / "config.toml", tmp_path / "config.toml")
    shutil.copytree(ROOT / "campaigns", tmp_path / "campaigns")
    return tmp_path


def _edit(workspace: Path, old: str, new: str) -> Path:
    path = workspace / "campaigns" / "winback.toml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def _errors(workspace: Path) -> list[str]:
    with pytest.raises(ConfigErrors) as caught:
        load_campaigns(load_config(workspace / "config.toml"))
    return str(caught.value).splitlines()


def test_the_example_has_russian_content_and_a_public_name(workspace: Path) -> None:
    winback = load_campaigns(load_config(workspace / "config.toml"))["winback"].campaign
    assert winback.shown_name == "Offers for our regular customers" != winback.name
    step = winback.steps[0]
    for language, template in (
        ("ru", "winback.ru.html.j2"),
        ("ru-RU", "winback.ru.html.j2"),
        ("RU", "winback.ru.html.j2"),
        ("en", "winback.html.j2"),
        ("kk", "winback.html.j2"),
        (None, "winback.html.j2"),
        ("", "winback.html.j2"),
    ):
        assert step_content(winback, step, None, language).template == template, language
    assert "мы кое-что" in (step_content(winback, step, None, "ru").subject or "")
    call = winback.steps[1]
    assert step_content(winback, call, None, "ru").script == "winback_call.md"  # the default script


def test_a_missing_language_template_is_refused_with_file_line_and_field(workspace: Path) -> None:
    path = _edit(workspace, 'template = "winback.ru.html.j2"', 'template = "winback.ru.htm"')
    line = path.read_text(encoding="utf-8").splitlines().index('template = "winback.ru.htm"') + 1
    assert (
        f"{path}:{line} steps[0].languages.ru.template: no file 'winback.ru.htm' in "
        f"{workspace / 'campaigns' / 'templates'}" in _errors(workspace)
    )
    result = crm("--config", str(workspace / "config.toml"), "validate")
    assert result.returncode == 1 and "steps[0].languages.ru.template" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_a_broken_language_template_or_subject_is_refused(workspace: Path) -> None:
    (workspace / "campaigns" / "templates" / "winback.ru.html.j2").write_text("{% if %}", encoding="utf-8")
    _edit(workspace, 'subject = "{{ customer.first_name }}, мы', 'subject = "{{ customer.first_name }, мы')
    errors = "\n".join(_errors(workspace))
    assert "steps[0].languages.ru.template: winback.ru.html.j2:1:" in errors
    assert "steps[0].languages.ru.subject: not a valid template" in errors


def test_a_language_must_be_a_tag(workspace: Path) -> None:
    _edit(workspace, "[steps.languages.ru]", '[steps.languages."Russian"]')
    assert any("'Russian' is not a language tag" in e for e in _errors(workspace))


def test_a_variant_that_replaces_content_must_give_it_for_each_language(workspace: Path) -> None:
    _edit(
        workspace,
        '[[steps]]\nchannel = "email"',
        '[[variants]]\nname = "a"\n\n[[variants]]\nname = "b"\nsubject = "Only this week"\n\n'
        '[[steps]]\nchannel = "email"',
    )
    errors = "\n".join(_errors(workspace))
    assert "variants[1].subject: variant b sets subject but not for the steps' languages ru" in errors
    _edit(
        workspace,
        'subject = "Only this week"\n',
        'subject = "Only this week"\n[variants.languages.ru]\nsubject = "Только на этой неделе"\n',
    )
    winback = load_campaigns(load_config(workspace / "config.toml"))["winback"].campaign
    step = winback.steps[0]
    assert step_content(winback, step, "b", "ru").subject == "Только на этой неделе"
    assert step_content(winback, step, "b", "ru").template == "winback.ru.html.j2"
    assert step_content(winback, step, "b", "en").subject == "Only this week"
    assert step_content(winback, step, "a", "ru").subject == winback.steps[0].languages["ru"].subject


def test_validate_refuses_a_missing_dkim_key_file_naming_file_line_and_field(workspace: Path) -> None:
    config = workspace / "config.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace(
            "[channels.email.smtp]",
            '[channels.email.dkim]\nselector = "crm"\nkey_file = "secrets/dkim.pem"\n\n[channels.email.smtp]',
        ),
        encoding="utf-8",
    )
    line = config.read_text(encoding="utf-8").splitlines().index('key_file = "secrets/dkim.pem"') + 1
    result = crm("--config", str(config), "validate")
    assert result.returncode == 1, result.stdout
    assert (
        f"{config}:{line} channels.email.dkim.key_file: no key file {workspace / 'secrets' / 'dkim.pem'}"
        in " ".join((result.stderr + result.stdout).split())
    )
    assert "Traceback" not in result.stderr


def test_validate_says_that_email_is_signed(workspace: Path) -> None:
    from tests.channels.dkim_keys import key_pair

    (workspace / "dkim.pem").write_bytes(key_pair().private_pem)
    config = workspace / "config.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace(
            "[channels.email.smtp]",
            '[channels.email.dkim]\nselector = "crm"\nkey_file = "dkim.pem"\n\n[channels.email.smtp]',
        ),
        encoding="utf-8",
    )
    result = crm("--config", str(config), "validate")
    assert result.returncode == 0, result.stderr
    said = " ".join(result.stdout.split())
    assert "email: signed with DKIM, selector crm, domain" in said and "._domainkey." in said
