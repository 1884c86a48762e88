"""Results tell the truth mid-window: no verdict before the goal window closes; p-values people read."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

import pytest

from engine.evaluation.figures import CampaignResult, GroupFigures
from engine.evaluation.statistics import chance_text, p_value_text

UTC = dt.UTC
RAN = dt.datetime(2027, 1, 1, 7, tzinfo=UTC)


def _result(as_of: dt.datetime | None) -> CampaignResult:
    empty = GroupFigures("x", *([0] * 9), *([Decimal(0)] * 3))
    return CampaignResult(
        campaign="winback",
        name="Winback",
        goal_metric="conversion",
        window_days=30,
        runs=1,
        control=empty,
        treated=empty,
        as_of=as_of,
        window_closes_at=RAN + dt.timedelta(days=30),
    )


@pytest.mark.parametrize(
    ("as_of", "open_", "observed"),
    [
        (RAN, True, 0),
        (RAN + dt.timedelta(days=3, hours=1), True, 3),
        (RAN + dt.timedelta(days=30) - dt.timedelta(seconds=1), True, 29),
        (RAN + dt.timedelta(days=30), False, 30),
        (RAN + dt.timedelta(days=400), False, 30),
    ],
)
def test_the_window_is_open_until_its_last_day_is_observed(
    as_of: dt.datetime, open_: bool, observed: int
) -> None:
    result = _result(as_of)
    assert (result.window_open, result.observed_days) == (open_, observed)
    note = result.window_note()
    if open_:
        assert (
            note
            == f"window open until 2027-01-31: {observed} of 30 days observed; no verdict before it closes"
        )
    else:
        assert note is None


def test_the_page_gives_no_verdict_while_the_window_is_open() -> None:
    from engine.evaluation.campaign_page import headline

    open_window = headline(_result(RAN + dt.timedelta(days=2)), "RUB")
    assert open_window.verdict == "Window open" and "2 of 30 days observed" in open_window.money
    closed = headline(_result(RAN + dt.timedelta(days=31)), "RUB")
    assert closed.verdict != "Window open"


@pytest.mark.parametrize(
    ("p", "shown", "chance"),
    [
        (1.0, "1.00", "100 %"),
        (0.2345, "0.23", "23 %"),
        (0.05, "0.05", "5 %"),
        (0.0042, "0.004", "0.4 %"),
        (0.0009, "< 0.001", "less than 0.1 %"),
        (0.0, "< 0.001", "less than 0.1 %"),
    ],
)
def test_p_values_as_people_read_them(p: float, shown: str, chance: str) -> None:
    assert p_value_text(p) == shown and chance_text(p) == chance
    assert "e+" not in chance and "e-" not in shown


def test_no_p_value() -> None:
    assert p_value_text(math.nan) == "n/a" and p_value_text(None) == "n/a"


def test_a_call_campaign_has_no_opened_or_clicked_rows() -> None:
    from dataclasses import replace

    from engine.evaluation.campaign_page import figure_rows
    from engine.evaluation.report_output import campaign_tables

    calls = replace(_result(None), channels=("call",))
    rows = {row.id for row in figure_rows(calls)}
    assert "opened" not in rows and "clicked" not in rows and "responded" in rows
    email = replace(_result(None), channels=("email", "call"))
    assert {"opened", "clicked"} <= {row.id for row in figure_rows(email)}
    sms = replace(_result(None), channels=("sms",))
    assert sms.shows("clicked") and not sms.shows("opened")
    tables = campaign_tables([calls], "RUB")
    headers = [column.header for table in tables if hasattr(table, "columns") for column in table.columns]
    assert "opened" not in headers and "clicked" not in headers and "resp." in headers
