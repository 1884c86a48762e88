"""Campaign runs: ``crm plan`` and ``crm run``: a firing's audience into the outbox, A/B winners."""
