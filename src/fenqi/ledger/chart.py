"""The chart of accounts: what each ledger account code means and on which side it grows.

Customer accounts are owned by one credit account (owner_kind "customer", owner_id its id), so
a customer's balances live on rows keyed by that id; merchant accounts by merchant id; the
platform's own books by owner "platform".
"""

from __future__ import annotations

from enum import StrEnum


class OwnerKind(StrEnum):
    PLATFORM = "platform"
    CUSTOMER = "customer"
    MERCHANT = "merchant"
    FUNDER = "funder"


class AccountCode(StrEnum):
    # customer receivables (assets of the platform)
    PRINCIPAL_RECEIVABLE = "principal_receivable"
    FEE_RECEIVABLE = "fee_receivable"
    INTEREST_RECEIVABLE = "interest_receivable"
    PENALTY_RECEIVABLE = "penalty_receivable"
    WRITTEN_OFF_RECEIVABLE = "written_off_receivable"
    # what the platform owes a customer who paid more than owed (liability)
    CUSTOMER_CREDIT_BALANCE = "customer_credit_balance"
    # merchants
    MERCHANT_PAYABLE = "merchant_payable"
    # platform books
    CASH_CLEARING = "cash_clearing"
    # fees and scheduled interest booked when a plan is made, earned period by period
    UNEARNED_FEE_INCOME = "unearned_fee_income"
    UNEARNED_INTEREST_INCOME = "unearned_interest_income"
    FEE_INCOME = "fee_income"
    INTEREST_INCOME = "interest_income"
    PENALTY_INCOME = "penalty_income"
    MERCHANT_DISCOUNT_INCOME = "merchant_discount_income"
    LOSS_ALLOWANCE = "loss_allowance"
    CREDIT_LOSS_EXPENSE = "credit_loss_expense"
    RECOVERY_INCOME = "recovery_income"
    # funders (owner_kind "funder", owner_id the funder's id; see fenqi/funding and
    # docs/funding.md): the principal of the loans a funder holds, which the platform services
    # for it (a credit: what is collected on it is the funder's), the cash collected for it and
    # not yet settled, and the running settlement position with it (a debit: the funder owes
    # the platform, e.g. its share of a disbursement; for own capital, the capital deployed)
    FUNDER_PRINCIPAL = "funder_principal"
    FUNDER_CASH_DUE = "funder_cash_due"
    FUNDER_SETTLEMENT = "funder_settlement"
    # the partners' share of the income collected (their yield): an expense of the platform
    FUNDING_COST = "funding_cost"


# Receivables can never be paid down below zero, and a customer's credit balance never goes
# negative: these flags are enforced in the database by the same statement that moves money.
CREDITS_MUST_NOT_EXCEED_DEBITS = frozenset(
    {
        AccountCode.PRINCIPAL_RECEIVABLE,
        AccountCode.FEE_RECEIVABLE,
        AccountCode.INTEREST_RECEIVABLE,
        AccountCode.PENALTY_RECEIVABLE,
        AccountCode.WRITTEN_OFF_RECEIVABLE,
    }
)
# A funder's principal and the cash due to it never go below zero either.
DEBITS_MUST_NOT_EXCEED_CREDITS = frozenset(
    {
        AccountCode.CUSTOMER_CREDIT_BALANCE,
        AccountCode.FUNDER_PRINCIPAL,
        AccountCode.FUNDER_CASH_DUE,
    }
)

CUSTOMER_CODES = (
    AccountCode.PRINCIPAL_RECEIVABLE,
    AccountCode.FEE_RECEIVABLE,
    AccountCode.INTEREST_RECEIVABLE,
    AccountCode.PENALTY_RECEIVABLE,
    AccountCode.WRITTEN_OFF_RECEIVABLE,
    AccountCode.CUSTOMER_CREDIT_BALANCE,
)

FUNDER_CODES = (
    AccountCode.FUNDER_PRINCIPAL,
    AccountCode.FUNDER_CASH_DUE,
    AccountCode.FUNDER_SETTLEMENT,
)

# Accounts without balance rules whose rows nearly every entry touches: their changes are
# spread over slot rows (see store/schema/ledger.py) so concurrent entries do not queue.
HOT_CODES = frozenset(AccountCode) - frozenset(CUSTOMER_CODES) - frozenset(FUNDER_CODES)
