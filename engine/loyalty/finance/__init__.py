"""What the points are worth to finance: liability, breakage and partner settlement."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.lazy import lazy_names
from engine.loyalty.finance.reports import LiabilityReport, liability

if TYPE_CHECKING:  # workbooks need openpyxl: imported when one is written
    from engine.loyalty.finance.output import liability_tables

__getattr__ = lazy_names(__name__, {"liability_tables": "engine.loyalty.finance.output"})

__all__ = [
    "LiabilityReport",
    "liability",
    "liability_tables",
]
