"""``crm resend-failed RUN``: what failed in a run goes back to the queue, with its attempts counted afresh.

Bounced rows stay bounced (the address does not exist and is suppressed);
rows that failed for any other reason (attempts used up, a template error
since fixed, a refused message) are queued again, due now.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, select, update

from engine.clock import utcnow
from engine.db import write_transaction
from engine.errors import NotFoundError
from engine.models import FAILED, OUTBOX, QUEUED, RUN


def resend_failed(engine: Engine, run_id: int, *, now: dt.datetime | None = None) -> int:
    """Queue the failed rows of run ``run_id`` again; return how many."""
    now = now or utcnow()
    with write_transaction(engine) as connection:
        if connection.execute(select(RUN.c.id).where(RUN.c.id == run_id)).first() is None:
            raise NotFoundError("run", str(run_id))
        return int(
            connection.execute(
                update(OUTBOX)
                .where(OUTBOX.c.run_id == run_id, OUTBOX.c.state == FAILED)
                .values(state=QUEUED, attempts=0, scheduled_at=now, claimed_by=None, updated_at=now)
            ).rowcount
        )
