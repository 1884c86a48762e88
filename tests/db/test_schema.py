"""The Alembic migrations build exactly the tables the models describe, on both databases.

And what they make once per database: its installation id, new in every
database, kept by a copy of it.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, delete, insert, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

from engine.clock import utcnow
from engine.db.engines import make_engine
from engine.db.schema import current_revision, head_revision, installation_id, upgrade
from engine.models import IMPORT_BATCH, INSTALLATION, RESPONSE
from tests.db.fresh import KINDS, fresh_database
from tests.factories import add_customer, utc


def test_migrations_match_the_models(db: Engine) -> None:
    with db.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []


def test_upgrade_is_idempotent_and_reports_revisions(db: Engine) -> None:
    assert current_revision(db) == head_revision()
    assert upgrade(db) == (head_revision(), head_revision())
    assert {"customer", "purchase", "segment_membership"} <= set(inspect(db).get_table_names())


def _stored_ids(engine: Engine) -> list[str]:
    """The installation rows as the migrations left them (no lazy repair, unlike installation_id)."""
    with engine.connect() as connection:
        return list(connection.execute(select(INSTALLATION.c.uid)).scalars())


@pytest.mark.parametrize("kind", KINDS)
def test_every_new_database_gets_an_installation_id_of_its_own(kind: str, tmp_path: Path) -> None:
    with fresh_database(kind, tmp_path) as first, fresh_database(kind, tmp_path) as second:
        [one], [two] = _stored_ids(first), _stored_ids(second)
        assert re.fullmatch(r"[0-9a-f]{32}", one) and re.fullmatch(r"[0-9a-f]{32}", two)
        assert one != two
        assert (installation_id(first), installation_id(second)) == (one, two)


def test_a_copy_of_the_database_keeps_its_installation_id(tmp_path: Path) -> None:
    # a restored backup is the same installation: its Message-IDs go on where they left off
    with fresh_database("sqlite", tmp_path) as original:
        with original.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        assert original.url.database is not None
        shutil.copyfile(original.url.database, tmp_path / "restored.db")
        restored = make_engine(f"sqlite:///{tmp_path / 'restored.db'}")
        try:
            assert installation_id(restored) == installation_id(original)
        finally:
            restored.dispose()


def test_a_database_whose_row_is_gone_gets_one_new_id(db: Engine) -> None:
    before = installation_id(db)
    with db.begin() as connection:
        connection.execute(delete(INSTALLATION))
    after = installation_id(db)
    assert after != before and installation_id(db) == after
    with db.begin() as connection, pytest.raises(IntegrityError):  # one row, always
        connection.execute(insert(INSTALLATION).values(id=2, uid="0" * 32, created_at=utcnow()))


@pytest.mark.parametrize("kind", KINDS)
def test_an_upgrade_from_0008_gives_an_installation_id_and_keeps_one_copy_of_each_imported_response(
    kind: str, tmp_path: Path
) -> None:
    with (
        fresh_database(kind, tmp_path, revision="0008") as old,
        fresh_database(kind, tmp_path, revision="0008") as other,
    ):
        with old.begin() as connection:
            customer = add_customer(connection)
            imports = [_import_batch(connection, source) for source in ("calls", "responses", "again")]
            at = utc(2026, 12, 8, 11)
            first = _response(connection, customer, at, "reached:1:20261208T110000Z:ab", "calls", imports[0])
            _response(connection, customer, at, "reached:1:20261208T110000Z:ab", "responses", imports[1])
            _response(connection, customer, at, "reached:1:20261208T110000Z:ab", "again", imports[2])
            other_score = _response(
                connection, customer, at, "satisfaction:1:20261208T110000Z:cd", "calls", imports[0]
            )
            tracked = [
                _response(connection, customer, at, "open:7", source, None)
                for source in ("tracking", "elsewhere")
            ]
        for engine in (old, other):
            assert upgrade(engine) == ("0008", head_revision())
        [one], [two] = _stored_ids(old), _stored_ids(other)
        assert one != two and installation_id(old) == one
        with old.connect() as connection:
            kept = set(connection.execute(select(RESPONSE.c.id)).scalars())
        # the copies that re-imports under another source recorded are gone; the rest stay as they were
        assert kept == {first, other_score, *tracked}
        with old.begin() as connection, pytest.raises(IntegrityError):
            _response(connection, customer, at, "reached:1:20261208T110000Z:ab", "yet another", imports[2])


def _import_batch(connection: Connection, source: str) -> int:
    return int(
        connection.execute(
            insert(IMPORT_BATCH)
            .values(kind="responses", source=source, path="calls.csv", sha256="0" * 64, started_at=utcnow())
            .returning(IMPORT_BATCH.c.id)
        ).scalar_one()
    )


def _response(
    connection: Connection, customer: int, at: dt.datetime, key: str, source: str, import_id: int | None
) -> int:
    return int(
        connection.execute(
            insert(RESPONSE)
            .values(
                customer_id=customer,
                kind=key.split(":", 1)[0],
                occurred_at=at,
                source=source,
                key=key,
                import_id=import_id,
                recorded_at=utcnow(),
            )
            .returning(RESPONSE.c.id)
        ).scalar_one()
    )
