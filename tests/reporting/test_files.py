"""Output paths checked before the work, files written whole, OSErrors as OutputErrors saying what to fix."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from openpyxl import Workbook

from engine.errors import OutputError
from engine.reporting import (
    check_output_file,
    check_output_folder,
    output_error,
    save_workbook,
    write_atomically,
)
from tests.cli.faults import leftovers, refusing_writes


def test_an_output_file_is_checked_and_nothing_is_left(tmp_path: Path) -> None:
    blocker = tmp_path / "notes.txt"
    blocker.write_text("x", encoding="utf-8")
    cases = {
        tmp_path: "is a folder: give the name of a file in it",
        blocker / "r.csv": f"{blocker} is a file, not a folder",
        blocker / "deeper" / "r.csv": f"{blocker} is a file, not a folder",
    }
    for path, reason in cases.items():
        with pytest.raises(OutputError) as refused:
            check_output_file(path, option="--output")
        assert str(refused.value) == f"--output {path}: {reason}" or reason in str(refused.value)
        assert refused.value.option == "--output" and refused.value.path == str(path)
    assert check_output_file(tmp_path / "r.csv") == tmp_path / "r.csv"
    made = check_output_file(tmp_path / "a" / "b" / "r.html")  # the writer makes them
    with pytest.raises(OutputError, match=f"the folder {tmp_path / 'no'} does not exist: create it first"):
        check_output_file(tmp_path / "no" / "r.csv", create_folders=False)
    assert made == tmp_path / "a" / "b" / "r.html"
    assert leftovers(tmp_path) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_an_output_folder_is_checked_not_made(tmp_path: Path) -> None:
    blocker = tmp_path / "notes.txt"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(OutputError, match="is a file, not a folder: give a folder"):
        check_output_folder(blocker, option="--dir")
    with pytest.raises(OutputError, match=f"{blocker} is a file, not a folder"):
        check_output_folder(blocker / "pages")
    assert check_output_folder(tmp_path / "pages" / "2027") == tmp_path / "pages" / "2027"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_folder_that_refuses_files_is_found_before_the_work(tmp_path: Path) -> None:
    """chmod 0555, or chattr +i for root (tests/cli/faults.py)."""
    folder = tmp_path / "reports"
    folder.mkdir()
    with refusing_writes(folder):
        with pytest.raises(OutputError, match=r"permission denied .*: make .* writable for the user running"):
            check_output_file(folder / "r.csv", option="--output")
        with pytest.raises(OutputError, match="permission denied"):
            write_atomically(folder / "r.csv", b"data")
        with pytest.raises(OutputError, match=f"permission denied .*: make {folder} writable"):
            check_output_folder(folder / "pages" / "2027", option="FOLDER")
    assert list(folder.iterdir()) == []


def test_a_write_that_fails_leaves_the_old_file_and_no_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "r.csv"
    target.write_bytes(b"old")

    def full(*_args: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OutputError, match="the disk is full") as refused:
        write_atomically(target, b"new", option="--output")
    assert str(refused.value).startswith(f"--output {target}: ")
    with pytest.raises(OutputError):
        save_workbook(Workbook(), tmp_path / "w.xlsx")
    assert target.read_bytes() == b"old" and leftovers(tmp_path) == []
    monkeypatch.undo()
    write_atomically(tmp_path / "no" / "r.csv", b"new")  # a missing folder is made
    assert (tmp_path / "no" / "r.csv").read_bytes() == b"new"


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (errno.EACCES, "permission denied"),
        (errno.EPERM, "permission denied"),
        (errno.EROFS, "the file system is read only"),
        (errno.ENOSPC, "the disk is full"),
        (errno.EDQUOT, "the disk is full"),
        (errno.EISDIR, "is a folder"),
        (errno.ENOENT, "does not exist"),
        (errno.EIO, "cannot be written"),
    ],
)
def test_every_os_error_says_what_to_fix(tmp_path: Path, code: int, reason: str) -> None:
    error = output_error(tmp_path / "r.csv", OSError(code, os.strerror(code)), option="--output")
    assert reason in str(error) and str(error).startswith(f"--output {tmp_path / 'r.csv'}: ")
