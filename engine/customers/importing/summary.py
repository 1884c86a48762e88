"""The result of one import, as the CLI prints it and tests check it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class ImportSummary:
    """What one import did: one outcome per data row, plus how the file was read.

    ``rows`` = ``inserted + updated + merged + unchanged + rejected``.
    ``detected`` names the reading settings (encoding, delimiter, date_format,
    decimal_comma) that were detected from the file rather than given.
    """

    kind: str
    path: Path
    source: str
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    merged: int = 0
    unchanged: int = 0
    rejected: int = 0
    rejects_path: Path | None = None
    encoding: str | None = None
    delimiter: str | None = None
    date_format: str | None = None
    decimal_comma: bool | None = None
    import_id: int | None = None
    sheet: str | None = None
    detected: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The summary as plain JSON-ready values (paths as strings)."""
        data = asdict(self)
        data["path"] = str(self.path)
        data["rejects_path"] = str(self.rejects_path) if self.rejects_path else None
        return data

    def describe(self) -> list[str]:
        """Human-readable lines: the counts, then how the file was read."""
        lines = [
            f"{self.kind} from {self.path} (source {self.source}): {self.rows} rows, "
            f"{self.inserted} inserted, {self.updated} updated, {self.merged} merged, "
            f"{self.unchanged} unchanged, {self.rejected} rejected"
        ]
        settings = {
            "encoding": self.encoding,
            "delimiter": repr(self.delimiter) if self.delimiter else None,
            "sheet": self.sheet,
            "date_format": self.date_format,
            "decimal_comma": self.decimal_comma,
        }
        read = [
            f"{name} {value}{' (detected)' if name in self.detected else ''}"
            for name, value in settings.items()
            if value is not None
        ]
        if read:
            lines.append("read with " + ", ".join(read))
        if self.rejects_path:
            lines.append(f"rejected rows written to {self.rejects_path}")
        return lines
