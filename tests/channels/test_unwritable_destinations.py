"""A Maildir or list folder that takes nothing raises OutputError for the batch: nothing half-written stays.

A folder in the way of a file (or a file in the way of a folder) needs no
privilege to make; a folder that refuses new files is made with chmod, or
chattr +i for root (tests/cli/faults.py); a full disk is a write that fails
with ENOSPC (monkeypatched).
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import errno
import os
from pathlib import Path

import pytest

from engine.channels import CallListChannel, DeliveryStatus, MaildirEmailChannel, OutgoingMessage
from engine.channels.list_file import write_xlsx
from engine.errors import OutputError
from tests.cli.faults import leftovers, refusing_writes

DAY = dt.date(2026, 12, 7)


def _email(n: int) -> OutgoingMessage:
    return OutgoingMessage(
        key=f"run1:{n}:0",
        customer_id=n,
        recipient=f"c{n}@example.ru",
        subject="Hello",
        html=f"<p>{n}</p>",
        installation="0" * 32,
    )


def _call(n: int, curator: str = "Анна") -> OutgoingMessage:
    return OutgoingMessage(
        key=f"run3:{n}:1", customer_id=n, recipient=f"+7916123{n:04d}", details={"curator": curator}
    )


def _maildir(root: Path) -> MaildirEmailChannel:
    return MaildirEmailChannel(root, sender="Shop <news@shop.example>", domain="shop.example")


def _full(*_args: object, **_kwargs: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_maildir_behind_a_file_is_named_with_its_setting(tmp_path: Path) -> None:
    blocker = tmp_path / "outbox"
    blocker.write_text("not a folder", encoding="utf-8")
    with pytest.raises(OutputError) as refused:
        _maildir(blocker / "maildir")
    assert str(refused.value).startswith(f"channels.email.maildir {blocker / 'maildir'}: ")
    assert f"{blocker} is a file, not a folder" in str(refused.value)


def test_a_maildir_that_refuses_files_raises_for_the_batch(tmp_path: Path) -> None:
    root = tmp_path / "maildir"
    channel = _maildir(root)
    with refusing_writes(root / "tmp"), pytest.raises(OutputError, match="permission denied"):
        asyncio.run(channel.send([_email(1), _email(2)]))
    assert list((root / "new").iterdir()) == [] and list((root / "tmp").iterdir()) == []
    results = asyncio.run(_maildir(root).send([_email(1), _email(2)]))  # fixed: sent as usual
    assert [r.status for r in results] == [DeliveryStatus.SENT] * 2


def test_a_full_disk_midway_keeps_what_was_delivered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "maildir"
    asyncio.run(_maildir(root).send([_email(1)]))
    monkeypatch.setattr(Path, "write_bytes", _full)
    with pytest.raises(OutputError, match="the disk is full") as refused:
        asyncio.run(_maildir(root).send([_email(1), _email(2)]))
    assert refused.value.option == "channels.email.maildir" and refused.value.path == str(root)
    monkeypatch.undo()
    assert len(list((root / "new").iterdir())) == 1 and list((root / "tmp").iterdir()) == []
    again = asyncio.run(_maildir(root).send([_email(1), _email(2)]))  # 1 recognised, 2 written
    assert [r.status for r in again] == [DeliveryStatus.SENT] * 2
    assert len(list((root / "new").iterdir())) == 2


def test_a_call_list_folder_behind_a_file_or_refusing_files(tmp_path: Path) -> None:
    blocker = tmp_path / "outbox"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(OutputError, match=r"^channels\.call\.folder .*is a file, not a folder"):
        CallListChannel(blocker / "calls", DAY)
    folder = tmp_path / "calls"
    channel = CallListChannel(folder, DAY)
    with refusing_writes(folder), pytest.raises(OutputError, match="permission denied"):
        asyncio.run(channel.send([_call(1)]))
    assert list(folder.iterdir()) == []
    results = asyncio.run(channel.send([_call(1)]))  # the same channel again: the key was not kept as listed
    assert [r.status for r in results] == [DeliveryStatus.SENT]
    with (folder / "calls-2026-12-07-Анна.csv").open(encoding="utf-8-sig", newline="") as handle:
        assert [row["key"] for row in csv.DictReader(handle, delimiter=";")] == ["run3:1:1"]


def test_a_list_append_that_fails_is_cut_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk fills up in the middle of the rows: the file holds exactly what it held before."""
    folder = tmp_path / "calls"
    asyncio.run(CallListChannel(folder, DAY).send([_call(1)]))
    day_file = folder / "calls-2026-12-07-Анна.csv"
    before = day_file.read_bytes()
    listed = sorted(path.name for path in folder.iterdir())  # the list and its script file
    real_open = Path.open

    def half_then_full(self: Path, mode: str = "r", *args, **kwargs):  # type: ignore[no-untyped-def]
        handle = real_open(self, mode, *args, **kwargs)
        if mode == "ab":
            handle.write(b"run3:2:1;2;\xd0")  # half a row reached the disk
            handle.close()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return handle

    monkeypatch.setattr(Path, "open", half_then_full)
    with pytest.raises(OutputError, match="the disk is full"):
        asyncio.run(CallListChannel(folder, DAY).send([_call(2), _call(3, curator="Олег")]))
    monkeypatch.undo()
    assert day_file.read_bytes() == before
    assert sorted(path.name for path in folder.iterdir()) == listed == [
        "calls-2026-12-07-Анна.csv", "calls-2026-12-07-Анна.script.txt",
    ]  # fmt: skip


def test_a_day_file_saved_over_by_a_spreadsheet_stops_the_channel(tmp_path: Path) -> None:
    """Re-saved in cp1251 without its key column: the channel cannot tell what it listed, so lists nothing."""
    folder = tmp_path / "calls"
    folder.mkdir()
    day_file = folder / "calls-2026-12-07-Анна.csv"
    day_file.write_bytes("Имя,Телефон\nАнна,+79161230001\n".encode("cp1251"))
    with pytest.raises(OutputError, match="cannot read back the contacts it lists") as refused:
        asyncio.run(CallListChannel(folder, DAY).send([_call(1)]))
    assert refused.value.path == str(day_file) and "put back the file crm wrote" in str(refused.value)
    day_file.write_text("Имя;Телефон\nАнна;+79161230001\n", encoding="utf-8")
    with pytest.raises(OutputError, match="no 'key' column"):
        asyncio.run(CallListChannel(folder, DAY).send([_call(1)]))


def test_an_xlsx_copy_that_cannot_be_written_leaves_no_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "calls.csv"
    source.write_text("\ufeffkey;customer_id\nrun3:1:1;1\n", encoding="utf-8")
    monkeypatch.setattr(os, "replace", _full)
    with pytest.raises(OutputError, match="the disk is full"):
        write_xlsx(source, tmp_path / "calls.xlsx", option="channels.call.folder")
    assert leftovers(tmp_path) == [] and not (tmp_path / "calls.xlsx").exists()
