"""Mutations of the example workspace: whatever a marketer saves, ``crm`` answers 0 or 1, never a traceback.

Each example copies config.toml, campaigns/ (with its templates) and budgets/,
applies one to three mutations (a value replaced by a hostile one or by the
original with its numbers pushed past every limit, a line deleted or
repeated, a key added, a byte-order mark, CRLF, cp1251, a cut or a NUL, a
template spliced with hostile Jinja) and runs ``crm validate``. What it
refuses names the file; what it accepts must then survive ``refresh``,
``plan``, ``budget``, ``preview`` and a loyalty earn on a database with
customers, each exiting 0 or 1 and, on 1, leaving every table as it was.
Whatever ``validate`` refuses, ``plan`` refuses too.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import event, given, note
from hypothesis import strategies as st
from sqlalchemy import Engine

from tests.factories import add_customer, add_purchase, utc
from tests.fuzz.hostile import FUZZ, check_outcome, literals, near, row_counts, run, toml_string

ROOT = Path(__file__).resolve().parents[2]
TOML_FILES = ["config.toml", "campaigns/winback.toml", "campaigns/churn_call.toml", "budgets/2027-Q1.toml"]
TEMPLATES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "campaigns" / "templates").iterdir())
NAMES = [Path(name).name for name in TOML_FILES + TEMPLATES] + ["campaigns", "budgets", "templates"]
# A key = value anywhere (top level or in an inline table): the value a quoted string or a bare scalar.
ASSIGNMENT = re.compile(
    r'(?P<key>[A-Za-z_][\w.-]*|"[^"\n]*")[ \t]*=[ \t]*(?P<value>"(?:[^"\\\n]|\\.)*"|[^,{}\[\]#"\n]+)'
)
KEYS = sorted(
    {
        m.group("key")
        for name in TOML_FILES
        for m in ASSIGNMENT.finditer((ROOT / name).read_text(encoding="utf-8"))
    }
    | {"unknown_key", "schedule", "end", "start", "priority", "timezone", "template", "subject", "campaign"}
)
JINJA = [
    "{{ ",
    "{% for i in range(10**9) %}x{% endfor %}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{{ 'x' * 10**9 }}",
    "{{ 9 ** 999999 }}",
    "{{ customer.nope.deeper }}",
    "{{ 1 / 0 }}",
    "{% include '/etc/passwd' %}",
    "{% extends '../../config.toml' %}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ customer.first_name|unknown_filter }}",
    "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
    "[/]",
    "\x00",
]


def _assignment(text: str, draw: st.DrawFn) -> str:
    found = list(ASSIGNMENT.finditer(text))
    if not found:
        return text
    match = draw(st.sampled_from(found))
    original = match.group("value").rstrip()
    value = draw(st.one_of(literals, near(original)))
    note(f"{match.group('key')} = {original!r} -> {value!r}")
    return text[: match.start("value")] + value + " " + text[match.end("value") :]


def _whole_value(text: str, draw: st.DrawFn) -> str:
    lines = text.split("\n")
    indexes = [i for i, line in enumerate(lines) if re.match(r"^[\w.\"-]+\s*=", line)]
    if not indexes:
        return text
    i = draw(st.sampled_from(indexes))
    lines[i] = lines[i].split("=", 1)[0] + "= " + draw(literals)
    note(f"line {i + 1} -> {lines[i]!r}")
    return "\n".join(lines)


def _lines(text: str, draw: st.DrawFn) -> str:
    lines = text.split("\n")
    i = draw(st.integers(0, len(lines) - 1))
    kind = draw(st.sampled_from(["delete", "repeat", "insert"]))
    note(f"{kind} at line {i + 1}: {lines[i]!r}")
    if kind == "delete":
        del lines[i]
    elif kind == "repeat":
        lines.insert(i, lines[i])
    else:
        lines.insert(i, f"{draw(st.sampled_from(KEYS))} = {draw(literals)}")
    return "\n".join(lines)


def _bytes(data: bytes, draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["bom", "crlf", "cp1251", "cut", "nul", "latin1-byte"]))
    note(f"bytes: {kind}")
    if kind == "bom":
        return b"\xef\xbb\xbf" + data
    if kind == "crlf":
        return data.replace(b"\n", b"\r\n")
    if kind == "cp1251":
        return (
            data.decode("utf-8").replace("=", "= ", 1).replace("shop", "магазин").encode("cp1251", "replace")
        )
    at = draw(st.integers(0, len(data)))
    if kind == "cut":
        return data[:at]
    return data[:at] + (b"\x00" if kind == "nul" else b"\xff") + data[at:]


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, bytes]:
    """The workspace's files after one to three mutations."""
    files = {name: (ROOT / name).read_bytes() for name in TOML_FILES + TEMPLATES}
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["assignment", "assignment", "whole", "lines", "bytes", "template"]))
        if kind == "template":
            name = draw(st.sampled_from(TEMPLATES))
            text = files[name].decode("utf-8", "replace")
            at = draw(st.integers(0, len(text)))
            cut = draw(st.integers(0, 40))
            jinja = draw(st.sampled_from(JINJA))
            note(f"{name}: {text[at : at + cut]!r} -> {jinja!r}")
            files[name] = (text[:at] + jinja + text[at + cut :]).encode("utf-8")
            continue
        name = draw(st.sampled_from(TOML_FILES))
        note(f"{name}:")
        if kind == "bytes":
            files[name] = _bytes(files[name], draw)
            continue
        text = files[name].decode("utf-8", "replace")
        change = {"assignment": _assignment, "whole": _whole_value, "lines": _lines}[kind]
        files[name] = change(text, draw).encode("utf-8", "surrogatepass")
    return files


@pytest.fixture
def customers(db: Engine, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """A database with three customers who bought, the one every example's commands use."""
    monkeypatch.setenv("CRM_DATABASE_URL", db_url)
    monkeypatch.setenv("CRM_LINKS__SECRET", "fuzz-secret")
    monkeypatch.delenv("CRM_CONFIG", raising=False)
    with db.begin() as connection:
        for n, amount in enumerate(("120000", "900", "15000"), start=1):
            customer = add_customer(
                connection,
                external_id=f"C{n}",
                first_name="Анна",
                email=f"c{n}@example.ru",
                consent_email=True,
            )
            add_purchase(connection, customer, utc(2026, 8, n), amount, category="cosmetics")
    yield db


def _write(files: dict[str, bytes]) -> Path:
    workspace = Path(tempfile.mkdtemp(prefix="crm-fuzz-"))
    for name, data in files.items():
        (workspace / name).parent.mkdir(parents=True, exist_ok=True)
        (workspace / name).write_bytes(data)
    return workspace


def _unchanged_on_failure(db: Engine, *args: str) -> int:
    before = row_counts(db)
    outcome = run(*args)
    check_outcome(outcome)
    if outcome.code == 1:
        assert row_counts(db) == before, (
            f"crm {' '.join(args)} failed and changed the database\n{outcome.err}"
        )
    return outcome.code


@FUZZ
@given(files=mutated(), order=st.integers(0, 10**9))
def test_a_mutated_workspace_is_validated_or_refused_by_name(
    customers: Engine, files: dict[str, bytes], order: int
) -> None:
    workspace = _write(files)
    try:
        config = str(workspace / "config.toml")
        validate = run("--config", config, "validate")
        check_outcome(validate, names=NAMES)
        event(f"validate exit {validate.code}")
        if validate.code == 1:
            plan = run("--config", config, "plan", "--at", "2027-01-11T09:00")
            check_outcome(plan)
            assert plan.code == 1, f"validate refused what plan accepts:\n{validate.err}"
            return
        db = customers
        _unchanged_on_failure(db, "--config", config, "refresh")
        _unchanged_on_failure(db, "--config", config, "plan", "--at", "2027-01-11T09:00", "--days", "7")
        _unchanged_on_failure(db, "--config", config, "budget", "--period", "2027-Q1", "--format", "json")
        out = str(workspace / "preview.html")
        for step in ("0", "1"):
            _unchanged_on_failure(
                db, "--config", config, "preview", "winback", "--customer", "C1", "--step", step, "--out", out
            )
        _unchanged_on_failure(
            db, "--config", config, "loyalty", "earn", "C1", "--order", f"F-{order}", "--amount", "2400"
        )
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


def test_the_unmutated_workspace_passes_every_command(customers: Engine, tmp_path: Path) -> None:
    """The baseline the mutations start from: every command above exits 0 on the example as shipped."""
    workspace = _write({name: (ROOT / name).read_bytes() for name in TOML_FILES + TEMPLATES})
    config = str(workspace / "config.toml")
    for args in (
        ("validate",),
        ("refresh",),
        ("plan", "--at", "2027-01-11T09:00", "--days", "7"),
        ("budget", "--period", "2027-Q1", "--format", "json"),
        ("preview", "winback", "--customer", "C1", "--out", str(tmp_path / "p.html")),
        ("loyalty", "earn", "C1", "--order", "F-1", "--amount", "2400"),
    ):
        outcome = run("--config", config, *args)
        assert outcome.code == 0, f"{args}: {outcome.err}"
    assert toml_string('a"b') == '"a\\"b"'
