"""Charts and views that do not invent changes: a period still running is not joined to the line; the
migration view starts where segment history does."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

from matplotlib.figure import Figure
from sqlalchemy import Engine

from engine.config.checked import load_config
from engine.evaluation.migration_matrix import history_start
from engine.evaluation.programme_charts import period_line
from engine.segments.membership import refresh_segments
from tests.factories import add_customer

UTC = dt.UTC


def _rows(*partial: bool) -> list[SimpleNamespace]:
    return [SimpleNamespace(period=SimpleNamespace(partial=flag)) for flag in partial]


def test_a_period_to_date_is_a_point_of_its_own_not_a_change() -> None:
    axis = Figure().add_subplot()
    period_line(axis, _rows(False, False, False, True), [0.10, 0.12, 0.11, 0.02], marker="o", label="all")  # type: ignore[arg-type]
    joined, alone = axis.lines
    assert list(joined.get_xdata()) == [0, 1, 2] and list(joined.get_ydata()) == [0.10, 0.12, 0.11]
    assert list(alone.get_xdata()) == [3] and alone.get_linestyle() == "None"
    assert alone.get_markerfacecolor() == "white"


def test_history_starts_at_the_first_refresh(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    assert history_start(db) is None
    config = load_config(write_config('[segments.everyone]\nrule = "true"\n'))
    with db.begin() as connection:
        add_customer(connection, email="a@example.com")
    first = dt.datetime(2026, 11, 3, 9, tzinfo=UTC)
    refresh_segments(db, config, now=first)
    refresh_segments(db, config, now=first + dt.timedelta(days=30))
    assert history_start(db) == first
