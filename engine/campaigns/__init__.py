"""Campaigns as marketers write them: the campaign file, when it fires, its content and its control group.

* :mod:`~engine.campaigns.definition`: what a campaign file may hold (pydantic models, JSON schema);
* :mod:`~engine.campaigns.loading`: every campaign file read and checked against the configuration;
* :mod:`~engine.campaigns.schedules` and :mod:`~engine.campaigns.firings`: when a campaign fires,
  in the business time zone;
* :mod:`~engine.campaigns.content`: a step's content rendered for one customer (sandboxed, autoescaped);
* :mod:`~engine.campaigns.preview`: ``crm preview``, a step rendered for one real customer;
* :mod:`~engine.campaigns.control_group`: how large the control group is and who is in it.

Planning and running them is :mod:`engine.runs`.
"""

from __future__ import annotations

from engine.campaigns.content import ContentRenderer
from engine.campaigns.control_group import CONTROL_HASH, control_order, control_size
from engine.campaigns.definition import (
    CHANNELS,
    Campaign,
    Localised,
    Step,
    campaign_json_schema,
    step_content,
)
from engine.campaigns.firings import firings, last_firing
from engine.campaigns.loading import CampaignFile, campaign_names, campaigns_folder, load_campaigns
from engine.campaigns.preview import preview, template_context
from engine.campaigns.schedules import (
    ANNIVERSARY_AT,
    TRIGGER_EVERY,
    Schedule,
    as_apscheduler_trigger,
    build_trigger,
    campaign_schedule,
    describe,
    every,
)

__all__ = [
    "ANNIVERSARY_AT",
    "CHANNELS",
    "CONTROL_HASH",
    "TRIGGER_EVERY",
    "Campaign",
    "CampaignFile",
    "ContentRenderer",
    "Localised",
    "Schedule",
    "Step",
    "as_apscheduler_trigger",
    "build_trigger",
    "campaign_json_schema",
    "campaign_names",
    "campaign_schedule",
    "campaigns_folder",
    "control_order",
    "control_size",
    "describe",
    "every",
    "firings",
    "last_firing",
    "load_campaigns",
    "preview",
    "step_content",
    "template_context",
]
