"""Loyalty programmes: an append-only points ledger with lots, tiers, partners and liability.

Four packages, each with its own facade:

* :mod:`engine.loyalty.programme`: a programme of config.toml compiled, with its earn rules;
* :mod:`engine.loyalty.ledger`: the commands (earn, redeem, hold, capture, void, refund, adjust,
  transfer, merge), each idempotent by its key; balances, statements and the audit;
* :mod:`engine.loyalty.batch`: the set-based jobs: accrual of imported purchases and refunds,
  activation, expiry, tiers and customer events, the daily batch;
* :mod:`engine.loyalty.finance`: liability, breakage and partner settlement.

The tables and the rules every writer follows are in :mod:`engine.models.loyalty`.
"""
