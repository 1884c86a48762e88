"""What the points are worth to finance: liability, breakage and partner settlement."""

from __future__ import annotations

from engine.loyalty.finance.output import liability_tables
from engine.loyalty.finance.reports import LiabilityReport, liability

__all__ = [
    "LiabilityReport",
    "liability",
    "liability_tables",
]
