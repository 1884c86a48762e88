"""The daily batch of a loyalty programme: activate, expire, tiers, events, in that order.

:func:`run_batch` runs the jobs as of one instant ``now`` (the scheduler
passes the time the job was due, so a late run does exactly what the
on-time one would have done). Each job commits its own transactions, chunk
by chunk; every posting has a key derived from what it acts on
(``activate:<lot>``, ``expire:<lot>``, the events' keys), so re-running after
a crash, or twice, posts nothing new.

1. ``activate`` (:func:`engine.loyalty.batch.expiry.activate_due`): lots out of the
   return window become available; debts are repaid from them.
2. ``expire`` (:func:`engine.loyalty.batch.expiry.expire_due`): holds past their
   timeout are voided, then lots past their date (or of idle accounts) expire.
3. ``tiers`` (:func:`engine.loyalty.batch.tiers.recompute_tiers`): every account's
   tier from its qualifying activity, with the downgrade policy.
4. ``events`` (:func:`engine.loyalty.batch.events.post_events`): points
   expiring soon and tier changes, as customer events campaigns fire on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Engine

from engine.clock import utcnow
from engine.errors import ConfigValueError
from engine.loyalty.batch.events import EventsResult, post_events
from engine.loyalty.batch.expiry import ActivationResult, ExpiryResult, activate_due, expire_due
from engine.loyalty.batch.tiers import TierResult, recompute_tiers
from engine.loyalty.programme import Programme

JOBS = ("activate", "expire", "tiers", "events")


@dataclass
class BatchResult:
    """What each job of :func:`run_batch` did (None: the job was not asked for)."""

    programme: str
    now: dt.datetime
    activate: ActivationResult | None = None
    expire: ExpiryResult | None = None
    tiers: TierResult | None = None
    events: EventsResult | None = None

    def counts(self) -> dict[str, int]:
        """The headline numbers, by name (for logs and ``--json``)."""
        counts: dict[str, int] = {}
        if self.activate is not None:
            counts.update(
                activated_lots=self.activate.lots,
                activated_points=self.activate.points,
                repaid_points=self.activate.repaid,
            )
        if self.expire is not None:
            counts.update(
                expired_lots=self.expire.lots,
                expired_points=self.expire.points,
                voided_holds=self.expire.voided_holds,
            )
        if self.tiers is not None:
            counts.update(
                upgraded=self.tiers.upgraded,
                downgraded=self.tiers.downgraded,
                grace_started=self.tiers.grace_started,
                tier_changes=len(self.tiers.changes),
            )
        if self.events is not None:
            counts.update(
                points_expiring_events=self.events.points_expiring,
                tier_changed_events=self.events.tier_changed,
            )
        return counts


def run_batch(
    engine: Engine,
    programme: Programme,
    *,
    now: dt.datetime | None = None,
    jobs: Iterable[str] = JOBS,
) -> BatchResult:
    """Run ``jobs`` of ``programme`` as of ``now``, always in the order activate, expire, tiers, events."""
    now = now or utcnow()
    wanted = set(jobs)
    unknown = wanted - set(JOBS)
    if unknown:
        raise ConfigValueError(
            "", "jobs", f"unknown loyalty job {sorted(unknown)[0]!r} (known: {', '.join(JOBS)})"
        )
    result = BatchResult(programme.name, now)
    if "activate" in wanted:
        result.activate = activate_due(engine, programme, now=now)
    if "expire" in wanted:
        result.expire = expire_due(engine, programme, now=now)
    if "tiers" in wanted:
        result.tiers = recompute_tiers(engine, programme, now=now)
    if "events" in wanted:
        result.events = post_events(engine, programme, now=now)
    return result
