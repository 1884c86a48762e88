"""scheduler job references follow the job functions to engine.scheduler

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 21:30:00

The scheduler's job store keeps each job's function as an importable
reference. The job functions moved from ``engine.campaigns.jobs`` and
``engine.loyalty.jobs`` to ``engine.scheduler``; stored jobs are rewritten to
the new references (and back on downgrade), keeping their trigger and their
next run time, so no firing that was due is lost to the upgrade.
"""

from __future__ import annotations

import pickle

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

MOVED = {
    "engine.campaigns.jobs:fire_campaign": "engine.scheduler.campaign_jobs:fire_campaign",
    "engine.campaigns.jobs:advance_runs": "engine.scheduler.campaign_jobs:advance_runs",
    "engine.loyalty.jobs:run_programme_batch": "engine.scheduler.loyalty_jobs:run_programme_batch",
}
JOBS = sa.table(
    "apscheduler_jobs", sa.column("id", sa.Unicode(191)), sa.column("job_state", sa.LargeBinary())
)


def _rewrite(references: dict[str, str]) -> None:
    connection = op.get_bind()
    for job_id, blob in connection.execute(sa.select(JOBS.c.id, JOBS.c.job_state)).all():
        state = pickle.loads(blob)
        if state.get("func") in references:
            state["func"] = references[state["func"]]
            connection.execute(
                JOBS.update()
                .where(JOBS.c.id == job_id)
                .values(job_state=pickle.dumps(state, pickle.HIGHEST_PROTOCOL))
            )


def upgrade() -> None:
    _rewrite(MOVED)


def downgrade() -> None:
    _rewrite({new: old for old, new in MOVED.items()})
