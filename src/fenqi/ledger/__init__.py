"""Double-entry ledger: chart of accounts, journal entries, two-phase holds, balances, checks."""
