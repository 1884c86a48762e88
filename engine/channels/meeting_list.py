"""Personal meetings (B2B): task lists for curators, one file per day and curator."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from engine.channels.list_file import ListFileChannel


class MeetingListChannel(ListFileChannel):
    """Appends each meeting to ``folder/meetings-<day>-<curator>.csv``; XLSX copies on close."""

    columns = ("key", "customer_id", "company", "name", "phone", "address", "agenda", "campaign", "curator")
    prefix = "meetings"
    group_by = "curator"
    missing_recipient = "no contact for the meeting"

    def __init__(self, folder: Path, day: dt.date, *, name: str = "meeting") -> None:
        super().__init__(folder, day, name=name)
