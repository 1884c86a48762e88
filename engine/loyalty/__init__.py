"""Loyalty programmes: an append-only points ledger with lots, tiers, partners and liability.

* :mod:`~engine.loyalty.programme`: a programme of config.toml, compiled;
* :mod:`~engine.loyalty.programme.earn_rules`: how many points a purchase or an event earns;
* :mod:`~engine.loyalty.ledger.account_lock`: one writer per account at a time;
* :mod:`~engine.loyalty.ledger`: the commands (earn, redeem, hold, capture,
  void, refund, adjust, transfer, merge), each idempotent by its key;
* :mod:`~engine.loyalty.batch.accrual`: points for imported purchases, set-based;
* :mod:`~engine.loyalty.batch`: the daily jobs (activate, expire, tiers, events);
* :mod:`~engine.loyalty.ledger.audit`: balances against entries, lots against allocations;
* :mod:`~engine.loyalty.finance`: liability, breakage and partner settlement.

The tables and the rules every writer follows are in :mod:`engine.models.loyalty`.
"""
