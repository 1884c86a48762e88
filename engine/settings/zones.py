"""Time zones by name: the one door from a name someone wrote to a :class:`~zoneinfo.ZoneInfo`.

Config (``[engine] timezone``, a programme's ``timezone``), import files (the
``timezone`` column, the import's zone) and anything else that names a zone
turn the name into a zone here. ``zoneinfo`` alone raises a different error
for each kind of bad name (not found, a malformed key, a folder of zones such
as ``Europe``, a NUL character): :func:`time_zone` answers one clear error for all.
"""

from __future__ import annotations

import zoneinfo
from functools import lru_cache

from engine.errors import InvalidValueError


@lru_cache(maxsize=256)
def time_zone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA time zone ``name`` (``Europe/Moscow``), else :class:`~engine.errors.InvalidValueError`.

    Example::

        time_zone("Europe/Moscow")  # ZoneInfo(key='Europe/Moscow')
        time_zone("Europe")  # InvalidValueError: unknown IANA time zone 'Europe' (e.g. Europe/Moscow)
    """
    if isinstance(name, str) and name and name == name.strip() and len(name) <= 100:
        try:
            return zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder of zones
            pass
    raise InvalidValueError(f"unknown IANA time zone {name!r} (e.g. Europe/Moscow)")
