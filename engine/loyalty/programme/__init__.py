"""A loyalty programme as configured: its settings, zone and dates, and its earn rules compiled.

* :mod:`~engine.loyalty.programme.definition`: :class:`Programme` and how config.toml becomes one;
* :mod:`~engine.loyalty.programme.dates`: every date derived from an earn (return window, expiry,
  tier windows), from the local date and time in the programme's zone;
* :mod:`~engine.loyalty.programme.earn_rules`: how many points a purchase or an event earns.
"""

from __future__ import annotations

from engine.loyalty.programme.dates import shift_days, shifted
from engine.loyalty.programme.definition import Programme, compile_programmes, period_end, programme_named
from engine.loyalty.programme.earn_rules import EARNING_SOURCES, PurchaseRuleScope

__all__ = [
    "EARNING_SOURCES",
    "Programme",
    "PurchaseRuleScope",
    "compile_programmes",
    "period_end",
    "programme_named",
    "shift_days",
    "shifted",
]
