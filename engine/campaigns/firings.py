"""When a campaign fires: the one definition the scheduler, ``crm plan`` and ``crm run`` share.

* ``schedule``: each occurrence of the cron expression in the business zone
  (APScheduler's ``CronTrigger``, DST-correct), within the campaign's dates;
* ``at``: once (a time without a zone is in the business zone);
* ``anniversary``: once a day at :data:`ANNIVERSARY_TIME` business time (the
  step's own send time and quiet hours still apply per customer);
* ``on_segment_entry`` / ``on_event``: polled every :data:`POLL_MINUTES`;
  each run takes what happened since the previous one.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from apscheduler.triggers.cron import CronTrigger

from engine.campaigns.definition import Campaign
from engine.local_time import local_instant

ANNIVERSARY_TIME = dt.time(6, 0)
POLL_MINUTES = 5


def campaign_bounds(campaign: Campaign, zone: zoneinfo.ZoneInfo) -> tuple[dt.datetime, dt.datetime | None]:
    """The first and the end (exclusive) instant of the campaign's dates, in UTC."""
    first = local_instant(campaign.start, dt.time(0), zone)
    end = local_instant(campaign.end + dt.timedelta(days=1), dt.time(0), zone) if campaign.end else None
    return first, end


def at_time(campaign: Campaign, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    """The one-off time of an ``at`` campaign, in UTC."""
    assert campaign.at is not None
    at = campaign.at if campaign.at.tzinfo else campaign.at.replace(tzinfo=zone)
    return at.astimezone(dt.UTC)


def firings(
    campaign: Campaign, zone: zoneinfo.ZoneInfo, start: dt.datetime, end: dt.datetime, *, limit: int = 10_000
) -> list[dt.datetime]:
    """The UTC instants in ``[start, end)`` at which ``campaign`` fires."""
    first, last = campaign_bounds(campaign, zone)
    start, end = max(start, first), min(end, last) if last else end
    if start >= end:
        return []
    if campaign.trigger == "at":
        at = at_time(campaign, zone)
        return [at] if start <= at < end else []
    if campaign.trigger == "schedule":
        assert campaign.schedule is not None
        trigger = CronTrigger.from_crontab(campaign.schedule, timezone=zone)
        times: list[dt.datetime] = []
        previous = None
        moment = trigger.get_next_fire_time(None, start)
        while moment is not None and moment < end and len(times) < limit:
            times.append(moment.astimezone(dt.UTC))
            previous = moment
            moment = trigger.get_next_fire_time(previous, previous + dt.timedelta(microseconds=1))
        return times
    if campaign.trigger == "anniversary":
        day = start.astimezone(zone).date()
        times = []
        while len(times) < limit:
            moment = local_instant(day, ANNIVERSARY_TIME, zone)
            if moment >= end:
                break
            if moment >= start:
                times.append(moment)
            day += dt.timedelta(days=1)
        return times
    # on_segment_entry, on_event: one poll at the start of the window shows what would be picked up
    return [start]


def last_firing(campaign: Campaign, zone: zoneinfo.ZoneInfo, now: dt.datetime) -> dt.datetime | None:
    """The latest firing at or before ``now`` (within the last 400 days), or None."""
    if campaign.trigger in ("on_segment_entry", "on_event"):
        return now.replace(second=0, microsecond=0)
    for days in (1, 31, 400):
        earlier = firings(campaign, zone, now - dt.timedelta(days=days), now + dt.timedelta(microseconds=1))
        if earlier:
            return earlier[-1]
    return None
