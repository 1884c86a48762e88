"""The rooms of engine/ and the rules between them (docs/architecture.md), checked on the source.

import-linter (in the test command) checks the direction of the layers and
the cycles between packages; these tests check what it cannot see:

* every package is in the README's layout and in docs/architecture.md;
* code outside a package imports it through its facade (``__init__`` with
  ``__all__``), code inside a package never through its own facade, and no
  private name crosses a module boundary;
* only ``engine/sql`` knows SQLAlchemy's dialects or asks which database it
  is on, and only ``engine/models/tables.py`` reaches into ``__table__``;
* every exception class lives in ``engine/errors.py``;
* no module imports itself back through any chain (grimp's import graph).
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ROOT / "engine"
MIGRATIONS = ENGINE / "db" / "migrations"


def _module(path: Path) -> str:
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return name.removesuffix(".__init__")


SOURCES = {_module(path): path for path in sorted(ENGINE.rglob("*.py")) if MIGRATIONS not in path.parents}
PACKAGES = {name for name, path in SOURCES.items() if path.name == "__init__.py"}


def _package(module: str) -> str:
    return module if module in PACKAGES else module.rsplit(".", 1)[0]


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _imports(path: Path) -> Iterator[tuple[int, str, str]]:
    """(line, imported module, imported name) of every ``from engine... import name``."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                yield node.lineno, node.module, alias.name


def _folders(text: str, heading: str) -> set[str]:
    """The ``name/`` folders named in the first code block after ``heading``."""
    block = text.split(heading, 1)[1].split("```", 2)[1]
    return set(re.findall(r"\b([a-z_]+)/", block))


def test_every_package_is_in_the_readme_layout_and_the_architecture_map() -> None:
    layout = _folders((ROOT / "README.md").read_text(encoding="utf-8"), "## Layout")
    rooms = _folders((ROOT / "docs" / "architecture.md").read_text(encoding="utf-8"), "## Every room")
    missing = [
        f"{where}: {package.replace('.', '/')}/"
        for package in sorted(PACKAGES - {"engine"})
        for where, listed in (("README.md Layout", layout), ("docs/architecture.md", rooms))
        if package.split(".")[-1] not in listed
    ]
    assert missing == []


def test_outside_code_imports_a_package_through_its_facade() -> None:
    wrong = []
    for importer, path in SOURCES.items():
        for line, module, name in _imports(path):
            if module not in SOURCES:
                continue
            package = _package(module)
            if module in PACKAGES:  # the facade
                if _inside(importer, module) and f"{module}.{name}" not in SOURCES:
                    wrong.append(f"{path.relative_to(ROOT)}:{line} imports its own facade {module}")
                elif not _inside(importer, module) and f"{module}.{name}" not in SOURCES:
                    exported = _all(module)
                    if name not in exported:
                        wrong.append(f"{path.relative_to(ROOT)}:{line} {module}.{name} is not in its __all__")
            elif not _inside(importer, package):
                wrong.append(f"{path.relative_to(ROOT)}:{line} reaches into {module} (import from {package})")
    assert wrong == []


def _all(package: str) -> set[str]:
    tree = ast.parse(SOURCES[package].read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return {ast.literal_eval(element) for element in node.value.elts}  # type: ignore[attr-defined]
    return set()


def test_no_private_name_crosses_a_module_boundary() -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {module}.{name}"
        for path in [*SOURCES.values(), *sorted((ROOT / "tests").rglob("*.py"))]
        for line, module, name in _imports(path)
        if module.startswith("engine") and name.startswith("_")
    ]
    assert wrong == []


def _reads_the_dialect(tree: ast.AST) -> Iterator[int]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "name":
            inner = node.value
            if isinstance(inner, ast.Attribute) and inner.attr == "dialect":
                yield node.lineno
        if isinstance(node, ast.Compare):
            names = [node.left, *node.comparators]
            if any(isinstance(n, ast.Name) and n.id == "dialect" for n in names):
                yield node.lineno
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            ("sqlalchemy.dialects", "sqlalchemy.ext.compiler")
        ):
            yield node.lineno
        if isinstance(node, ast.Import) and any(
            alias.name.startswith(("sqlalchemy.dialects", "sqlalchemy.ext.compiler")) for alias in node.names
        ):
            yield node.lineno


def test_only_the_sql_layer_knows_which_database_it_is_on() -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line}"
        for name, path in SOURCES.items()
        if not _inside(name, "engine.sql")
        for line in _reads_the_dialect(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert wrong == []


def test_the_dialect_check_finds_what_it_should() -> None:
    source = (
        "import sqlalchemy.dialects.sqlite\n"
        "from sqlalchemy.ext.compiler import compiles\n"
        "if connection.dialect.name == 'postgresql': pass\n"
        "if dialect == 'sqlite': pass\n"
    )
    assert sorted(set(_reads_the_dialect(ast.parse(source)))) == [1, 2, 3, 4]


def test_only_the_table_handles_reach_into_models() -> None:
    wrong = [
        f"{path.relative_to(ROOT)}"
        for name, path in SOURCES.items()
        if name != "engine.models.tables" and "__table__" in path.read_text(encoding="utf-8")
    ]
    assert wrong == []


def test_every_exception_class_lives_in_the_error_tree() -> None:
    wrong = []
    for name, path in SOURCES.items():
        if name == "engine.errors":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any(
                (isinstance(base, ast.Name) and base.id.endswith(("Error", "Exception")))
                or (isinstance(base, ast.Attribute) and base.attr.endswith(("Error", "Exception")))
                for base in node.bases
            ):
                wrong.append(f"{path.relative_to(ROOT)}:{node.lineno} class {node.name}")
    assert wrong == []


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return grimp.build_graph("engine")


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_itself_back(graph: grimp.ImportGraph) -> None:
    edges = {module: set(graph.find_modules_directly_imported_by(module)) for module in graph.modules}
    assert _cycles(edges) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(edges) == [["a", "b", "c"]]
