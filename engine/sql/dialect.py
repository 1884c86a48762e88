"""SQL functions spelled once per database, for the loyalty set-based statements.

``dialect_function("loyalty_least", Integer(), "LEAST({0}, {1})", "min({0}, {1})")``
is a SQLAlchemy function whose arguments render into the PostgreSQL or the
SQLite template: ``{0}``, ``{1}``... name them one by one, ``{args}`` all of
them joined by commas.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeEngine


def dialect_function(
    name: str, type_: TypeEngine[Any], postgresql: str, sqlite: str, doc: str = ""
) -> type[FunctionElement[Any]]:
    """A function class rendering ``postgresql`` or ``sqlite`` with its arguments."""
    function: type[FunctionElement[Any]] = type(
        name, (FunctionElement,), {"type": type_, "name": name, "inherit_cache": True, "__doc__": doc}
    )

    def spelled(template: str) -> Any:
        def render(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> str:
            parts = [compiler.process(clause, **kw) for clause in element.clauses]
            return template.format(*parts, args=", ".join(parts))

        return render

    compiles(function)(spelled(postgresql))
    compiles(function, "sqlite")(spelled(sqlite))
    return function
