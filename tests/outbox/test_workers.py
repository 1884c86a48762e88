"""Three worker processes drain 10,000 emails on PostgreSQL side by side: each delivered exactly once."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.channels import message_id
from engine.db import installation_id
from engine.models import outbox as states
from tests.outbox.factories import CUSTOMER, OUTBOX, add_customers, add_run, queue, workspace
from tests.outbox.sending import just_now, received_ids, smtp_email, smtp_sink, start_worker

COUNT = 10_000


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_three_workers_share_the_outbox_and_deliver_each_message_once(  # type: ignore[no-untyped-def]
    db, write_config, tmp_path: Path
) -> None:
    received = tmp_path / "received.txt"
    with smtp_sink(received) as port:
        workspace(write_config, tmp_path, email=smtp_email(port, batch_size=200, concurrency=8))
        now = just_now()
        with db.begin() as connection:
            add_customers(connection, COUNT)
            run = add_run(connection, scheduled_for=now)
            queue(connection, run, scheduled_at=now)
            customers = list(connection.execute(select(CUSTOMER.c.id)).scalars())
        logs = [tmp_path / f"worker{n}.json" for n in range(3)]
        workers = [start_worker(log, "--until-idle", "--json") for log in logs]
        for worker, log in zip(workers, logs, strict=True):
            assert worker.wait(timeout=600) == 0, log.read_text()

    sent = [json.loads(log.read_text())["sent"] for log in logs]
    assert sum(sent) == COUNT, sent
    assert sum(1 for n in sent if n) >= 2, sent  # the work was shared
    ids = received_ids(received)
    assert len(ids) == COUNT and Counter(ids).most_common(1)[0][1] == 1
    installation = installation_id(db)
    expected = {message_id(f"{run}:{c}:0", "shop.example", installation=installation) for c in customers}
    assert set(ids) == expected
    with db.connect() as connection:
        final = dict(connection.execute(select(OUTBOX.c.state, func.count()).group_by(OUTBOX.c.state)).all())  # type: ignore[arg-type]
    assert final == {states.SENT: COUNT}
