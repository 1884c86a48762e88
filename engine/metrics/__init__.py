"""Metrics and scores: per-customer figures and points per indicator, computed inside the database.

* :mod:`~engine.metrics.customer_metrics`: built-in metrics (RFM, ABC, lifecycle) and custom ones;
* :mod:`~engine.metrics.scores`: points per indicator from config.toml, summed per customer.
"""

from __future__ import annotations

from engine.metrics.customer_metrics import MetricsRefresh, business_today, refresh_metrics
from engine.metrics.scores import ScoreRefresh, refresh_scores

__all__ = [
    "MetricsRefresh",
    "ScoreRefresh",
    "business_today",
    "refresh_metrics",
    "refresh_scores",
]
