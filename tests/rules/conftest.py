"""Fixtures of the rule-language tests: a small customer-like table on real SQLite and PostgreSQL.

Self-contained (fixture names start with ``rules_``) so they do not clash with
shared database fixtures. PostgreSQL tests use a throw-away database created
for the session and dropped at its end; the suite fails when no server
answers at ``CRM_TEST_POSTGRES_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``).
"""

from __future__ import annotations

import datetime
import os
import secrets
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from engine.rules import Catalogue, RuleType, SqlBindings

PG_SERVER_URL = os.environ.get(
    "CRM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
).rsplit("/", 1)[0]
TODAY = datetime.date(2026, 3, 15)

metadata = sa.MetaData()

#: Columns of every type the rule language knows, all nullable.
rows_table = sa.Table(
    "rule_rows",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("orders", sa.Integer),
    sa.Column("visits", sa.Integer),
    sa.Column("amount", sa.Numeric(14, 2)),
    sa.Column("name", sa.Text),
    sa.Column("city", sa.Text),
    sa.Column("vip", sa.Boolean),
    sa.Column("first_order", sa.Date),
    sa.Column("last_order_at", sa.DateTime(timezone=True)),
)

members_table = sa.Table(
    "rule_segment_members",
    metadata,
    sa.Column("segment", sa.Text, primary_key=True),
    sa.Column("row_id", sa.BigInteger, primary_key=True),
)

#: Catalogue field -> column name.
FIELD_COLUMNS: Mapping[str, str] = {
    "orders": "orders",
    "visits": "visits",
    "amount": "amount",
    "name": "name",
    "city": "city",
    "attr.vip": "vip",
    "first_order": "first_order",
    "last_order_at": "last_order_at",
}
FIELD_TYPES: Mapping[str, RuleType] = {
    "orders": RuleType.INT,
    "visits": RuleType.INT,
    "amount": RuleType.NUMBER,
    "name": RuleType.STR,
    "city": RuleType.STR,
    "attr.vip": RuleType.BOOL,
    "first_order": RuleType.DATE,
    "last_order_at": RuleType.DATETIME,
}
SEGMENTS = ("large", "lapsing")
CATALOGUE = Catalogue(FIELD_TYPES, segments=SEGMENTS)


@dataclass(frozen=True)
class TableBindings:
    """SqlBindings over ``rule_rows`` with membership in ``rule_segment_members``."""

    today: datetime.date = TODAY

    def field(self, name: str) -> sa.ColumnElement[Any]:
        return rows_table.c[FIELD_COLUMNS[name]]

    def in_segment(self, name: str) -> sa.ColumnElement[bool]:
        return sa.exists().where(members_table.c.segment == name, members_table.c.row_id == rows_table.c.id)

    def row_key(self) -> sa.ColumnElement[int]:
        return rows_table.c.id


#: A test row: (key, values by field name, segments it is a member of).
Row = tuple[int, Mapping[str, Any], Collection[str]]


@dataclass
class RulesDatabase:
    """A database with the test tables, and helpers to load rows and run rules."""

    name: str
    engine: sa.Engine

    def load(self, rows: list[Row]) -> None:
        with self.engine.begin() as conn:
            conn.execute(members_table.delete())
            conn.execute(rows_table.delete())
            if rows:
                conn.execute(rows_table.insert(), [self._db_row(r) for r in rows])
            members = [{"segment": s, "row_id": key} for key, _, segments in rows for s in segments]
            if members:
                conn.execute(members_table.insert(), members)

    def _db_row(self, row: Row) -> dict[str, Any]:
        key, field_values, _ = row
        values: dict[str, Any] = {"id": key}
        for field_name, column in FIELD_COLUMNS.items():
            value = field_values.get(field_name)
            if isinstance(value, datetime.datetime) and self.name == "sqlite":
                value = value.astimezone(datetime.UTC).replace(tzinfo=None)  # naive UTC on SQLite
            values[column] = value
        return values

    def matching(self, where: sa.ColumnElement[bool]) -> set[int]:
        with self.engine.connect() as conn:
            return set(conn.scalars(sa.select(rows_table.c.id).where(where)))

    def value(self, expression: sa.ColumnElement[Any]) -> Any:
        """The value of ``expression`` for the single loaded row."""
        with self.engine.connect() as conn:
            return conn.scalar(sa.select(expression).select_from(rows_table))


@pytest.fixture(scope="session")
def rules_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RulesDatabase]:
    path = tmp_path_factory.mktemp("rules") / "rules.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    yield RulesDatabase("sqlite", engine)
    engine.dispose()


@pytest.fixture(scope="session")
def rules_postgresql() -> Iterator[RulesDatabase]:
    admin = sa.create_engine(f"{PG_SERVER_URL}/postgres", isolation_level="AUTOCOMMIT")
    name = f"crm_rules_test_{secrets.token_hex(4)}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.fail(f"PostgreSQL not available ({exc.orig}); scripts/start-postgres starts it")
    engine = sa.create_engine(f"{PG_SERVER_URL}/{name}", connect_args={"options": "-c timezone=UTC"})
    try:
        metadata.create_all(engine)
        yield RulesDatabase("postgresql", engine)
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def rules_db(request: pytest.FixtureRequest) -> RulesDatabase:
    """Each SQL test runs on both databases."""
    database: RulesDatabase = request.getfixturevalue(f"rules_{request.param}")
    return database


@pytest.fixture
def rules_catalogue() -> Catalogue:
    return CATALOGUE


@pytest.fixture
def rules_bindings() -> TableBindings:
    return TableBindings()


@pytest.fixture
def rules_today() -> datetime.date:
    return TODAY


_bindings_check: SqlBindings = TableBindings()  # mypy: TableBindings implements the protocol
