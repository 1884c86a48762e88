"""The `crm` command through its real entry point: every command has help, examples and a README line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import command_tree
from engine.cli import main as crm_main

ROOT = Path(__file__).resolve().parents[2]
CRM = Path(sys.executable).parent / "crm"


def crm(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed console script, as a user would."""
    return subprocess.run(
        [str(CRM), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        cwd=cwd,
        timeout=300,
    )


def _commands() -> list[tuple[str, ...]]:

    root = command_tree()
    found: list[tuple[str, ...]] = []

    def walk(command: object, path: tuple[str, ...]) -> None:
        subcommands = getattr(command, "commands", None)
        if path:
            found.append(path)
        for name, sub in (subcommands or {}).items():
            walk(sub, (*path, name))

    walk(root, ())
    return found


def test_every_command_has_help_with_an_example_and_a_readme_line(capsys: pytest.CaptureFixture[str]) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = _commands()
    assert {c[0] for c in commands} >= {
        "init",
        "validate",
        "import",
        "refresh",
        "segments",
        "customers",
        "demo",
    }
    for command in commands:
        assert crm_main([*command, "--help"]) == 0, command
        assert "Example" in capsys.readouterr().out, command
        assert f"crm {' '.join(command)}" in readme, f"README has no example of crm {' '.join(command)}"


def test_user_errors_exit_1_with_a_readable_message(tmp_path: Path) -> None:
    missing = crm("--config", str(tmp_path / "nope.toml"), "validate")
    assert missing.returncode == 1
    assert "nope.toml: no such file" in missing.stderr and "Traceback" not in missing.stderr

    config = tmp_path / "config.toml"
    config.write_text('[segments.a]\nrule = "orders_cnt > 1"\n', encoding="utf-8")
    bad = crm("--config", str(config), "validate")
    assert bad.returncode == 1
    assert (
        f"{config}:2 segments.a.rule: unknown field 'orders_cnt' (did you mean orders_count?)" in bad.stderr
    )

    config.write_text(f'[engine]\ndatabase_url = "sqlite:///{tmp_path}/empty.db"\n', encoding="utf-8")
    uninitialised = crm("--config", str(config), "segments")
    assert uninitialised.returncode == 1 and "run `crm init` first" in uninitialised.stderr

    usage = crm("segments", "show")
    assert usage.returncode == 1 and "Missing argument" in usage.stderr


def test_main_returns_exit_codes_in_process(tmp_path: Path) -> None:
    assert crm_main(["--help"]) == 0
    assert crm_main(["--config", str(tmp_path / "nope.toml"), "validate"]) == 1


@pytest.mark.usefixtures("db")
def test_init_validate_refresh_segments_and_profile(write_config, db_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = write_config()
    env = {"CRM_CONFIG": str(config), "CRM_DATABASE_URL": db_url}
    init = crm("init", env=env)
    assert init.returncode == 0 and "up to date" in init.stdout
    assert "8 segments, 1 scores, 2 custom metrics" in crm("validate", env=env).stdout

    customers = tmp_path / "clients.csv"
    customers.write_text(
        "external_id;first_name;last_name;email;phone;birth_date;consent_email\n"
        "C1;Анна;Иванова;anna@mail.ru;8 (916) 123-45-67;01.02.1990;да\n"
        "C2;Борис;Петров;boris@yandex.ru;+7 903 765-43-21;15.12.1985;нет\n"
        "C3;Вера;Сидорова;not-an-email;;31.12.1999;да\n",
        encoding="cp1251",
    )
    imported = crm("import", "customers", str(customers), "--source", "shop", "--json", env=env)
    assert imported.returncode == 0, imported.stderr
    summary = json.loads(imported.stdout)
    assert (summary["inserted"], summary["rejected"]) == (2, 1)
    purchases = tmp_path / "orders.csv"
    purchases.write_text(
        "external_id,customer,ordered_at,amount,category\n"
        "O1,C1,2026-01-10 12:00,1500.00,shoes\n"
        "O2,C1,2026-02-10 12:00,700.00,shoes\n"
        "O3,C2,2026-03-01 09:30,90.50,home\n",
        encoding="utf-8",
    )
    bought = crm("import", "purchases", str(purchases), "--json", env=env)
    assert bought.returncode == 0, bought.stderr
    assert json.loads(bought.stdout)["inserted"] == 3

    refreshed = crm("refresh", "--as-of", "2026-04-01", "--json", env=env)
    assert refreshed.returncode == 0, refreshed.stderr
    result = json.loads(refreshed.stdout)
    assert {s["name"]: s["members"] for s in result["segments"]}["large"] == 1

    listing = json.loads(crm("segments", "--json", env=env).stdout)
    assert {s["name"]: s["members"] for s in listing}["large"] == 1
    shown = json.loads(crm("segments", "show", "large", "--json", env=env).stdout)
    assert [m["external_id"] for m in shown["first"]] == ["C1"]
    sql = crm("segments", "show", "lapsing_large", "--sql", env=env)
    assert "segment_membership.segment = 'large'" in sql.stdout
    profile = json.loads(crm("customers", "show", "anna@mail.ru", "--json", env=env).stdout)
    assert profile["fields"]["phone"] == "+79161234567"
    assert profile["metrics"]["orders_count"] == 2
    assert "large" in {s["segment"] for s in profile["segments"]}
    assert crm("segments", "show", "lrage", env=env).returncode == 1


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # validate reads no database
def test_validate_warns_when_email_goes_through_smtp_without_an_https_link(  # type: ignore[no-untyped-def]
    write_config, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config()  # the example: base_url http://localhost:8000, a Maildir
    assert crm_main(["validate"]) == 0
    assert "warning" not in capsys.readouterr().err  # a Maildir is read locally

    monkeypatch.setenv("CRM_CHANNELS__EMAIL__TRANSPORT", "smtp")
    assert crm_main(["validate"]) == 0  # a warning, not an error
    out, err = capsys.readouterr()
    assert "8 segments" in out
    lines = config.read_text(encoding="utf-8").splitlines()
    line = next(n for n, text in enumerate(lines, 1) if text.startswith('base_url = "http://localhost:8000"'))
    warning = f"warning: {config}:{line} links.base_url: 'http://localhost:8000' is not https: emails sent"
    assert warning in " ".join(err.split()) and "RFC 8058 one-click" in err

    monkeypatch.setenv("CRM_LINKS__BASE_URL", "https://crm.shop.example")
    assert crm_main(["validate"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_a_bug_exits_2_with_its_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import engine.cli.schema

    def broken() -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(engine.cli.schema.state, "config", broken)
    assert crm_main(["validate"]) == 2
    err = capsys.readouterr().err
    assert "RuntimeError: boom" in err and "bug in crm-engine" in err


@pytest.mark.usefixtures("db")
def test_unreadable_import_files_exit_1_and_change_nothing(write_config, db_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = {"CRM_CONFIG": str(write_config()), "CRM_DATABASE_URL": db_url}
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(bytes(range(256)) * 8)
    for path in (tmp_path / "missing.csv", empty, garbage):
        result = crm("import", "customers", str(path), "--source", "shop", env=env)
        assert result.returncode == 1, result.stderr
        assert str(path) in result.stderr and "Traceback" not in result.stderr
    listing = crm("customers", "show", "C1", env=env)
    assert listing.returncode == 1 and "unknown customer 'C1'" in listing.stderr
