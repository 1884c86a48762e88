"""Every statement of engine.sql.statements on both databases: what it does, and what it leaves alone."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import (
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    func,
    insert,
    inspect,
    literal,
    select,
)
from sqlalchemy.exc import OperationalError

from engine.clock import utcnow
from engine.models.tables import CUSTOMER, SUPPRESSION
from engine.sql.dialect import POSTGRESQL, dialect_of, render, spelling
from engine.sql.statements import (
    allocate_ids,
    analyze,
    begin_write,
    drop_temporary,
    insert_ignoring,
    lock_rows,
    lock_table,
    new_id,
    planner_rows,
    relax_durability,
    restore_durability,
    rowcount,
)
from tests.factories import add_customer


def _suppression(address: str) -> dict[str, object]:
    return {
        "channel": "email",
        "address": address,
        "reason": "unsubscribe",
        "source": "test",
        "created_at": utcnow(),
    }


def _customer(db: Engine, email: str) -> int:
    with db.begin() as connection:
        return add_customer(connection, email=email)


def _count(db: Engine, table: Table) -> int:
    with db.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def test_insert_ignoring_skips_a_taken_key_and_says_which_rows_went_in(db: Engine) -> None:
    with db.begin() as connection:
        statement = insert_ignoring(connection, SUPPRESSION, index_elements=["channel", "address"])
        first = connection.execute(
            statement.values(**_suppression("a@x.ru")).returning(SUPPRESSION.c.id)
        ).all()
        again = connection.execute(
            statement.values(**_suppression("a@x.ru")).returning(SUPPRESSION.c.id)
        ).all()
        # any unique key: no index named
        other = connection.execute(insert_ignoring(connection, SUPPRESSION).values(**_suppression("a@x.ru")))
    assert len(first) == 1 and again == []
    assert other.rowcount in (0, -1)
    assert _count(db, SUPPRESSION) == 1


def test_insert_ignoring_from_a_select_and_rowcount(db: Engine) -> None:
    with db.begin() as connection:
        connection.execute(insert(SUPPRESSION).values(**_suppression("b@x.ru")))
        rows = select(
            literal("email"),
            literal("b@x.ru").label("address"),
            literal("unsubscribe"),
            literal("test"),
            literal(utcnow(), SUPPRESSION.c.created_at.type),
        ).union_all(
            select(
                literal("email"),
                literal("c@x.ru"),
                literal("unsubscribe"),
                literal("test"),
                literal(utcnow(), SUPPRESSION.c.created_at.type),
            )
        )
        columns = ["channel", "address", "reason", "source", "created_at"]
        written = rowcount(connection, insert_ignoring(connection, SUPPRESSION).from_select(columns, rows))
    assert written == 1
    assert _count(db, SUPPRESSION) == 2


def test_begin_write_commits_on_success_and_rolls_back_on_error(db: Engine) -> None:
    with db.connect() as connection:
        with begin_write(connection):
            connection.execute(insert(SUPPRESSION).values(**_suppression("kept@x.ru")))
        with pytest.raises(RuntimeError), begin_write(connection):
            connection.execute(insert(SUPPRESSION).values(**_suppression("lost@x.ru")))
            raise RuntimeError("undo")
    with db.connect() as connection:
        addresses = connection.execute(select(SUPPRESSION.c.address)).scalars().all()
    assert addresses == ["kept@x.ru"]


def test_relaxed_durability_is_undone(db: Engine) -> None:
    with db.connect() as connection:
        relax_durability(connection)
        relaxed = _synchronous_commit(connection)
        restore_durability(connection)
        restored = _synchronous_commit(connection)
        connection.commit()
        with begin_write(connection):
            relax_durability(connection, transaction_only=True)
            local = _synchronous_commit(connection)
        after = _synchronous_commit(connection)
    if dialect_of(db) == POSTGRESQL:
        assert (relaxed, restored, local, after) == ("off", "on", "off", "on")
    else:  # SQLite commits as its synchronous pragma says: nothing to change
        assert (relaxed, restored, local, after) == (None, None, None, None)


def _synchronous_commit(connection: object) -> str | None:
    from sqlalchemy import Connection

    assert isinstance(connection, Connection)
    if dialect_of(connection) != POSTGRESQL:
        return None
    return str(connection.exec_driver_sql("SHOW synchronous_commit").scalar_one())


def test_locked_rows_and_tables_keep_other_writers_out_until_the_end(db: Engine) -> None:
    customer = _customer(db, "lock@x.ru")
    with db.connect() as holder:
        with begin_write(holder):
            lock_rows(holder, select(CUSTOMER.c.id).where(CUSTOMER.c.id == customer))
            lock_table(holder, SUPPRESSION)
            if dialect_of(db) == POSTGRESQL:
                with db.connect() as other:
                    with pytest.raises(OperationalError, match="could not obtain lock"):
                        other.exec_driver_sql(
                            f"SELECT id FROM customer WHERE id = {customer} FOR UPDATE NOWAIT"
                        )
                    other.rollback()
                    with pytest.raises(OperationalError, match="could not obtain lock"):
                        other.exec_driver_sql("LOCK TABLE suppression IN SHARE ROW EXCLUSIVE MODE NOWAIT")
                    other.rollback()
        # released at the end of the transaction
        if dialect_of(db) == POSTGRESQL:
            with db.connect() as other:
                other.exec_driver_sql(f"SELECT id FROM customer WHERE id = {customer} FOR UPDATE NOWAIT")
                other.rollback()


def test_the_planner_learns_the_rows_after_analyze(db: Engine) -> None:
    for n in range(5):
        _customer(db, f"c{n}@x.ru")
    with db.connect() as connection:
        analyze(connection, CUSTOMER.name)
        rows = planner_rows(connection, CUSTOMER.name)
        connection.commit()
    assert rows == (5.0 if dialect_of(db) == POSTGRESQL else None)


def test_allocated_ids_follow_the_existing_ones_and_insert(db: Engine) -> None:
    first = _customer(db, "first@x.ru")
    with db.begin() as connection:
        ids = allocate_ids(connection, CUSTOMER.name, 3)
        assert allocate_ids(connection, CUSTOMER.name, 0) == []
        now = utcnow()
        connection.execute(
            insert(CUSTOMER),
            [
                {"id": i, "external_id": f"N{i}", "source": "test", "attributes": {}, "email": f"n{i}@x.ru"}
                | {"created_at": now, "updated_at": now}
                for i in ids
            ],
        )
    assert len(set(ids)) == 3 and min(ids) > first
    assert _customer(db, "after@x.ru") > max(ids)


def test_new_ids_number_the_rows_of_an_insert_select(db: Engine) -> None:
    existing = _customer(db, "e@x.ru")
    metadata = MetaData()
    source = Table("numbers", metadata, Column("n", Integer), Column("label", String(20)))
    metadata.create_all(db)
    with db.begin() as connection:
        connection.execute(insert(source), [{"n": n, "label": f"new{n}@x.ru"} for n in (3, 1, 2)])
        now = literal(utcnow(), CUSTOMER.c.created_at.type)
        connection.execute(
            insert(CUSTOMER).from_select(
                ["id", "external_id", "source", "attributes", "email", "created_at", "updated_at"],
                select(
                    new_id(connection, CUSTOMER.name, source.c.n),
                    source.c.label,
                    literal("test"),
                    literal({}, CUSTOMER.c.attributes.type),
                    source.c.label,
                    now,
                    now,
                ),
            )
        )
    with db.connect() as connection:
        made = connection.execute(
            select(CUSTOMER.c.id, CUSTOMER.c.email).where(CUSTOMER.c.id != existing)
        ).all()
    metadata.drop_all(db)
    assert sorted(email for _, email in made) == ["new1@x.ru", "new2@x.ru", "new3@x.ru"]
    assert len({i for i, _ in made}) == 3 and min(i for i, _ in made) > existing


def test_temporary_tables_are_gone_after_the_transaction(db: Engine) -> None:
    scratch = Table(
        "scratch_test", MetaData(), Column("n", Integer), prefixes=["TEMPORARY"], postgresql_on_commit="DROP"
    )
    with db.connect() as connection:
        with begin_write(connection):
            scratch.create(connection)
            connection.execute(insert(scratch).values(n=1))
            drop_temporary(connection, scratch)
        assert not inspect(connection).has_table("scratch_test")
        scratch.create(connection)  # the name is free again
        drop_temporary(connection, scratch)
        connection.commit()


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_render_spells_a_query_for_either_database(dialect: str) -> None:
    text = render(select(CUSTOMER.c.id).where(CUSTOMER.c.email == "a@x.ru"), dialect)
    assert "customer.email = 'a@x.ru'" in text


def test_render_refuses_an_unknown_dialect() -> None:
    with pytest.raises(ValueError, match="unknown SQL dialect 'mysql'"):
        render(select(CUSTOMER.c.id), "mysql")


def test_spelling_picks_the_databases_own(db: Engine) -> None:
    assert spelling(db, postgresql="pg", sqlite="lite") == (
        "pg" if db.dialect.name == "postgresql" else "lite"
    )


def test_times_are_stored_alike(db: Engine) -> None:
    at = dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC)
    with db.connect() as connection:
        assert connection.execute(select(literal(at, CUSTOMER.c.created_at.type))).scalar_one() == at
