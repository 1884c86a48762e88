"""The loyalty batch jobs: accrual of imported purchases and refunds, activation, expiry, tiers, events."""

from __future__ import annotations

from engine.loyalty.batch.accrual import AccrualResult, accrue_purchases
from engine.loyalty.batch.daily import BatchResult, run_batch
from engine.loyalty.batch.expiry import activate_due, expire_due, preview_expiry
from engine.loyalty.batch.refund_batch import refund_imported
from engine.loyalty.batch.tiers import recompute_tiers, set_tier_override, tier_report

__all__ = [
    "AccrualResult",
    "BatchResult",
    "accrue_purchases",
    "activate_due",
    "expire_due",
    "preview_expiry",
    "recompute_tiers",
    "refund_imported",
    "run_batch",
    "set_tier_override",
    "tier_report",
]
