"""The loyalty batch jobs: accrual of imported purchases and refunds, activation, expiry, tiers, events."""
