"""The options of one import: what the caller knows about the file instead of detecting it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ImportOptions:
    """How to read an import file; every ``None`` means "detect, refuse when unsure".

    ``encoding``: ``utf-8``, ``utf-8-sig``, ``cp1251`` or any Python codec name.
    ``delimiter``: one of ``;`` ``,`` ``\\t`` ``|`` (or any single character).
    ``date_format``: a ``strptime`` format of the date part, e.g. ``%d.%m.%Y``;
    ISO dates (``2025-04-03``) are always understood.
    ``decimal_comma``: True when ``1 234,50`` means one thousand two hundred and
    thirty-four and a half.
    ``sheet``: the XLSX sheet to read (default: the first one).
    ``column_map``: ``{"File header": "field"}``; a field of ``""`` or ``"ignore"``
    skips that column, ``"attr.NAME"`` maps it to a custom attribute.
    ``ignore_unknown``: skip columns that map to no field instead of refusing the file.
    ``rejects_path``: where bad rows go (default: ``<file>.rejects.csv`` beside the input).
    """

    encoding: str | None = None
    delimiter: str | None = None
    date_format: str | None = None
    decimal_comma: bool | None = None
    sheet: str | None = None
    column_map: Mapping[str, str] = field(default_factory=dict)
    ignore_unknown: bool = False
    rejects_path: Path | None = None
