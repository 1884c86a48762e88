"""Finding the line of a TOML path, for error messages."""

from __future__ import annotations

import pytest

from engine.settings.toml_lines import find_line, format_path, parse_path

TEXT = """# comment
[engine]
timezone = "Europe/Moscow"

[scores.churn]
rules = [
  { when = "a", points = 40 },
  { when = "b", points = 15 },
]

[segments.large]
rule = "abc_class == 'A'"
[segments."odd name"]
strategy = 'loyalty'
rule = \"\"\"
orders_count > 1
\"\"\"
[metrics]
abc = { A = 0.8, B = 0.95 }
custom.x.aggregate = "count"
"""


@pytest.mark.parametrize(
    ("path", "line"),
    [
        ("engine.timezone", 3),
        ("scores.churn", 5),
        ("scores.churn.rules", 6),
        ("scores.churn.rules[0].when", 7),
        ("scores.churn.rules[1].points", 8),
        ("segments.large.rule", 12),
        ("segments.odd name.rule", 15),
        ("metrics.abc.B", 19),
        ("metrics.custom.x.aggregate", 20),
        ("segments.missing.rule", None),
        ("nowhere", None),
    ],
)
def test_find_line(path: str, line: int | None) -> None:
    assert find_line(TEXT, path) == line


def test_paths_round_trip() -> None:
    assert parse_path("a.b[1].c") == ["a", "b", 1, "c"]
    assert format_path(["a", "b", 1, "c"]) == "a.b[1].c"
