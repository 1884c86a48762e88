"""A database whose schema is not the one this version needs is a user error naming what to run."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Engine, text

from engine.cli import main as crm_main
from engine.db.engines import SCHEMA_REVISION
from engine.db.schema import alembic_config, head_revision


def test_the_revision_the_engine_needs_is_the_newest_migration() -> None:
    assert head_revision() == SCHEMA_REVISION


def test_an_older_schema_asks_for_crm_init_and_a_newer_one_for_an_upgrade(  # type: ignore[no-untyped-def]
    db: Engine, db_url: str, write_config, capsys, monkeypatch
) -> None:
    write_config()
    monkeypatch.setenv("CRM_DATABASE_URL", db_url)
    config = alembic_config()
    with db.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0009")
    try:
        assert crm_main(["segments"]) == 1
        err = " ".join(capsys.readouterr().err.split())
        assert "is at revision 0009; this version of crm-engine needs" in err and "run `crm init`" in err
        assert "Traceback" not in err
        with db.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
        assert crm_main(["segments"]) == 1
        assert "newer than this version of crm-engine knows" in " ".join(capsys.readouterr().err.split())
        with db.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '0009'"))
    finally:
        assert crm_main(["init"]) == 0  # the upgrade back to the newest, for the tests after this one
    assert crm_main(["segments"]) == 0
