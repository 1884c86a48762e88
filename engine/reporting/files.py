"""Files the engine writes: checked before the work, written whole or not at all, safe cells, workbooks.

A path that cannot be written (no folder, a file where a folder should be,
a folder where the file should be, no permission, a full disk) raises
:class:`~engine.errors.OutputError` naming the path, where it came from and
what to fix, never an ``OSError``. Commands check their output paths
(:func:`check_output_file`, :func:`check_output_folder`) before they do the
work, so a bad path changes nothing; a file is then written through a
temporary file beside it and renamed (:func:`write_atomically`): readers see
the old file or the whole new one, and no ``.part`` file is left behind.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import OutputError
from engine.reporting.spreadsheet import guard_workbook

if TYPE_CHECKING:
    from openpyxl import Workbook


def _file_in_the_way(path: Path) -> Path | None:
    """The first ancestor of ``path`` that exists and is not a folder."""
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return None


def output_error(path: Path, error: OSError, *, option: str | None = None) -> OutputError:
    """The :class:`OutputError` for ``error``, met writing ``path``: what is wrong and what to fix."""
    code = error.errno
    folder = path.absolute().parent
    if code == errno.EEXIST and path.exists() and not path.is_dir():
        reason = f"{path} is a file, not a folder: move it away, or choose another path"
    elif code in (errno.ENOTDIR, errno.EEXIST):
        blocker = _file_in_the_way(path)
        reason = (
            f"{blocker} is a file, not a folder: give a path in a folder"
            if blocker is not None
            else "a part of the path is not a folder: give a path in a folder"
        )
    elif code == errno.EISDIR:
        reason = "is a folder: give the name of a file in it"
    elif code == errno.ENOENT:
        reason = (
            f"the folder {path.absolute().parent} does not exist: create it first, or choose another path"
        )
    elif code in (errno.EACCES, errno.EPERM):
        reason = (
            f"permission denied ({error.strerror}): make {folder} writable for the user running crm, "
            "or choose another path"
        )
    elif code == errno.EROFS:
        reason = "the file system is read only: choose a path on a writable one"
    elif code in (errno.ENOSPC, errno.EDQUOT):
        reason = f"the disk is full ({error.strerror}): free space, or choose another disk"
    else:
        reason = f"cannot be written ({error.strerror or error}): check the path and its folder"
    return OutputError(str(path), reason, option=option)


def remove_quietly(path: Path) -> None:
    """Remove the file ``path`` if it is there; a failure to remove it is not an error of its own."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def _probe(folder: Path, target: Path, option: str | None) -> None:
    """Create and remove a file in ``folder``: permission, a read-only or full disk show now."""
    probe = folder / f".{target.name}.{secrets.token_hex(4)}.probe"
    try:
        probe.open("xb").close()
    except OSError as exc:
        raise output_error(target, exc, option=option) from exc
    remove_quietly(probe)


def check_output_file(path: Path, *, option: str | None = None, create_folders: bool = True) -> Path:
    """``path`` if a file can be written there, else :class:`OutputError`; nothing is left behind.

    Its folder must exist or be possible to make (the writer makes it; without
    ``create_folders`` it must exist), ``path`` must not be a folder, and a
    file must be creatable in the folder. ``option`` names where the path
    came from (``--output``...), for the message.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(str(path), "is a folder: give the name of a file in it", option=option)
    blocker = _file_in_the_way(path)
    if blocker is not None:
        reason = f"{blocker} is a file, not a folder: give a path in a folder"
        raise OutputError(str(path), reason, option=option)
    folder = path.absolute().parent
    if not folder.is_dir():
        if not create_folders:
            raise OutputError(
                str(path),
                f"the folder {folder} does not exist: create it first, or choose another path",
                option=option,
            )
        check_output_folder(folder, option=option)
        return path
    _probe(folder, path, option)
    return path


def check_output_folder(folder: Path, *, option: str | None = None) -> Path:
    """``folder`` if files can be written in it, or it can be made; else :class:`OutputError`.

    Nothing is made here: a folder that does not exist is checked through
    the nearest folder above it that does (the writer makes it).
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(str(folder), "is a file, not a folder: give a folder", option=option)
    blocker = _file_in_the_way(folder)
    if blocker is not None:
        reason = f"{blocker} is a file, not a folder: give a path in a folder"
        raise OutputError(str(folder), reason, option=option)
    existing = folder.absolute()
    while not existing.is_dir():
        existing = existing.parent
    _probe(existing, existing / folder.name, option)
    return folder


def write_atomically(path: Path, data: bytes, *, option: str | None = None) -> Path:
    """Write ``data`` to ``path`` through a new temporary file in the same folder, then rename.

    Readers see the old file or the whole new one, never half of it. A
    missing folder is made. A path that cannot be written raises
    :class:`OutputError` (``option`` names where it came from) and leaves
    no temporary file.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with temporary.open("xb") as file:
            file.write(data)
        os.replace(temporary, path)
    except OSError as exc:
        remove_quietly(temporary)
        raise output_error(path, exc, option=option) from exc
    except BaseException:
        remove_quietly(temporary)
        raise
    return path


def save_workbook(workbook: Workbook, path: Path, *, option: str | None = None) -> Path:
    """Save ``workbook`` to ``path`` atomically (see :func:`write_atomically`), every cell guarded.

    A write-only workbook cannot be read back: its rows must be appended through
    :func:`~engine.reporting.spreadsheet.safe_cell`.
    """
    if not getattr(workbook, "write_only", False):
        guard_workbook(workbook)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return write_atomically(path, buffer.getvalue(), option=option)
