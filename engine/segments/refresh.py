"""Bring everything derived from the data up to date: metrics, scores, segments, in that order.

One refresh at a time: a second one (another ``crm refresh``, the scheduler's)
waits until the first is done, on PostgreSQL too, where two at once would
write the same customers' metrics side by side.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from sqlalchemy import Engine

from engine.clock import utcnow
from engine.config import Config
from engine.db import serialised
from engine.metrics import MetricsRefresh, ScoreRefresh, business_today, refresh_metrics, refresh_scores
from engine.segments.membership import SegmentRefreshResult, refresh_segments


@dataclass(frozen=True)
class RefreshResult:
    """What ``crm refresh`` did."""

    metrics: MetricsRefresh
    scores: list[ScoreRefresh]
    segments: list[SegmentRefreshResult]
    seconds: float


def refresh_all(
    engine: Engine, config: Config, *, as_of: dt.date | None = None, now: dt.datetime | None = None
) -> RefreshResult:
    """Refresh metrics, then scores, then segments (each set-based, inside the database).

    A refresh running elsewhere is waited for (:func:`engine.db.serialised`).
    """
    started = time.perf_counter()
    now = now or utcnow()
    as_of = as_of or business_today(config, now)
    with serialised(engine, "refresh"):
        metrics = refresh_metrics(engine, config, as_of, now=now)
        scores = refresh_scores(engine, config, as_of)
        segments = refresh_segments(engine, config, now=now, as_of=as_of)
    return RefreshResult(metrics, scores, segments, time.perf_counter() - started)
