"""Fresh databases made by the migrations, as ``crm init`` makes them: not copies of one template.

The ``db`` fixture copies one SQLite template and empties one PostgreSQL
database between tests, so its databases share what the migrations made
once (the installation id). Tests about what every new database gets of its
own make theirs here.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from sqlalchemy import Engine, create_engine, text

from engine.db.engines import make_engine
from engine.db.schema import alembic_config
from tests.conftest import SERVER_URL

KINDS = ("sqlite", "postgresql")


def migrate(engine: Engine, revision: str) -> None:
    """Upgrade the schema of ``engine`` to ``revision`` (``head``: what ``crm init`` does)."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


@contextmanager
def fresh_database(kind: str, folder: Path, *, revision: str = "head") -> Iterator[Engine]:
    """A new database of ``kind`` (``sqlite`` or ``postgresql``) migrated to ``revision``; dropped after."""
    name = f"crm_fresh_{secrets.token_hex(4)}"
    if kind == "sqlite":
        engine = make_engine(f"sqlite:///{folder / (name + '.db')}")
        migrate(engine, revision)
        try:
            yield engine
        finally:
            engine.dispose()
        return
    server = create_engine(SERVER_URL, isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(SERVER_URL.rsplit("/", 1)[0] + "/" + name)
    try:
        migrate(engine, revision)
        yield engine
    finally:
        engine.dispose()
        with server.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()
