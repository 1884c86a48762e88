"""What every HTML report page shares: money and counts as pages show them, charts embedded as images.

The budget page, the campaign pages and the programme overview are each one
self-contained file: charts are ``data:image/png;base64`` images, so a page
can be mailed or archived alone.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from decimal import Decimal

CENT = Decimal("0.01")


def format_money(value: Decimal | None) -> str:
    """Money as the page shows it: ``1,234,567.50``; an amount that is not given is an em dash."""
    if value is None:
        return "—"
    return f"{value.quantize(CENT):,}"


def format_count(value: Decimal | int) -> str:
    """A count with thousands separators, decimals only when it has some."""
    if isinstance(value, int):
        return f"{value:,}"
    if value == value.to_integral_value():
        return f"{int(value):,}"
    return f"{value.normalize():,f}"


def png_data_uri(png: bytes) -> str:
    """A PNG as a ``data:`` URI for an ``img`` tag."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


@dataclass(frozen=True)
class Chart:
    """One embedded chart."""

    id: str
    title: str
    alt: str
    src: str
