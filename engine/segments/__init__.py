"""Segments: rules over customers, refreshed inside the database, with membership history.

* :mod:`~engine.segments.membership`: each segment's members, refreshed as sets, and their history;
* :mod:`~engine.segments.refresh`: everything derived from the data, in order: metrics, scores, segments.
"""

from __future__ import annotations

from engine.segments.membership import list_segments, segment_members, segment_sql
from engine.segments.refresh import RefreshResult, refresh_all

__all__ = [
    "RefreshResult",
    "list_segments",
    "refresh_all",
    "segment_members",
    "segment_sql",
]
