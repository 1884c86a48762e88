"""Faults of the environment through the real ``crm`` command: user errors, never bugs.

Each test makes the fault for real (how: tests/cli/faults.py) and checks what
a user sees: exit code 1, a message naming the path or option and what to
fix, no traceback, the database and the files unchanged (or exactly as
committed), and no ``.part`` file left behind. Where a database is involved,
on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from engine.cli import main as crm_main
from engine.errors import ConfigValueError
from engine.models.tables import CUSTOMER, IMPORT_BATCH, METRICS
from tests.cli.faults import leftovers, postgres_role, read_only_url, refusing_writes
from tests.cli.test_cli import ROOT, crm

CLIENTS = (
    "external_id;first_name;email;consent_email\n"
    "C1;Анна;anna@mail.ru;да\n"
    "C2;Борис;not-an-email;да\n"  # rejected: a rejects file is written with the import
)


def _count(db: Engine, table) -> int:  # type: ignore[no-untyped-def]
    with db.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def _user_error(result, *fragments: str) -> None:  # type: ignore[no-untyped-def]
    """Exit 1 with every fragment in the message (soft-wrapped lines joined) and no traceback."""
    message = " ".join(result.stderr.split())
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in message, (fragment, result.stderr)


def _files(folder: Path) -> set[str]:
    """The names in ``folder``, but the test's SQLite database (and its WAL files)."""
    return {path.name for path in folder.iterdir() if not path.name.startswith("crm.db")}


def _clients(tmp_path: Path) -> Path:
    path = tmp_path / "clients.csv"
    path.write_text(CLIENTS, encoding="utf-8")
    return path


def test_a_read_only_database_is_a_user_error_and_changes_nothing(  # type: ignore[no-untyped-def]
    db, write_config, db_url: str, tmp_path: Path
) -> None:
    """SQLite opened with mode=ro; PostgreSQL through a role whose transactions are read only."""
    write_config()
    clients = _clients(tmp_path)
    with read_only_url(db_url) as url:
        env = {"CRM_DATABASE_URL": url}
        imported = crm("import", "customers", str(clients), "--source", "shop", env=env)
        _user_error(imported, "refuses writes", "engine.database_url (or CRM_DATABASE_URL)")
        refreshed = crm("refresh", env=env)
        _user_error(refreshed, "refuses writes")
        listed = crm("segments", env=env)  # reading is still fine
        assert listed.returncode == 0, listed.stderr
    assert (_count(db, CUSTOMER), _count(db, IMPORT_BATCH), _count(db, METRICS)) == (0, 0, 0)
    assert not (tmp_path / "clients.csv.rejects.csv").exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_sqlite_file_without_write_permission_is_a_user_error(  # type: ignore[no-untyped-def]
    db, write_config, db_url: str, tmp_path: Path
) -> None:
    """The database file itself refuses writes: chmod 0444, or chattr +i for root."""
    write_config()
    database = tmp_path / "crm.db"
    with refusing_writes(database):
        refreshed = crm("refresh")
        _user_error(refreshed, f"database {database}: it refuses writes", "writable for the user running crm")
    assert _count(db, METRICS) == 0


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_postgresql_role_without_the_privilege_is_a_user_error(  # type: ignore[no-untyped-def]
    db, write_config, db_url: str, tmp_path: Path
) -> None:
    """A role made for the test with SELECT only: 42501, insufficient privilege."""
    write_config()
    with postgres_role(db_url, select_only=True) as url:
        imported = crm("import", "customers", str(_clients(tmp_path)), "--source", "shop", env={
            "CRM_DATABASE_URL": url
        })  # fmt: skip
    _user_error(imported, "the role may not do this (permission denied", "grant the role")
    assert _count(db, CUSTOMER) == 0


def test_an_unreachable_postgresql_server_is_a_user_error(tmp_path: Path) -> None:
    """Nothing listens on port 1."""
    config = tmp_path / "config.toml"
    config.write_text((ROOT / "config.toml").read_text(encoding="utf-8"), encoding="utf-8")
    env = {"CRM_CONFIG": str(config), "CRM_DATABASE_URL": "postgresql://crm@127.0.0.1:1/crm"}
    _user_error(crm("segments", env=env), "cannot connect", "check that the server runs")


def test_commands_that_read_do_not_create_the_database(tmp_path: Path) -> None:
    """Only `crm init` creates the SQLite file; in a folder that does not exist it names the folder."""
    config = tmp_path / "config.toml"
    config.write_text((ROOT / "config.toml").read_text(encoding="utf-8"), encoding="utf-8")
    database = tmp_path / "crm.db"
    env = {"CRM_CONFIG": str(config), "CRM_DATABASE_URL": f"sqlite:///{database}"}
    for command in (["plan"], ["segments"], ["customers", "show", "C1"], ["report", "funnel"], ["refresh"]):
        result = crm(*command, env=env)
        _user_error(result, f"the SQLite file {database} does not exist", "run `crm init` first to create it")
        assert not database.exists() and list(tmp_path.iterdir()) == [config], command

    nowhere = tmp_path / "data" / "crm.db"
    init = crm("init", env={**env, "CRM_DATABASE_URL": f"sqlite:///{nowhere}"})
    _user_error(init, f"its folder {nowhere.parent} does not exist: create the folder")
    assert not nowhere.parent.exists()
    assert crm("init", env=env).returncode == 0 and database.is_file()


def test_report_output_paths_are_checked_before_the_work(  # type: ignore[no-untyped-def]
    db, write_config, tmp_path: Path
) -> None:
    write_config()
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file, not a folder", encoding="utf-8")
    missing = tmp_path / "no"
    cases = [
        (["report", "funnel", "--format", "csv", "-o", str(blocker / "f.csv")], f"{blocker} is a file"),
        (["report", "programme", "--format", "xlsx", "-o", str(tmp_path)], "is a folder: give the name"),
        (["budget", "--format", "csv", "-o", str(blocker / "b.csv")], "is a file, not a folder"),
    ]  # fmt: skip
    for command, reason in cases:
        _user_error(crm(*command), "--output", reason)
    _user_error(crm("report", "html", str(blocker / "pages")), "FOLDER", "is a file, not a folder")
    assert _files(tmp_path) == {"config.toml", "notes.txt"}
    assert blocker.read_text(encoding="utf-8") == "a file, not a folder"
    for command in (["report", "campaigns", "--format", "json", "-o", str(missing / "c.json")],
                    ["budget", "--format", "xlsx", "-o", str(missing / "b.xlsx")]):  # fmt: skip
        assert crm(*command).returncode == 0  # a missing folder is made
    assert {p.name for p in missing.iterdir()} == {"c.json", "b.xlsx"}


def test_a_report_that_cannot_be_written_leaves_no_part_file(  # type: ignore[no-untyped-def]
    db, write_config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The disk fills up as the file is written (os.replace fails with ENOSPC)."""
    write_config()
    target = tmp_path / "funnel.csv"

    def full(*_args: object, **_kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", full)
    assert crm_main(["report", "funnel", "--format", "csv", "-o", str(target)]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert f"--output {target}: the disk is full" in err and "Traceback" not in err
    assert not target.exists() and leftovers(tmp_path) == []


def test_rejects_paths_are_checked_before_the_import(db, write_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """--rejects at a folder used to commit the import, crash, and leave a hidden .part beside the folder."""
    write_config()
    clients = _clients(tmp_path)
    folder = tmp_path / "rejects"
    folder.mkdir()
    at_folder = crm("import", "customers", str(clients), "--source", "shop", "--rejects", str(folder))
    _user_error(at_folder, f"--rejects {folder}: is a folder: give the name of a file in it")
    assert (_count(db, CUSTOMER), _count(db, IMPORT_BATCH)) == (0, 0)
    assert leftovers(tmp_path, folder) == [] and list(folder.iterdir()) == []

    fine = tmp_path / "no" / "r.csv"  # a missing folder is made
    done = crm("import", "customers", str(clients), "--source", "shop", "--rejects", str(fine))
    assert done.returncode == 0, done.stderr
    assert _count(db, CUSTOMER) == 1 and "not-an-email" in fine.read_text(encoding="utf-8")


def test_a_rejects_file_that_cannot_be_put_in_place_rolls_the_import_back(  # type: ignore[no-untyped-def]
    db, write_config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The disk fills up as the rejects file is moved into place: the import is not committed."""
    write_config()
    clients = _clients(tmp_path)

    def full(self: Path, target: Path) -> Path:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "replace", full)
    assert crm_main(["import", "customers", str(clients), "--source", "shop"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert f"{tmp_path / 'clients.csv.rejects.csv'}: the disk is full" in err and "--rejects FILE" in err
    assert (_count(db, CUSTOMER), _count(db, IMPORT_BATCH)) == (0, 0)
    assert _files(tmp_path) == {"clients.csv", "config.toml"}


def test_error_messages_are_printed_as_they_are(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Rich markup in a message neither breaks the printer ([/]) nor vanishes ([[variants]], [bold])."""
    import engine.cli.schema

    message = "two [[variants]] to test, [bold]not bold[/bold] and [/] as it is"

    def refused() -> None:
        raise ConfigValueError("campaigns/ab.toml", "variants", message, line=3)

    monkeypatch.setattr(engine.cli.schema.state, "config", refused)
    assert crm_main(["validate"]) == 1
    err = capsys.readouterr().err
    assert f"error: campaigns/ab.toml:3 variants: {message}" in " ".join(err.split())

    def broken() -> None:
        raise RuntimeError("[/] a bug [bold]")

    monkeypatch.setattr(engine.cli.schema.state, "config", broken)
    assert crm_main(["validate"]) == 2
    err = capsys.readouterr().err
    assert "RuntimeError: [/] a bug [bold]" in err and "this is a bug in crm-engine" in err

    def unwrapped() -> None:
        raise PermissionError(errno.EACCES, "Permission denied", "/somewhere")

    monkeypatch.setattr(engine.cli.schema.state, "config", unwrapped)
    assert crm_main(["validate"]) == 2  # an OSError nobody wrapped is still a bug, reported as one
    assert "PermissionError" in capsys.readouterr().err

    odd = tmp_path / "[bold][/]x[[variants]].toml"  # through the real command too
    _user_error(crm("--config", str(odd), "validate"), f"{odd}: no such file")
