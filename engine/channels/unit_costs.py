"""Unit costs: what one contact on a channel costs on a given day, for a campaign and segment.

``[channels.NAME]`` holds a ``unit_cost`` and optional dated ``prices``
(:class:`~engine.settings.channels.PriceChange`). The most specific entry
valid on the day wins: the campaign's own price, then the segment's, then
the channel's dated price, then ``unit_cost``. A price change is a new
entry with a later ``from``, so the cost of every past contact stays
traceable to the price that held when it was made.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from engine.settings import CHANNEL_NAMES, ChannelsSection, PriceChange


@dataclass(frozen=True)
class PriceSpan:
    """One price over consecutive days ``start`` .. ``end`` (inclusive)."""

    start: dt.date
    end: dt.date
    unit_cost: Decimal
    source: str  # "channels.call.unit_cost" or "channels.call.prices[1]"


class UnitCosts:
    """Resolves unit costs from ``[channels.*]``; build one with :meth:`from_channels`."""

    def __init__(self, channels: ChannelsSection) -> None:
        self._channels = channels

    @classmethod
    def from_channels(cls, channels: ChannelsSection) -> UnitCosts:
        """The unit costs of ``[channels]``."""
        return cls(channels)

    def _entry(
        self, channel: str, day: dt.date, campaign: str | None, segment: str | None
    ) -> tuple[Decimal, str]:
        settings = self._channels.get(channel)
        scopes: list[tuple[str, str] | None] = []
        if campaign is not None:
            scopes.append(("campaign", campaign))
        if segment is not None:
            scopes.append(("segment", segment))
        scopes.append(None)
        for scope in scopes:
            found: tuple[int, PriceChange] | None = None
            for n, price in enumerate(settings.prices):
                if price.scope != scope or not _holds(price, day):
                    continue
                if found is None or (price.valid_from or dt.date.min) > (found[1].valid_from or dt.date.min):
                    found = (n, price)
            if found is not None:
                return found[1].unit_cost, f"channels.{channel}.prices[{found[0]}]"
        return settings.unit_cost, f"channels.{channel}.unit_cost"

    def at(
        self, channel: str, day: dt.date, *, campaign: str | None = None, segment: str | None = None
    ) -> Decimal:
        """The unit cost of one contact on ``channel`` on business day ``day``."""
        return self._entry(channel, day, campaign, segment)[0]

    def source(
        self, channel: str, day: dt.date, *, campaign: str | None = None, segment: str | None = None
    ) -> str:
        """Which setting gives the unit cost on ``day`` (for reports that trace every figure)."""
        return self._entry(channel, day, campaign, segment)[1]

    def spans(
        self,
        channel: str,
        start: dt.date,
        end: dt.date,
        *,
        campaign: str | None = None,
        segment: str | None = None,
    ) -> list[PriceSpan]:
        """The prices over ``start`` .. ``end`` (inclusive), one span per price in force."""
        boundaries = {start}
        for price in self._channels.get(channel).prices:
            for day in (price.valid_from, price.until and price.until + dt.timedelta(days=1)):
                if day is not None and start < day <= end:
                    boundaries.add(day)
        days = sorted(boundaries)
        spans: list[PriceSpan] = []
        for first, following in zip(days, [*days[1:], end + dt.timedelta(days=1)], strict=True):
            cost, source = self._entry(channel, first, campaign, segment)
            last = following - dt.timedelta(days=1)
            if spans and spans[-1].unit_cost == cost and spans[-1].source == source:
                spans[-1] = PriceSpan(spans[-1].start, last, cost, source)
            else:
                spans.append(PriceSpan(first, last, cost, source))
        return spans


def _holds(price: PriceChange, day: dt.date) -> bool:
    if price.valid_from is not None and day < price.valid_from:
        return False
    return price.until is None or day <= price.until


def named_in_prices(channels: ChannelsSection) -> list[tuple[str, int, PriceChange]]:
    """Every price entry with its channel and index (to check the segments and campaigns they name)."""
    return [(name, n, price) for name in CHANNEL_NAMES for n, price in enumerate(channels.get(name).prices)]
