"""The points ledger: the commands (earn, redeem, refund, adjust, transfer, merge), balances, audit."""

from __future__ import annotations

from engine.loyalty.ledger.account_lock import lock_accounts
from engine.loyalty.ledger.audit import AuditReport, audit
from engine.loyalty.ledger.core import Receipt, repay_debts
from engine.loyalty.ledger.earning import earn_event, earn_purchase
from engine.loyalty.ledger.member_moves import adjust, merge, transfer
from engine.loyalty.ledger.posting import (
    canonical,
    customer_label,
    customer_label_sql,
    ensure_account,
    record_tier_changes,
    request_hash,
    surviving_account,
)
from engine.loyalty.ledger.redemption import capture, redeem, void, void_expired_holds
from engine.loyalty.ledger.refunds import refund
from engine.loyalty.ledger.statement import Balance, Statement, available_points, balance, statement

__all__ = [
    "AuditReport",
    "Balance",
    "Receipt",
    "Statement",
    "adjust",
    "audit",
    "available_points",
    "balance",
    "canonical",
    "capture",
    "customer_label",
    "customer_label_sql",
    "earn_event",
    "earn_purchase",
    "ensure_account",
    "lock_accounts",
    "merge",
    "record_tier_changes",
    "redeem",
    "refund",
    "repay_debts",
    "request_hash",
    "statement",
    "surviving_account",
    "transfer",
    "void",
    "void_expired_holds",
]
