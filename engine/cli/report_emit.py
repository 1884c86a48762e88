"""One way every report command prints or writes its result: table, JSON, CSV or XLSX."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from rich.console import RenderableType

from engine.cli.app import console, print_json, to_jsonable
from engine.reporting import safe_rows, save_workbook


def emit_report(
    output_format: str,
    output: Path | None,
    *,
    tables: Callable[[], Iterable[RenderableType]],
    data: Callable[[], dict[str, Any]],
    rows: Callable[[], Iterable[list[str]]],
    workbook: Callable[[], Workbook],
    written: str | None = None,
) -> None:
    """Print or write a report in ``output_format`` (only the chosen form is built).

    JSON and CSV go to stdout without ``output``; CSV is ``;``-separated with
    formula-safe cells (and a BOM in a file, for Excel); XLSX needs ``output``
    (:func:`engine.cli.app.check_output_format` checks that first). ``written``
    is said after the file's name.
    """
    if output_format == "table":
        for renderable in tables():
            console.print(renderable)
        return
    if output_format == "json":
        if output is None:
            print_json(data())
            return
        text = json.dumps(to_jsonable(data()), ensure_ascii=False, indent=2) + "\n"
        output.write_text(text, encoding="utf-8")
    elif output_format == "csv":
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=";").writerows(safe_rows(rows()))
        if output is None:
            sys.stdout.write(buffer.getvalue())
            return
        output.write_text("\ufeff" + buffer.getvalue(), encoding="utf-8")
    else:
        assert output is not None
        save_workbook(workbook(), output)
    console.print(f"wrote {output}" + (f" ({written})" if written else ""), soft_wrap=True)
