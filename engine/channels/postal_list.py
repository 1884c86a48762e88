"""Postal lists for the print shop: one file a day with the address block of each letter."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.channels.base import OutgoingMessage
from engine.channels.list_file import ListFileChannel


class PostalListChannel(ListFileChannel):
    """Appends each letter to ``folder/letters-<day>.csv`` (address block, letter); XLSX on close."""

    columns = ("key", "customer_id", "name", "company", "address", "country", "letter", "campaign")
    prefix = "letters"
    missing_recipient = "no postal address"

    def __init__(self, folder: Path, day: dt.date, *, name: str = "post") -> None:
        super().__init__(folder, day, name=name)

    def row_values(self, message: OutgoingMessage) -> Mapping[str, Any]:
        """The address block is the recipient."""
        return {"address": message.recipient}
