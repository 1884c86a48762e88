"""Files people open in spreadsheets: cells that cannot run as formulas."""

from __future__ import annotations

import re

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?[\d\s().,-]+$")  # a phone (+7 916 ...) or an amount (-100.50): harmless


def formula_safe(text: str) -> str:
    """``text`` with a leading ``'`` when a spreadsheet would run it as a formula.

    Cells starting with ``=``, ``+``, ``-``, ``@``, tab or CR are escaped,
    except plain numbers and phone numbers, which cannot call anything.
    """
    if text.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.match(text):
        return "'" + text
    return text
