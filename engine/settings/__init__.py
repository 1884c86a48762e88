"""Settings: config.toml read through pydantic-settings, ``CRM_*`` variables override.

* :mod:`~engine.settings.config_toml`: the root model, its ``[engine]``, ``[customers]``, ``[metrics]``,
  ``[scores]`` and ``[segments]`` sections, and loading with file, line and field in every error;
* :mod:`~engine.settings.channels`: ``[channels.*]`` (unit costs, prices) and ``[contact_policy]``;
* :mod:`~engine.settings.loyalty`: ``[loyalty.programmes.*]``;
* :mod:`~engine.settings.evaluation`: ``[responses]``, ``[bounces]``, ``[evaluation]`` and ``[api]``;
* :mod:`~engine.settings.strategy`: the three strategies a segment or campaign follows;
* :mod:`~engine.settings.durations`: ``30m``, ``1h``, ``7d``, ``2w``;
* :mod:`~engine.settings.limits`: the one set of limits on money, points, whole numbers, dates
  and durations every door enforces (config, CLI, importers, API);
* :mod:`~engine.settings.zones`: a zone's name to a ZoneInfo, or one clear error;
* :mod:`~engine.settings.toml_lines`: the line of a TOML path, so errors can name it.

The rules inside are compiled by :mod:`engine.config`.
"""

from __future__ import annotations

from engine.settings.channels import CHANNEL_NAMES, DKIM_HEADERS, ChannelsSection, DkimSection, PriceChange
from engine.settings.config_toml import Settings, load_settings, read_model, read_toml
from engine.settings.durations import Lag, add_months, calendar_days, parse_duration, parse_lag
from engine.settings.evaluation import (
    CALL_OUTCOMES,
    FUNNEL_STAGES,
    BouncesSection,
    CallCentreSection,
    ResponsesSection,
)
from engine.settings.limits import (
    EARLIEST_BUSINESS_DATE,
    EARLIEST_DATE,
    LATEST_DATE,
    MAX_AMOUNT,
    MAX_COUNT,
    MAX_DAYS,
    MAX_DURATION,
    MAX_FACTOR,
    MAX_LAG_MONTHS,
    MAX_POINTS,
    MAX_POINTS_TOTAL,
    MAX_PRIORITY,
    MAX_QUANTITY,
    MAX_SCORE_POINTS,
    MAX_TOTAL,
    MONEY_PLACES,
    QUANTITY_PLACES,
    Count,
    Day,
    Days,
    Factor,
    Moment,
    Money,
    Points,
    PointsTotal,
    Priority,
    ScorePoints,
    Total,
    check_date,
    check_duration,
    check_instant,
    check_integer,
    check_money,
    check_points,
    check_quantity,
    parse_integer,
    parse_money,
    parse_points,
    parse_quantity,
)
from engine.settings.loyalty import TIER_WINDOWS, Partner, ProgrammeSection, Tier
from engine.settings.strategy import Strategy
from engine.settings.toml_lines import find_line
from engine.settings.workspace import create_workspace
from engine.settings.zones import time_zone

__all__ = [
    "CALL_OUTCOMES",
    "CHANNEL_NAMES",
    "DKIM_HEADERS",
    "EARLIEST_BUSINESS_DATE",
    "EARLIEST_DATE",
    "FUNNEL_STAGES",
    "LATEST_DATE",
    "MAX_AMOUNT",
    "MAX_COUNT",
    "MAX_DAYS",
    "MAX_DURATION",
    "MAX_FACTOR",
    "MAX_LAG_MONTHS",
    "MAX_POINTS",
    "MAX_POINTS_TOTAL",
    "MAX_PRIORITY",
    "MAX_QUANTITY",
    "MAX_SCORE_POINTS",
    "MAX_TOTAL",
    "MONEY_PLACES",
    "QUANTITY_PLACES",
    "TIER_WINDOWS",
    "BouncesSection",
    "CallCentreSection",
    "ChannelsSection",
    "Count",
    "Day",
    "Days",
    "DkimSection",
    "Factor",
    "Lag",
    "Moment",
    "Money",
    "Partner",
    "Points",
    "PointsTotal",
    "PriceChange",
    "Priority",
    "ProgrammeSection",
    "ResponsesSection",
    "ScorePoints",
    "Settings",
    "Strategy",
    "Tier",
    "Total",
    "add_months",
    "calendar_days",
    "check_date",
    "check_duration",
    "check_instant",
    "check_integer",
    "check_money",
    "check_points",
    "check_quantity",
    "create_workspace",
    "find_line",
    "load_settings",
    "parse_duration",
    "parse_integer",
    "parse_lag",
    "parse_money",
    "parse_points",
    "parse_quantity",
    "read_model",
    "read_toml",
    "time_zone",
]
