"""Campaigns: campaign files, content rendering, contact policy in local time (planning and running next)."""

from __future__ import annotations

from engine.campaigns.definition import CHANNELS, Campaign, Step, campaign_json_schema
from engine.campaigns.loading import CampaignFile, load_campaigns

__all__ = ["CHANNELS", "Campaign", "CampaignFile", "Step", "campaign_json_schema", "load_campaigns"]
