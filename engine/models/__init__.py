"""The tables of crm-engine (SQLModel); importing this package registers them all."""

from __future__ import annotations

from engine.clock import utcnow
from engine.models.api_key import API_SCOPES, ApiKey
from engine.models.customer import CONSENT_CHANNELS, LIFECYCLE_STAGES, Customer, CustomerSourceRecord
from engine.models.import_batch import ImportBatch
from engine.models.loyalty import (
    LoyaltyAccount,
    LoyaltyEntry,
    LoyaltyLot,
    LoyaltyOperation,
    LoyaltyTierChange,
)
from engine.models.metrics import CustomerMetrics, CustomerMetricValue, CustomerScore
from engine.models.outbox import CampaignRun, CustomerEvent, OutboxMessage, OutboxWorker
from engine.models.purchase import Purchase
from engine.models.response import RESPONSE_KINDS, ContactResponse, Conversion
from engine.models.scheduler import APSCHEDULER_JOBS, SchedulerReload
from engine.models.segment import Segment, SegmentMembership, SegmentRefresh
from engine.models.suppression import SUPPRESSION_REASONS, Suppression
from engine.sql.types import Money, UtcDateTime

__all__ = [
    "API_SCOPES",
    "APSCHEDULER_JOBS",
    "CONSENT_CHANNELS",
    "LIFECYCLE_STAGES",
    "RESPONSE_KINDS",
    "SUPPRESSION_REASONS",
    "ApiKey",
    "CampaignRun",
    "ContactResponse",
    "Conversion",
    "Customer",
    "CustomerEvent",
    "CustomerMetricValue",
    "CustomerMetrics",
    "CustomerScore",
    "CustomerSourceRecord",
    "ImportBatch",
    "LoyaltyAccount",
    "LoyaltyEntry",
    "LoyaltyLot",
    "LoyaltyOperation",
    "LoyaltyTierChange",
    "Money",
    "OutboxMessage",
    "OutboxWorker",
    "Purchase",
    "SchedulerReload",
    "Segment",
    "SegmentMembership",
    "SegmentRefresh",
    "Suppression",
    "UtcDateTime",
    "utcnow",
]
