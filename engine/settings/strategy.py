"""Strategies: what a segment is worked with, and what a campaign serves.

The third stage of CRM applies one of three strategies to each segment:

* ``loyalty``: raise loyalty, a long-term partnership (large and valuable customers);
* ``stimulation``: more purchases of standard products;
* ``cost_reduction``: cheaper channels and fewer contacts.

A segment of config.toml may name its strategy; every campaign names the one
it serves, and budgets may allocate money per strategy (``[allocations.strategy]``).
"""

from __future__ import annotations

from typing import Literal

Strategy = Literal["loyalty", "stimulation", "cost_reduction"]
STRATEGIES: tuple[str, ...] = ("loyalty", "stimulation", "cost_reduction")
