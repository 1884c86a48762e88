"""Call lists: per day and curator, Excel-ready CSV and XLSX, no formulas, once per key, capacity by day."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
from pathlib import Path

import openpyxl
import pytest

from engine.channels import DeliveryStatus, OutgoingMessage
from engine.channels.call_list import CallListChannel, schedule_calls

DAY = dt.date(2026, 12, 7)


def _call(n: int, curator: str | None = "Анна Петрова", **details: object) -> OutgoingMessage:
    return OutgoingMessage(
        key=f"run3:{n}:1",
        customer_id=n,
        recipient=f"+7916123{n:04d}",
        details={
            "name": f"Клиент {n}",
            "calling_window": "10:00-19:00",
            "centre_window": "06:00-15:00",
            "timezone": "Asia/Novosibirsk",
            "segment": "lapsing_large",
            "campaign": "winback",
            "campaign_name": "Win back",
            "script": "Greet [first name].",
            "curator": curator,
            **details,
        },
    )


def _rows(path: Path) -> list[dict[str, str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel reads UTF-8 only with the BOM
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle, delimiter=";"))


def test_calls_are_listed_per_curator_once_per_key(tmp_path: Path) -> None:
    channel = CallListChannel(tmp_path, DAY)
    batch = [_call(1), _call(2, curator="Олег"), _call(3, curator=None)]
    results = asyncio.run(channel.send(batch))
    assert {r.status for r in results} == {DeliveryStatus.SENT}
    again = CallListChannel(tmp_path, DAY)  # a rerun after a crash
    asyncio.run(again.send([_call(1), _call(4)]))
    asyncio.run(again.close())
    anna = _rows(tmp_path / "calls-2026-12-07-Анна_Петрова.csv")
    assert [r["key"] for r in anna] == ["run3:1:1", "run3:4:1"]
    assert anna[0]["phone"] == "+7 916 123-00-01" and anna[0]["phone_national"] == "8 (916) 123-00-01"
    assert (anna[0]["calling_window"], anna[0]["centre_window"]) == ("10:00-19:00", "06:00-15:00")
    assert (anna[0]["called_at"], anna[0]["outcome"], anna[0]["centre"]) == ("", "", "")
    assert [r["key"] for r in _rows(tmp_path / "calls-2026-12-07-Олег.csv")] == ["run3:2:1"]
    assert [r["key"] for r in _rows(tmp_path / "calls-2026-12-07-unassigned.csv")] == ["run3:3:1"]
    sheet = openpyxl.load_workbook(tmp_path / "calls-2026-12-07-Анна_Петрова.xlsx").active
    assert sheet is not None
    values = list(sheet.values)
    assert values[0][-1] == "key" and [v[-1] for v in values[1:]] == ["run3:1:1", "run3:4:1"]
    script = (tmp_path / "calls-2026-12-07-Анна_Петрова.script.txt").read_text(encoding="utf-8-sig")
    assert script.count("=== campaign winback: Win back ===\nGreet [first name].\n") == 1


def test_rows_are_in_calling_order_and_the_script_is_listed_once(tmp_path: Path) -> None:
    from engine.settings import CallCentreSection

    centres = {"main": CallCentreSection(codes={"1": "reached", "2": "no_answer"})}
    channel = CallListChannel(tmp_path, DAY, centres=centres)
    late = _call(1, centre_window="11:00-20:00", priority=5)
    low = _call(2, centre_window="10:00-19:00", priority=1)
    high = _call(3, centre_window="10:00-19:00", priority=10, campaign="urgent", script="Be quick.")
    asyncio.run(channel.send([late, low]))
    asyncio.run(channel.send([high]))
    asyncio.run(channel.close())
    in_csv = [row["key"] for row in _rows(tmp_path / "calls-2026-12-07-Анна_Петрова.csv")]
    assert in_csv == ["run3:2:1", "run3:1:1", "run3:3:1"]  # each batch in calling order
    workbook = openpyxl.load_workbook(tmp_path / "calls-2026-12-07-Анна_Петрова.xlsx")
    assert [row[-1] for row in workbook["calls"].iter_rows(min_row=2, values_only=True)] == [
        "run3:3:1", "run3:2:1", "run3:1:1",
    ]  # fmt: skip
    assert {row[-3] for row in workbook["calls"].iter_rows(min_row=2, values_only=True)} == {"main"}
    assert list(workbook["outcomes"].values) == [("code", "outcome"), ("1", "reached"), ("2", "no_answer")]
    assert [row[0] for row in workbook["script"].values] == ["campaign", "urgent", "winback"]
    again = CallListChannel(tmp_path, DAY, centres=centres)  # another worker the same day
    asyncio.run(again.send([_call(4), _call(5, script="Здравствуйте, [first name].")]))  # a second language
    text = (tmp_path / "calls-2026-12-07-Анна_Петрова.script.txt").read_text(encoding="utf-8-sig")
    assert text.count("=== campaign") == 3 and "=== outcome codes of call centre main ===\n1\treached" in text
    assert text.count("=== campaign winback: Win back ===") == 2 and "Здравствуйте, [first name]." in text


def test_cells_cannot_carry_formulas(tmp_path: Path) -> None:
    channel = CallListChannel(tmp_path, DAY)
    hostile = '=HYPERLINK("http://evil")'
    call = _call(1, name=hostile, last_purchases="+1 shoes; -1 bag", campaign_name=hostile, script=hostile)
    asyncio.run(channel.send([call]))
    asyncio.run(channel.close())
    [row] = _rows(tmp_path / "calls-2026-12-07-Анна_Петрова.csv")
    assert row["name"] == '\'=HYPERLINK("http://evil")' and row["last_purchases"] == "'+1 shoes; -1 bag"
    workbook = openpyxl.load_workbook(tmp_path / "calls-2026-12-07-Анна_Петрова.xlsx")
    cells = [cell for sheet in workbook.worksheets for row in sheet.iter_rows() for cell in row]
    assert len(workbook.worksheets) == 3 and all(cell.data_type != "f" for cell in cells)
    assert [row[2] for row in workbook["script"].values][1] == "'" + hostile


def test_a_call_without_a_phone_fails_alone(tmp_path: Path) -> None:
    channel = CallListChannel(tmp_path, DAY)
    no_phone = OutgoingMessage(key="run3:9:1", customer_id=9, recipient="")
    results = asyncio.run(channel.send([no_phone, _call(1)]))
    assert [r.status for r in results] == [DeliveryStatus.PERMANENT_FAILURE, DeliveryStatus.SENT]


def test_capacity_moves_the_rest_to_the_next_days_by_priority() -> None:
    calls = [("a", 1), ("b", 5), ("c", 3), ("d", 5), ("e", 2)]
    days = schedule_calls(calls, capacity=2, first_day=DAY, priority=lambda call: call[1])
    assert days == {
        DAY: [("b", 5), ("d", 5)],
        DAY + dt.timedelta(days=1): [("c", 3), ("e", 2)],
        DAY + dt.timedelta(days=2): [("a", 1)],
    }
    with pytest.raises(ValueError, match="at least 1"):
        schedule_calls(calls, capacity=0, first_day=DAY, priority=lambda call: call[1])


def test_postal_and_meeting_lists(tmp_path: Path) -> None:
    from engine.channels import MeetingListChannel, PostalListChannel

    letters = PostalListChannel(tmp_path, DAY)
    address = "Россия, 630099, г. Новосибирск, ул. Ленина, д. 1, кв. 2"
    letter = OutgoingMessage(
        key="run4:1:0", customer_id=1, recipient=address, details={"name": "Анна", "letter": "spring.md"}
    )
    no_address = OutgoingMessage(key="run4:2:0", customer_id=2, recipient="")
    results = asyncio.run(letters.send([letter, no_address]))
    assert [r.status for r in results] == [DeliveryStatus.SENT, DeliveryStatus.PERMANENT_FAILURE]
    assert results[1].detail == "no postal address"
    asyncio.run(letters.close())
    [row] = _rows(tmp_path / "letters-2026-12-07.csv")
    assert (row["address"], row["name"], row["letter"]) == (address, "Анна", "spring.md")
    assert (tmp_path / "letters-2026-12-07.xlsx").exists()

    meetings = MeetingListChannel(tmp_path, DAY)
    visit = OutgoingMessage(
        key="run6:3:0",
        customer_id=3,
        recipient="ООО Ромашка",
        details={"curator": "Олег", "agenda": "renewal"},
    )
    asyncio.run(meetings.send([visit]))
    [task] = _rows(tmp_path / "meetings-2026-12-07-Олег.csv")
    assert (task["agenda"], task["curator"]) == ("renewal", "Олег")


def test_a_day_file_an_older_version_started_keeps_its_columns(tmp_path: Path) -> None:
    """Upgraded in the middle of a day: new calls go into the day's file under the columns it has."""
    old = tmp_path / "calls-2026-12-07-Анна_Петрова.csv"
    old.write_text(
        "\ufeffkey;customer_id;name;phone;script\nrun3:9:1;9;Клиент 9;+79161230009;Hello\n", "utf-8"
    )
    channel = CallListChannel(tmp_path, DAY)
    asyncio.run(channel.send([_call(1), _call(9)]))
    asyncio.run(channel.close())
    rows = _rows(old)
    assert [(row["key"], row["name"], row["phone"]) for row in rows] == [
        ("run3:9:1", "Клиент 9", "+79161230009"),
        ("run3:1:1", "Клиент 1", "+7 916 123-00-01"),
    ]
    assert rows[1]["customer_id"] == rows[1]["script"] == ""  # columns this version no longer writes
