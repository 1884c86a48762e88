"""A loyalty programme as configured: its settings, zone and dates, and its earn rules compiled."""

from __future__ import annotations

from engine.loyalty.programme.definition import Programme, compile_programmes, period_end, programme_named
from engine.loyalty.programme.earn_rules import EARNING_SOURCES, PurchaseRuleScope

__all__ = [
    "EARNING_SOURCES",
    "Programme",
    "PurchaseRuleScope",
    "compile_programmes",
    "period_end",
    "programme_named",
]
