"""The credit services under one name, for callers written before the split (issue 22).

A thin facade: the code lives in one module per concept, and new code imports from there:

- `fenqi.credit.accounts`: open a credit account, read one, its ledger accounts;
- `fenqi.credit.purchases`: authorize (a hold), capture, sell;
- `fenqi.credit.plan_records`: a plan and its lines as rows;
- `fenqi.credit.owed`: what an account owes line by line, paying an allocation onto it;
- `fenqi.credit.repayments`: repay, reverse a repayment;
- `fenqi.credit.recoveries`: payments on a charged-off account;
- `fenqi.credit.summary`: an account's figures.

Each function runs inside the caller's transaction: it loads rows, calls the pure rules
(plans, allocation), and writes the ledger entry and the credit rows together.
"""

from __future__ import annotations

from fenqi.credit.accounts import (
    PLATFORM,
    account_of,
    customer_account,
    get_account,
    ledger_account,
    open_credit_account,
    platform_account,
)
from fenqi.credit.owed import close_paid_plans, outstanding_lines
from fenqi.credit.plan_records import store_plan
from fenqi.credit.purchases import (
    HOLD_SECONDS_DEFAULT,
    Authorization,
    Sale,
    authorize,
    capture,
    sell,
)
from fenqi.credit.repayments import RepaymentResult, repay, reverse_repayment
from fenqi.credit.summary import account_summary

__all__ = [
    "HOLD_SECONDS_DEFAULT",
    "PLATFORM",
    "Authorization",
    "RepaymentResult",
    "Sale",
    "account_of",
    "account_summary",
    "authorize",
    "capture",
    "close_paid_plans",
    "customer_account",
    "get_account",
    "ledger_account",
    "open_credit_account",
    "outstanding_lines",
    "platform_account",
    "repay",
    "reverse_repayment",
    "sell",
    "store_plan",
]
