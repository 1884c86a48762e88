"""The points ledger: the commands (earn, redeem, refund, adjust, transfer, merge), balances, audit."""
