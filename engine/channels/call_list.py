"""Call lists for the call centre: one file per day and curator (see :mod:`engine.channels.list_file`).

Each call is a row: the customer, the phone in E.164 and national format, the
local calling window, segment, campaign, script, last purchases, loyalty
balance. :func:`schedule_calls` spreads calls over days by the agents' daily
capacity, highest priority first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import phonenumbers

from engine.channels.base import OutgoingMessage
from engine.channels.list_file import ListFileChannel

T = TypeVar("T")


def schedule_calls(
    calls: Sequence[T], capacity: int, first_day: dt.date, priority: Callable[[T], Any]
) -> dict[dt.date, list[T]]:
    """Calls by day: at most ``capacity`` a day, highest ``priority`` first, the rest on later days."""
    if capacity < 1:
        raise ValueError(f"capacity per day must be at least 1, got {capacity}")
    ordered = sorted(calls, key=priority, reverse=True)
    return {
        first_day + dt.timedelta(days=n): ordered[start : start + capacity]
        for n, start in enumerate(range(0, len(ordered), capacity))
    }


def national(phone: str) -> str:
    """``+79161234567`` as the country writes it (``8 (916) 123-45-67``)."""
    try:
        return phonenumbers.format_number(phonenumbers.parse(phone), phonenumbers.PhoneNumberFormat.NATIONAL)
    except phonenumbers.NumberParseException:
        return phone


class CallListChannel(ListFileChannel):
    """Appends each call to ``folder/calls-<day>-<curator>.csv``; XLSX copies on close."""

    columns = (
        "key",
        "customer_id",
        "name",
        "phone",
        "phone_national",
        "calling_window",
        "timezone",
        "segment",
        "campaign",
        "script",
        "last_purchases",
        "loyalty_balance",
        "curator",
    )
    prefix = "calls"
    group_by = "curator"
    missing_recipient = "no phone"

    def __init__(self, folder: Path, day: dt.date, *, name: str = "call") -> None:
        super().__init__(folder, day, name=name)

    def row_values(self, message: OutgoingMessage) -> Mapping[str, Any]:
        """The phone in both formats."""
        return {"phone": message.recipient, "phone_national": national(message.recipient)}
