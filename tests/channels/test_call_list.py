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
            "calling_window": "10:00-19:00 Asia/Novosibirsk",
            "segment": "lapsing_large",
            "campaign": "winback",
            "script": "winback_call.md",
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
    assert anna[0]["phone"] == "+79161230001" and anna[0]["phone_national"] == "8 (916) 123-00-01"
    assert anna[0]["calling_window"] == "10:00-19:00 Asia/Novosibirsk"
    assert [r["key"] for r in _rows(tmp_path / "calls-2026-12-07-Олег.csv")] == ["run3:2:1"]
    assert [r["key"] for r in _rows(tmp_path / "calls-2026-12-07-unassigned.csv")] == ["run3:3:1"]
    sheet = openpyxl.load_workbook(tmp_path / "calls-2026-12-07-Анна_Петрова.xlsx").active
    assert sheet is not None
    values = list(sheet.values)
    assert values[0][0] == "key" and [v[0] for v in values[1:]] == ["run3:1:1", "run3:4:1"]


def test_cells_cannot_carry_formulas(tmp_path: Path) -> None:
    channel = CallListChannel(tmp_path, DAY)
    asyncio.run(channel.send([_call(1, name='=HYPERLINK("http://evil")', last_purchases="+1 shoes; -1 bag")]))
    asyncio.run(channel.close())
    [row] = _rows(tmp_path / "calls-2026-12-07-Анна_Петрова.csv")
    assert row["name"] == '\'=HYPERLINK("http://evil")' and row["last_purchases"] == "'+1 shoes; -1 bag"
    workbook = openpyxl.load_workbook(tmp_path / "calls-2026-12-07-Анна_Петрова.xlsx")
    cells = [cell for row in workbook.active.iter_rows() for cell in row]  # type: ignore[union-attr]
    assert cells and all(cell.data_type != "f" for cell in cells)


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
