"""Settings: config.toml read through pydantic-settings, ``CRM_*`` variables override.

* :mod:`~engine.settings.config_toml`: the root model, its ``[engine]``, ``[customers]``, ``[metrics]``,
  ``[scores]`` and ``[segments]`` sections, and loading with file, line and field in every error;
* :mod:`~engine.settings.channels`: ``[channels.*]`` (unit costs, prices) and ``[contact_policy]``;
* :mod:`~engine.settings.loyalty`: ``[loyalty.programmes.*]``;
* :mod:`~engine.settings.evaluation`: ``[responses]``, ``[bounces]``, ``[evaluation]`` and ``[api]``;
* :mod:`~engine.settings.strategy`: the three strategies a segment or campaign follows;
* :mod:`~engine.settings.durations`: ``30m``, ``1h``, ``7d``, ``2w``;
* :mod:`~engine.settings.toml_lines`: the line of a TOML path, so errors can name it.

The rules inside are compiled by :mod:`engine.config`.
"""

from __future__ import annotations

from engine.settings.channels import CHANNEL_NAMES, ChannelsSection, PriceChange
from engine.settings.config_toml import Settings, load_settings, read_model, read_toml
from engine.settings.durations import Lag, add_months, calendar_days, parse_duration, parse_lag
from engine.settings.evaluation import (
    CALL_OUTCOMES,
    FUNNEL_STAGES,
    BouncesSection,
    CallCentreSection,
    ResponsesSection,
)
from engine.settings.loyalty import TIER_WINDOWS, Partner, ProgrammeSection, Tier
from engine.settings.strategy import Strategy
from engine.settings.toml_lines import find_line

__all__ = [
    "CALL_OUTCOMES",
    "CHANNEL_NAMES",
    "FUNNEL_STAGES",
    "TIER_WINDOWS",
    "BouncesSection",
    "CallCentreSection",
    "ChannelsSection",
    "Lag",
    "Partner",
    "PriceChange",
    "ProgrammeSection",
    "ResponsesSection",
    "Settings",
    "Strategy",
    "Tier",
    "add_months",
    "calendar_days",
    "find_line",
    "load_settings",
    "parse_duration",
    "parse_lag",
    "read_model",
    "read_toml",
]
