"""Credit: accounts, purchases and their plans, repayments and where each fen goes."""
