"""Find the line of a TOML path in a file's text, so errors can name it.

``tomllib`` gives values, not positions. This locator reads the text line by
line, tracking table headers (``[a.b]``, ``[[a.b]]``) and keys (``k = ...``,
dotted ``a.b = ...``, keys of inline tables), and answers the line where a path
such as ``segments.lapsing.rule`` or ``scores.churn.rules[1].when`` is written.
It is exact for the usual layouts and falls back to the nearest enclosing table
or key it can find; it never raises.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(
    r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*="""
)
_INLINE_KEY = re.compile(r"""(?:^|[{,])\s*([A-Za-z0-9_-]+|"[^"]*"|'[^']*')\s*=""")

PathPart = str | int


def _split_key(key: str) -> list[str]:
    parts = re.findall(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""", key)
    return [p[1:-1] if p[:1] in "\"'" else p for p in parts]


def parse_path(path: str) -> list[PathPart]:
    """``"a.b[1].c"`` -> ``["a", "b", 1, "c"]``."""
    parts: list[PathPart] = []
    for token in re.finditer(r"([^.\[\]]+)|\[(\d+)\]", path):
        if token.group(1) is not None:
            parts.append(token.group(1))
        else:
            parts.append(int(token.group(2)))
    return parts


def format_path(parts: Sequence[PathPart]) -> str:
    """``["a", "b", 1, "c"]`` -> ``"a.b[1].c"``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def find_line(text: str, path: str | Sequence[PathPart]) -> int | None:
    """The 1-based line where ``path`` is defined in the TOML ``text``, or None."""
    wanted = parse_path(path) if isinstance(path, str) else list(path)
    keys = [p for p in wanted if isinstance(p, str)]
    if not keys:
        return None
    lines = text.splitlines()
    table: list[str] = []
    array_counts: dict[tuple[str, ...], int] = {}
    best: tuple[int, int] | None = None  # (matched key count, line)

    def consider(full: list[str], lineno: int) -> None:
        nonlocal best
        matched = 0
        for a, b in zip(full, keys, strict=False):
            if a != b:
                break
            matched += 1
        if matched == len(full) and matched > 0 and (best is None or matched > best[0]):
            best = (matched, lineno)

    other_item = False  # inside an item of an array of tables that is not the wanted one
    for index, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0] if "'" not in raw and '"' not in raw else raw
        header = _HEADER.match(line)
        if header:
            table = _split_key(header.group(2))
            other_item = False
            if header.group(1) == "[[":
                array_counts[tuple(table)] = array_counts.get(tuple(table), -1) + 1
                position = array_counts[tuple(table)]
                ints = [p for p in wanted if isinstance(p, int)]
                if ints and ints[0] != position:
                    other_item = True
                    continue
            consider(table, index)
            continue
        key = _KEY.match(line)
        if key and not other_item:
            full = table + _split_key(key.group(1))
            consider(full, index)
            rest = line[key.end() :]
            for inline in _INLINE_KEY.finditer(rest):
                consider([*full, *_split_key(inline.group(1))], index)
    line_of_array_item = _array_item_line(lines, wanted, best[1] if best else None)
    if line_of_array_item is not None:
        return line_of_array_item
    return best[1] if best else None


def _array_item_line(lines: list[str], wanted: list[PathPart], key_line: int | None) -> int | None:
    """For ``key[i].field`` in a multi-line inline array, the line of item ``i``."""
    if key_line is None:
        return None
    index_pos = next((n for n, p in enumerate(wanted) if isinstance(p, int)), None)
    if index_pos is None:
        return None
    item = wanted[index_pos]
    assert isinstance(item, int)
    start = lines[key_line - 1]
    if "[" not in start.split("=", 1)[-1]:
        return None
    count = -1
    depth = 0
    for lineno in range(key_line, len(lines) + 1):
        text = lines[lineno - 1]
        if lineno == key_line:
            text = text.split("=", 1)[-1]
        for char in text:
            if char == "{":
                if depth == 0:
                    count += 1
                    if count == item:
                        return lineno
                depth += 1
            elif char == "}":
                depth -= 1
            elif char == "]" and depth == 0:
                return None
    return None
