"""A call list out and back: the worker writes it, the centre fills it in (XLSX or CSV), it imports as is."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import Engine

from engine.channels.call_list import read_scripts
from engine.outbox import drain
from engine.responses import import_responses
from tests.cli.test_cli import crm_main
from tests.factories import add_customer
from tests.outbox.factories import T0, Clock, add_run, queue, workspace
from tests.responses.workspace import responses

CENTRE = """
[responses.call_centres.main]
codes = { "01" = "reached", "02" = "no_answer", "03" = "callback", "04" = "interested", \
"05" = "purchased", "06" = "refused", "07" = "wrong_number" }
"""

URGENT = """
name = "Urgent calls"
segment = "everyone"
strategy = "loyalty"
priority = 10
start = 2026-01-01
at = 2026-12-01T12:00:00

[[steps]]
channel = "call"
script = "urgent.md"
"""
SCRIPT = "Hello {{ customer.first_name }}.\nWe miss you.\nAsk about the last order.\nOffer 10 %.\n"

#: (external id, first name, phone, time zone, campaign): the calling order is Vladivostok's window
#: first (it opens at 03:00 in Moscow), then Moscow's, the urgent campaign's calls before the note's
CUSTOMERS = (
    ("C000003", "Вера", "+79161230003", "Europe/Moscow", "note"),
    ("C000001", "Анна", "+79579231961", "Europe/Moscow", "urgent"),
    ("C000002", "Борис", "+79241230002", "Asia/Vladivostok", "note"),
    ("C000004", "Глеб", "+79161230004", "Europe/Moscow", "urgent"),
)
ORDER = ["C000002", "C000001", "C000004", "C000003"]
LIST = "calls-2026-12-01-Petrov"


def _written_list(db: Engine, write_config: Any, tmp_path: Path) -> tuple[Path, dict[str, int]]:
    """The call list of two campaigns for curator Petrov, written by the worker; customer ids by reference."""
    workspace(write_config, tmp_path, extra=CENTRE)
    (tmp_path / "campaigns" / "urgent.toml").write_text(URGENT, encoding="utf-8")
    (tmp_path / "campaigns" / "templates" / "urgent.md").write_text(SCRIPT, encoding="utf-8")
    from engine.config import load_config

    config = load_config(tmp_path / "config.toml")
    ids: dict[str, int] = {}
    with db.begin() as connection:
        for ref, name, phone, zone, _campaign in CUSTOMERS:
            ids[ref] = add_customer(
                connection, external_id=ref, first_name=name, phone=phone, timezone=zone,
                curator="Petrov", consent_call=True,
            )  # fmt: skip
        note, urgent = add_run(connection, "note"), add_run(connection, "urgent")
        for ref, *_rest, campaign in CUSTOMERS:
            run, step = (note, 1) if campaign == "note" else (urgent, 0)
            queue(connection, run, [ids[ref]], channel="call", step=step)
    summary = drain(db, config, until_idle=True, clock=Clock(T0 + dt.timedelta(minutes=5)))
    assert summary.sent == len(CUSTOMERS)
    return tmp_path / "calls", ids


def _imported(capsys: pytest.CaptureFixture[str], path: Path, *args: str) -> dict[str, Any]:
    capsys.readouterr()
    assert crm_main(["import", "responses", str(path), "--json", *args]) == 0
    summary: dict[str, Any] = json.loads(capsys.readouterr().out)
    return summary


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the file round trip: one database is enough
def test_the_xlsx_goes_out_set_up_for_agents_and_comes_back_as_the_centre_saved_it(
    db: Engine, write_config: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, ids = _written_list(db, write_config, tmp_path)
    workbook = openpyxl.load_workbook(folder / f"{LIST}.xlsx")
    assert workbook.sheetnames == ["calls", "script", "outcomes"]
    calls = workbook["calls"]
    header = [cell.value for cell in calls[1]]
    at = {name: index for index, name in enumerate(header)}
    rows = [list(row) for row in calls.iter_rows(min_row=2, values_only=True)]
    assert [row[at["customer"]] for row in rows] == ORDER  # calling order, the business's references
    anna = rows[1]
    assert (anna[at["phone"]], anna[at["phone_national"]]) == ("+7 957 923-19-61", "8 (957) 923-19-61")
    assert (anna[at["campaign"]], anna[at["campaign_name"]], anna[at["priority"]]) == (
        "urgent",
        "Urgent calls",
        10,
    )
    assert rows[0][at["centre_window"]] == "03:00-12:00" and rows[0][at["calling_window"]] == "10:00-19:00"
    assert {row[at["centre"]] for row in rows} == {"main"}
    assert all(row[at["called_at"]] is None and row[at["outcome"]] is None for row in rows)
    assert "script" not in at and "customer_id" not in at
    # set up to work in and to print
    assert (
        calls.freeze_panes == "A2"
        and calls.auto_filter.ref == f"A1:{calls.cell(1, len(header)).column_letter}5"
    )
    assert calls.page_setup.orientation == "landscape"
    assert (calls.page_setup.fitToWidth, calls.page_setup.fitToHeight) == (1, 0)
    assert calls.sheet_properties.pageSetUpPr.fitToPage and calls.print_title_rows == "$1:$1"
    assert all(calls.column_dimensions[cell.column_letter].width >= len(str(cell.value)) for cell in calls[1])
    [choice] = calls.data_validations.dataValidation
    outcome_column = calls.cell(1, at["outcome"] + 1).column_letter
    assert choice.type == "list" and choice.formula1 == "=outcomes!$A$2:$A$8"
    assert str(choice.sqref) == f"{outcome_column}2:{outcome_column}5"
    assert [row for row in workbook["outcomes"].values][:3] == [
        ("code", "outcome"),
        ("01", "reached"),
        ("02", "no_answer"),
    ]
    scripts = list(workbook["script"].values)
    assert [row[:2] for row in scripts] == [
        ("campaign", "campaign_name"),
        ("note", "Autumn note"),
        ("urgent", "Urgent calls"),
    ]
    assert scripts[2][2] == "Hello [first name].\nWe miss you.\nAsk about the last order.\nOffer 10 %."

    # the centre fills in two columns and saves the workbook
    for number, code in zip(range(2, 6), ("01", "02", "04", "07"), strict=True):
        calls.cell(number, at["called_at"] + 1).value = dt.datetime(2026, 12, 1, 12, number)
        calls.cell(number, at["outcome"] + 1).value = code
    returned = tmp_path / "returned.xlsx"
    workbook.save(returned)

    summary = _imported(capsys, returned)
    assert (summary["rows"], summary["inserted"], summary["rejected"]) == (4, 4, 0)
    assert summary["linked"] == 4
    recorded = {row["customer_id"]: row for row in responses(db)}
    assert {ids[ref]: recorded[ids[ref]]["campaign"] for ref in ORDER} == {
        ids[ref]: campaign for ref, *_rest, campaign in CUSTOMERS
    }
    assert [recorded[ids[ref]]["kind"] for ref in ORDER] == [
        "reached",
        "no_answer",
        "interested",
        "wrong_number",
    ]
    assert recorded[ids["C000002"]]["occurred_at"] == dt.datetime(2026, 12, 1, 9, 2, tzinfo=dt.UTC)
    assert _imported(capsys, returned)["unchanged"] == 4  # a second import records nothing


@pytest.mark.parametrize("encoding", ["cp1251", "utf-8-sig"])
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_csv_keeps_phones_as_text_and_comes_back_as_excel_saves_it(
    db: Engine, write_config: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], encoding: str
) -> None:
    folder, ids = _written_list(db, write_config, tmp_path)
    with (folder / f"{LIST}.csv").open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    assert [row["customer"] for row in rows] == ORDER
    number = re.compile(r"^[+-]?\d+([.,]\d+)?([eE][+-]?\d+)?$")  # what a spreadsheet would read as a number
    assert all(not number.match(row[column]) for row in rows for column in ("phone", "phone_national"))
    scripts = read_scripts((folder / f"{LIST}.script.txt").read_text(encoding="utf-8-sig"))
    assert sorted(campaign for campaign, _script in scripts) == [
        "note",
        "urgent",
    ]  # once per list, not per row
    assert "01\treached" in (folder / f"{LIST}.script.txt").read_text(encoding="utf-8-sig")

    # Excel saves what the agents typed: its own date format, ';', the locale's encoding, CRLF
    for row, code in zip(rows, ("01", "03", "05", "06"), strict=True):
        row["called_at"], row["outcome"], row["note"] = "01.12.2026 12:30", code, "перезвонить"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), delimiter=";", lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    returned = tmp_path / "returned.csv"
    returned.write_bytes(buffer.getvalue().encode(encoding))

    summary = _imported(capsys, returned)  # 01.12.2026 as Russian Excel saves it: day first
    assert (summary["rows"], summary["inserted"], summary["rejected"]) == (4, 4, 0)
    recorded = {row["customer_id"]: row for row in responses(db, channel="call")}
    assert {ref: recorded[ids[ref]]["campaign"] for ref in ORDER} == {ref: c for ref, *_rest, c in CUSTOMERS}
    assert [recorded[ids[ref]]["kind"] for ref in ORDER] == ["reached", "callback", "purchased", "refused"]


def test_a_campaign_is_matched_by_key_or_by_name(db: Engine, write_config: Any, tmp_path: Path) -> None:
    config = workspace(write_config, tmp_path, extra=CENTRE)
    with db.begin() as connection:
        anna = add_customer(connection, external_id="C1", phone="+79161230001", consent_call=True)
        boris = add_customer(connection, external_id="C2", phone="+79161230002", consent_call=True)
        note = add_run(connection, "note")
        queue(connection, note, channel="call", step=1)
    drain(db, config, until_idle=True, clock=Clock(T0 + dt.timedelta(minutes=5)))
    path = tmp_path / "centre.csv"
    path.write_text(
        "customer;campaign;called at;code\n"
        "C1;Autumn  NOTE;2026-12-01 12:30;01\n"  # the name, as a centre types it
        "C2;note;2026-12-01 12:40;02\n"  # the key
        "C2;Spring note;2026-12-01 12:50;02\n",
        encoding="utf-8",
    )
    names = {"note": "Autumn note", "spring": "Spring note", "spring2": "spring note"}
    summary = import_responses(
        db,
        path,
        settings=config.settings.responses,
        centre="main",
        campaigns=names,
        now=T0 + dt.timedelta(days=1),
    )
    assert (summary.inserted, summary.rejected) == (2, 1)
    assert {row["customer_id"]: row["campaign"] for row in responses(db)} == {anna: "note", boris: "note"}
    assert {row["customer_id"] for row in responses(db) if row["outbox_id"] is not None} == {anna, boris}
    assert summary.rejects_path is not None
    rejects = summary.rejects_path.read_text(encoding="utf-8")
    assert "'Spring note' names several campaigns (spring, spring2): give the key" in rejects


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_crm_import_responses_matches_a_campaign_by_its_name(
    db: Engine, write_config: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A centre that typed the campaign's name instead of its key: crm import responses still knows it."""
    folder, ids = _written_list(db, write_config, tmp_path)
    with (folder / f"{LIST}.csv").open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    for row in rows:
        row["campaign"] = row["campaign_name"]  # "Urgent calls", "Calls"
        row["key"] = ""  # no key: the row is found by phone and campaign
        row["called_at"], row["outcome"] = "2026-12-01 12:30", "01"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), delimiter=";")
    writer.writeheader()
    writer.writerows(rows)
    returned = tmp_path / "by-name.csv"
    returned.write_text(buffer.getvalue(), encoding="utf-8")
    summary = _imported(capsys, returned)
    assert (summary["rows"], summary["rejected"]) == (4, 0), summary
    recorded = {row["customer_id"]: row for row in responses(db, channel="call")}
    assert {ref: recorded[ids[ref]]["campaign"] for ref in ORDER} == {ref: c for ref, *_rest, c in CUSTOMERS}
