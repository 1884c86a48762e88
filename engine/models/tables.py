"""Table handles: the Core ``Table`` of every model, for set-based statements.

SQLModel declares each table as a class; the statements of the engine work on
the ``Table`` behind it (``CUSTOMER.c.email``, ``insert(OUTBOX).from_select``).
This module names each one once, typed, so no other module reaches into
``Model.__table__`` itself.
"""

from __future__ import annotations

from sqlalchemy import Table
from sqlmodel import SQLModel

from engine.models.api_key import ApiKey
from engine.models.customer import Customer, CustomerSourceRecord
from engine.models.import_batch import ImportBatch
from engine.models.installation import Installation
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
from engine.models.response import ContactResponse, Conversion
from engine.models.scheduler import SchedulerReload
from engine.models.segment import Segment, SegmentMembership, SegmentRefresh
from engine.models.suppression import Suppression


def table_of(model: type[SQLModel]) -> Table:
    """The Core table of a SQLModel table class."""
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


API_KEY = table_of(ApiKey)
CUSTOMER = table_of(Customer)
SOURCE_RECORD = table_of(CustomerSourceRecord)
IMPORT_BATCH = table_of(ImportBatch)
INSTALLATION = table_of(Installation)
ACCOUNT = table_of(LoyaltyAccount)
ENTRY = table_of(LoyaltyEntry)
LOT = table_of(LoyaltyLot)
OPERATION = table_of(LoyaltyOperation)
TIER_CHANGE = table_of(LoyaltyTierChange)
METRICS = table_of(CustomerMetrics)
METRIC_VALUE = table_of(CustomerMetricValue)
SCORE = table_of(CustomerScore)
RUN = table_of(CampaignRun)
EVENT = table_of(CustomerEvent)
OUTBOX = table_of(OutboxMessage)
WORKER = table_of(OutboxWorker)
PURCHASE = table_of(Purchase)
RESPONSE = table_of(ContactResponse)
CONVERSION = table_of(Conversion)
RELOAD = table_of(SchedulerReload)
SEGMENT = table_of(Segment)
MEMBERSHIP = table_of(SegmentMembership)
REFRESH = table_of(SegmentRefresh)
SUPPRESSION = table_of(Suppression)

__all__ = [
    "ACCOUNT",
    "API_KEY",
    "CONVERSION",
    "CUSTOMER",
    "ENTRY",
    "EVENT",
    "IMPORT_BATCH",
    "INSTALLATION",
    "LOT",
    "MEMBERSHIP",
    "METRICS",
    "METRIC_VALUE",
    "OPERATION",
    "OUTBOX",
    "PURCHASE",
    "REFRESH",
    "RELOAD",
    "RESPONSE",
    "RUN",
    "SCORE",
    "SEGMENT",
    "SOURCE_RECORD",
    "SUPPRESSION",
    "TIER_CHANGE",
    "WORKER",
    "table_of",
]
