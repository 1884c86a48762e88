"""What an adversarial user types: hostile values, and ``crm`` run in-process with what it printed.

Every fuzz test runs ``crm`` through :func:`engine.cli.main`, the console
script's own function, so exit codes and printed messages are those a user
gets, at in-process speed. :func:`check_outcome` is the one oracle they share:
exit 0 or 1, never 2, no traceback, and an exit 1 says what was wrong.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text
from sqlmodel import SQLModel

from engine.cli import main

# Bounded so the suite stays within minutes; CRM_FUZZ_EXAMPLES raises it for a long local run.
FUZZ = settings(
    max_examples=int(os.environ.get("CRM_FUZZ_EXAMPLES", "40")),
    deadline=None,
    derandomize=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],  # no explain: slow, little use
)

# Values that broke a tool before: markup, sizes, calendar edges, paths out, zone folders, numbers past 2^63.
HOSTILE_STRINGS = [
    "",
    " ",
    "[/]",
    "[bold red]x[/]",
    "[[variants]]",
    "\\",
    "'",
    '"',
    "\n",
    "a\nb",
    "a\rb",
    "\x00",
    "\u202e",
    '=HYPERLINK("http://x";"y")',
    "+1",
    "-1",
    "@SUM(A1)",
    "99999999999999d",
    "99999999999999999999",
    "1e30",
    "-1e30",
    "NaN",
    "Infinity",
    "-0",
    "0",
    "0d",
    "-5d",
    "12m",
    "1y",
    "Europe",
    "Mars/Olympus",
    "UTC",
    "Etc/GMT+14",
    "../../config.toml",
    "/etc/passwd",
    "/",
    ".",
    "25:00-26:00",
    "21:00-09:00",
    "00:00-00:00",
    "2/week",
    "0/week",
    "99999999999999/day",
    "9999-12-31",
    "0001-01-01",
    "31.02.2020",
    "{{ x ",
    "{% for %}",
    "{{ customer.nope.deeper }}",
    "email",
    "call",
    "sms",
    "true",
    "* * * * *",
    "0 10 * * MON",
    "61 25 * * *",
    "@reboot",
    "é" * 300,
    "x" * 5000,
]
HOSTILE_NUMBERS = [0, -1, 1, 2**31, 2**63 - 1, 2**63, -(2**63) - 1, 2**64, 10**30, 99999999999999]


def toml_string(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(value, ensure_ascii=False)


def toml_float(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


_texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
strings = st.one_of(st.sampled_from(HOSTILE_STRINGS), _texts)
numbers = st.one_of(st.sampled_from(HOSTILE_NUMBERS), st.integers(-(10**6), 10**6))

scalar_literals = st.one_of(
    strings.map(toml_string),
    numbers.map(str),
    st.floats().map(toml_float),
    st.sampled_from(
        [
            "true",
            "false",
            "9999-12-31",
            "0001-01-01",
            "1970-01-01",
            "2027-02-30",
            "25:00:00",
            "00:00:00",
            "23:59:59.999999",
            "1979-05-27T07:32:00Z",
            "9999-12-31T23:59:59+14:00",
            "0001-01-01T00:00:00-12:00",
        ]
    ),
)
literals = st.recursive(
    scalar_literals,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda items: "[" + ", ".join(items) + "]"),
        st.dictionaries(st.sampled_from(["a", "when", "points", "name", "x"]), inner, max_size=3).map(
            lambda table: "{ " + ", ".join(f"{k} = {v}" for k, v in table.items()) + " }"
        ),
    ),
    max_leaves=5,
)


def near(original: str) -> st.SearchStrategy[str]:
    """The original literal with each number in it replaced by a hostile one: "2/week" -> "2**64/week"."""
    if not re.search(r"\d", original):
        return st.just(original)
    return st.sampled_from(HOSTILE_NUMBERS).map(lambda n: re.sub(r"\d+(\.\d+)?", str(n), original))


@dataclass(frozen=True)
class Outcome:
    args: tuple[str, ...]
    code: int
    out: str
    err: str


def run(*args: str) -> Outcome:
    """``crm ARGS`` in this process: its exit code and what it printed."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return Outcome(tuple(args), code, out.getvalue(), err.getvalue())


def check_outcome(outcome: Outcome, *, names: Iterable[str] = ()) -> None:
    """Exit 0 or 1, never 2 and no traceback; an exit 1 says what was wrong (naming one of ``names``)."""
    shown = f"crm {' '.join(outcome.args)[:2000]}\n--- exit {outcome.code}\n{outcome.err[-4000:]}"
    assert outcome.code in (0, 1), shown
    assert "Traceback" not in outcome.err and "internal error" not in outcome.err, shown
    if outcome.code == 1:
        assert outcome.err.strip(), shown
        wanted = list(names)
        if wanted:
            assert any(name in outcome.err for name in wanted), f"names none of {wanted}\n{shown}"


def row_counts(db: Engine) -> dict[str, int]:
    """How many rows every table has: an exit 1 must leave them as they were."""
    with db.connect() as connection:
        return {
            table.name: connection.execute(text(f'SELECT COUNT(*) FROM "{table.name}"')).scalar_one()
            for table in SQLModel.metadata.sorted_tables
        }


__all__ = [
    "FUZZ",
    "HOSTILE_NUMBERS",
    "HOSTILE_STRINGS",
    "Outcome",
    "check_outcome",
    "literals",
    "near",
    "numbers",
    "row_counts",
    "run",
    "strings",
    "toml_string",
]
