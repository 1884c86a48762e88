"""The runs a campaign has had: ids, when, state, and how many rows ended in each state.

``crm runs [CAMPAIGN]`` lists them newest first, so that ``crm resend-failed
RUN`` and ``crm worker --run RUN`` have ids to take. One GROUP BY over the
outbox rows of the runs listed, inside the database.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import Engine, func, select

from engine.models import OUTBOX, RUN


@dataclass(frozen=True)
class RunLine:
    """One run: its id, campaign, trigger, when it was due, its state and its rows per state."""

    run_id: int
    campaign: str
    trigger: str
    scheduled_for: dt.datetime
    state: str
    detail: str | None
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """All of the run's outbox rows (every step)."""
        return sum(self.rows.values())


def list_runs(engine: Engine, campaign: str | None = None, *, limit: int = 20) -> list[RunLine]:
    """The latest ``limit`` runs (of ``campaign`` when given), newest first, with their row counts."""
    query = select(RUN).order_by(RUN.c.scheduled_for.desc(), RUN.c.id.desc()).limit(limit)
    if campaign is not None:
        query = query.where(RUN.c.campaign == campaign)
    with engine.connect() as connection:
        runs = connection.execute(query).all()
        ids = [run.id for run in runs]
        counts: dict[int, dict[str, int]] = defaultdict(dict)
        if ids:
            grouped = connection.execute(
                select(OUTBOX.c.run_id, OUTBOX.c.state, func.count())
                .where(OUTBOX.c.run_id.in_(ids))
                .group_by(OUTBOX.c.run_id, OUTBOX.c.state)
            )
            for run_id, state, count in grouped:
                counts[run_id][state] = int(count)
    return [
        RunLine(run.id, run.campaign, run.trigger, run.scheduled_for, run.state, run.detail, counts[run.id])
        for run in runs
    ]
