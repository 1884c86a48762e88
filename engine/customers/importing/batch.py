"""The ``import_batch`` row recording one import."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, insert, update

from engine.customers.importing.summary import ImportSummary
from engine.models import IMPORT_BATCH


def start_batch(connection: Connection, summary: ImportSummary, sha256: str, started_at: dt.datetime) -> int:
    """Insert the batch row of this import and return its id."""
    result = connection.execute(
        insert(IMPORT_BATCH)
        .values(
            kind=summary.kind,
            source=summary.source,
            path=str(summary.path)[-1000:],
            sha256=sha256,
            started_at=started_at,
        )
        .returning(IMPORT_BATCH.c.id)
    )
    return int(result.scalar_one())


def finish_batch(connection: Connection, summary: ImportSummary, finished_at: dt.datetime) -> None:
    """Store the counts of ``summary`` in its batch row."""
    connection.execute(
        update(IMPORT_BATCH)
        .where(IMPORT_BATCH.c.id == summary.import_id)
        .values(
            finished_at=finished_at,
            rows=summary.rows,
            inserted=summary.inserted,
            updated=summary.updated,
            merged=summary.merged,
            unchanged=summary.unchanged,
            rejected=summary.rejected,
            rejects_path=str(summary.rejects_path)[-1000:] if summary.rejects_path else None,
        )
    )
