"""When a campaign fires: the one definition the scheduler, ``crm plan`` and ``crm run`` share.

* ``schedule``: each occurrence of the cron expression in the business zone
  (:class:`~engine.campaigns.schedules.BusinessCronTrigger`, read as Debian
  cron reads it: a fixed time the clocks skip fires at the change, one they
  repeat fires once), within the campaign's dates;
* ``at``: once (a time without a zone is in the business zone);
* ``anniversary``: once a day at ``[scheduler].anniversary_at`` business time (the
  step's own send time and quiet hours still apply per customer);
* ``on_segment_entry`` / ``on_event``: polled every ``[scheduler].trigger_every``;
  each run takes what happened since the previous one.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from engine.campaigns.definition import Campaign
from engine.campaigns.schedules import (
    ANNIVERSARY_AT,
    build_trigger,
    campaign_schedule,
    fire_times,
)
from engine.clock import local_instant


def campaign_bounds(campaign: Campaign, zone: zoneinfo.ZoneInfo) -> tuple[dt.datetime, dt.datetime | None]:
    """The first and the end (exclusive) instant of the campaign's dates, in UTC."""
    first = local_instant(campaign.start, dt.time(0), zone)
    end = local_instant(campaign.end + dt.timedelta(days=1), dt.time(0), zone) if campaign.end else None
    return first, end


def firings(
    campaign: Campaign,
    zone: zoneinfo.ZoneInfo,
    start: dt.datetime,
    end: dt.datetime,
    *,
    anniversary_at: dt.time = ANNIVERSARY_AT,
    limit: int = 10_000,
) -> list[dt.datetime]:
    """The UTC instants in ``[start, end)`` at which ``campaign`` fires (the scheduler's own triggers)."""
    first, last = campaign_bounds(campaign, zone)
    start, end = max(start, first), min(end, last) if last else end
    if start >= end:
        return []
    if campaign.trigger in ("on_segment_entry", "on_event"):
        # one poll at the start of the window shows what would be picked up
        return [start]
    trigger = build_trigger(campaign_schedule(campaign, zone, anniversary_at=anniversary_at))
    times: list[dt.datetime] = []
    for moment in fire_times(trigger, start, end - dt.timedelta(microseconds=1)):
        times.append(moment)
        if len(times) >= limit:
            break
    return times


def last_firing(
    campaign: Campaign, zone: zoneinfo.ZoneInfo, now: dt.datetime, *, anniversary_at: dt.time = ANNIVERSARY_AT
) -> dt.datetime | None:
    """The latest firing at or before ``now`` (within the last 400 days), or None."""
    if campaign.trigger in ("on_segment_entry", "on_event"):
        return now.replace(second=0, microsecond=0)
    for days in (1, 31, 400):
        earlier = firings(
            campaign,
            zone,
            now - dt.timedelta(days=days),
            now + dt.timedelta(microseconds=1),
            anniversary_at=anniversary_at,
        )
        if earlier:
            return earlier[-1]
    return None
