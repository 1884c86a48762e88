"""The one way the engine tells its two databases apart: one spelling per database, keyed by its name.

crm-engine runs on SQLite and on PostgreSQL. Wherever they need different
SQL, the difference is written once, in this package, as a pair of
spellings named ``postgresql=`` and ``sqlite=``:

* an **expression** (a function in a query) is a class made by
  :func:`construct`: SQLAlchemy's compiler picks the spelling of the
  database the query runs on, so queries are built without knowing it::

      Least = construct("least", Integer(), postgresql="LEAST({0}, {1})", sqlite="min({0}, {1})")

  ``{0}``, ``{1}``... are the arguments one by one, ``{args}`` all of them
  joined by commas;
* a **statement** that differs (a lock, statistics, how ids are drawn) is a
  function of :mod:`engine.sql.statements` taking the connection; it picks
  its spelling with :func:`spelling`, the only place that reads the
  dialect's name.

Everything else in the engine is written once for both databases and never
asks which one it is on.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Connection, Dialect, Engine
from sqlalchemy.dialects import postgresql as postgresql_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeEngine

POSTGRESQL = "postgresql"
SQLITE = "sqlite"
DIALECTS = (POSTGRESQL, SQLITE)

T = TypeVar("T")


def dialect_of(bind: Connection | Engine | Dialect) -> str:
    """The name of the database ``bind`` talks to: ``"postgresql"`` or ``"sqlite"``."""
    dialect = bind if isinstance(bind, Dialect) else bind.dialect
    if dialect.name not in DIALECTS:
        raise ValueError(f"unsupported database {dialect.name!r} (supported: {', '.join(DIALECTS)})")
    return dialect.name


def spelling(bind: Connection | Engine | Dialect, *, postgresql: T, sqlite: T) -> T:
    """The spelling (a text, a function, a value) for the database ``bind`` talks to."""
    return postgresql if dialect_of(bind) == POSTGRESQL else sqlite


def construct(
    name: str, type_: TypeEngine[Any], *, postgresql: str, sqlite: str, doc: str = ""
) -> type[FunctionElement[Any]]:
    """A SQL function class whose arguments render into the ``postgresql`` or the ``sqlite`` template."""
    function: type[FunctionElement[Any]] = type(
        name, (FunctionElement,), {"type": type_, "name": name, "inherit_cache": True, "__doc__": doc}
    )

    def spelled(template: str) -> Any:
        def render(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> str:
            parts = [compiler.process(clause, **kw) for clause in element.clauses]
            return template.format(*parts, args=", ".join(parts))

        return render

    compiles(function)(spelled(postgresql))
    compiles(function, SQLITE)(spelled(sqlite))
    return function


def render(statement: ClauseElement, dialect: str) -> str:
    """``statement`` as the SQL text ``dialect`` ("postgresql" or "sqlite") runs, values inlined."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown SQL dialect {dialect!r} (known: {', '.join(DIALECTS)})")
    compiler = postgresql_dialect.dialect() if dialect == POSTGRESQL else sqlite_dialect.dialect()
    return str(statement.compile(dialect=compiler, compile_kwargs={"literal_binds": True}))
