"""Create or upgrade the database schema with the Alembic migrations shipped in the package.

Also the database's installation id, made with the schema (migration 0009).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, select
from sqlalchemy.exc import DBAPIError

from engine.clock import utcnow
from engine.db.engines import check_connection, check_folder, write_transaction
from engine.errors import DatabaseError
from engine.models import INSTALLATION
from engine.sql import insert_ignoring

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    """The Alembic configuration pointing at ``engine/db/migrations``."""
    from alembic.config import Config

    config = Config(str(MIGRATIONS / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    """The newest migration shipped with this version of crm-engine."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the schema of ``engine`` to the newest migration; return (before, after).

    A SQLite file is created here (and only here), in a folder that must exist.
    """
    from alembic import command

    check_folder(engine)
    check_connection(engine)
    before = current_revision(engine)
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return before, head_revision()


def installation_id(engine: Engine) -> str:
    """The installation id of the database of ``engine``: 32 hex digits, random, made with the schema.

    Idempotency keys repeat from one database to the next; what must be
    unique beyond one database (Message-IDs) mixes this id in. It is stored
    in the database (table ``installation``), so a restored backup keeps it
    and a new database gets its own. A database whose row was removed gets
    a new id here, the same for every worker that asks at once. Read it once
    per worker, not per message. Raises :class:`DatabaseError` when the
    schema predates it (run ``crm init``).
    """
    try:
        with engine.connect() as connection:
            found = connection.execute(select(INSTALLATION.c.uid)).scalar()
        if found is None:
            with write_transaction(engine) as connection:
                connection.execute(
                    insert_ignoring(connection, INSTALLATION, index_elements=["id"]).values(
                        id=1, uid=secrets.token_hex(16), created_at=utcnow()
                    )
                )
                found = connection.execute(select(INSTALLATION.c.uid)).scalar_one()
    except DBAPIError as exc:
        if inspect(engine).has_table(INSTALLATION.name):
            raise
        where = engine.url.render_as_string(hide_password=True)
        raise DatabaseError(f"the schema of {where} is older than crm-engine: run `crm init`") from exc
    return str(found)
