"""One way every report command prints or writes its result: table, JSON, CSV or XLSX.

A file is written whole or not at all (:func:`engine.reporting.write_atomically`);
a path that cannot be written is an :class:`~engine.errors.OutputError` naming
``--output``. Commands check the path before the work with :func:`check_output`.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import RenderableType

from engine.cli.common import console, print_json, to_jsonable
from engine.reporting import check_output_file, csv_writer, save_workbook, write_atomically

if TYPE_CHECKING:
    from openpyxl import Workbook


def check_output(output: Path | None, option: str = "--output") -> Path | None:
    """``output`` if a file can be written there (None if not given), else OutputError; before the work."""
    return None if output is None else check_output_file(output, option=option)


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
    (:func:`engine.cli.common.check_output_format` checks that first). ``written``
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
        write_atomically(output, text.encode("utf-8"), option="--output")
    elif output_format == "csv":
        buffer = io.StringIO()
        csv_writer(buffer, delimiter=";").writerows(rows())
        if output is None:
            sys.stdout.write(buffer.getvalue())
            return
        write_atomically(output, ("\ufeff" + buffer.getvalue()).encode("utf-8"), option="--output")
    else:
        assert output is not None
        save_workbook(workbook(), output, option="--output")
    console.print(f"wrote {output}" + (f" ({written})" if written else ""), soft_wrap=True, markup=False)
