"""Deciding the date order and the decimal separator from all the values of a file.

Dates: a value ``NN.NN.YYYY`` whose first number is above 12 can only be
dd.mm.yyyy, one whose second number is above 12 only mm.dd.yyyy. The file
decides when it has evidence one way and none the other; when it has only
values that read both ways (``03.04.2025``) or evidence both ways, the import
is refused with an error naming ``date_format``. ISO dates need no decision.

Numbers: ``1234,5`` or ``1 234,50`` can only have a decimal comma, ``1234.5``
or ``1,234.50`` only a decimal point; ``1,234`` and ``1.234`` read both ways.
The same rule: evidence one way decides, ambiguity or contradiction refuses
(naming ``decimal_comma``); no separators at all leaves it undecided (None).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from engine.customers.importing.normalise import number_under, separated_date_parts
from engine.errors import ImportFileError


@dataclass
class DateEvidence:
    """Collects the date values of a file and decides their order."""

    day_first: tuple[int, str] | None = None
    month_first: tuple[int, str] | None = None
    ambiguous: tuple[int, str] | None = None
    either: bool = False
    iso: bool = False
    separators: Counter[str] = field(default_factory=Counter)

    def add(self, text: str, line: int) -> None:
        text = text.strip()
        parts = separated_date_parts(text)
        if parts is None:
            if len(text) >= 10 and text[4:5] == "-" and text[:4].isdigit():
                self.iso = True
            return
        self.separators[next(ch for ch in text if ch in "./-")] += 1
        first, second = parts
        if first == second or not (1 <= first <= 31 and 1 <= second <= 31):
            self.either = self.either or first == second
        elif first > 12 and second <= 12:
            self.day_first = self.day_first or (line, text)
        elif second > 12 and first <= 12:
            self.month_first = self.month_first or (line, text)
        elif first <= 12 and second <= 12:
            self.ambiguous = self.ambiguous or (line, text)

    def decide(self, path: Path) -> tuple[str | None, str | None]:
        """(order ``dmy``/``mdy``/None, the format to report) or ImportFileError."""
        sep = self.separators.most_common(1)[0][0] if self.separators else "."
        if self.day_first and self.month_first:
            (line_d, text_d), (line_m, text_m) = self.day_first, self.month_first
            raise ImportFileError(
                str(path),
                f"dates disagree: line {line_d} has {text_d!r} (only dd{sep}mm{sep}yyyy), line {line_m} has "
                f"{text_m!r} (only mm{sep}dd{sep}yyyy); pass --date-format "
                f"(e.g. --date-format '%d{sep}%m{sep}%Y')",
            )
        if self.day_first:
            return "dmy", f"%d{sep}%m{sep}%Y"
        if self.month_first:
            return "mdy", f"%m{sep}%d{sep}%Y"
        if self.ambiguous and sep == ".":
            # dd.mm.yyyy: every locale that writes dates with dots puts the day first (Russian Excel too)
            return "dmy", f"%d{sep}%m{sep}%Y"
        if self.ambiguous:
            line, text = self.ambiguous
            raise ImportFileError(
                str(path),
                f"ambiguous dates: {text!r} (line {line}) reads as dd{sep}mm{sep}yyyy or mm{sep}dd{sep}yyyy "
                f"and no date in the file decides; pass --date-format "
                f"(e.g. --date-format '%d{sep}%m{sep}%Y')",
            )
        if self.either:
            return "dmy", f"%d{sep}%m{sep}%Y"
        if self.iso:
            return None, "%Y-%m-%d"
        return None, None


@dataclass
class DecimalEvidence:
    """Collects the number values of a file and decides the decimal separator."""

    comma: tuple[int, str] | None = None
    point: tuple[int, str] | None = None
    ambiguous: tuple[int, str] | None = None

    def add(self, text: str, line: int) -> None:
        text = text.strip()
        if "," not in text and "." not in text:
            return
        comma, point = number_under(text, True), number_under(text, False)
        if comma is not None and point is not None:
            if comma != point:
                self.ambiguous = self.ambiguous or (line, text)
        elif comma is not None:
            self.comma = self.comma or (line, text)
        elif point is not None:
            self.point = self.point or (line, text)

    def decide(self, path: Path) -> bool | None:
        """True for a decimal comma, False for a point, None when no value tells."""
        if self.comma and self.point:
            raise ImportFileError(
                str(path),
                f"numbers disagree: line {self.comma[0]} has {self.comma[1]!r} (decimal comma), "
                f"line {self.point[0]} has {self.point[1]!r} (decimal point); "
                "pass --decimal-comma or --decimal-point",
            )
        if self.comma:
            return True
        if self.point:
            return False
        if self.ambiguous:
            line, text = self.ambiguous
            raise ImportFileError(
                str(path),
                f"ambiguous number {text!r} (line {line}): a decimal or a thousands separator, and no number "
                "in the file decides; pass --decimal-comma (for 1 234,50) or --decimal-point",
            )
        return None
