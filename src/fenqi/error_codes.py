"""Every machine `code` fenqi answers with: one place, with its HTTP status and one line.

A raise site still names its code as a string (`CreditError(..., code="nothing_to_pay")`);
`tests/test_error_codes.py` fails when a `code="..."` literal in `src/` (or a class's `code`)
is not listed here, so the list stays complete. The API answers a code with the status and
title given here (`fenqi.api.problems`; the API layer's own refusals are members too), from API
version 2026-12-03 on; before it, with the status the raise site gave. One meaning has one
spelling: the spellings merged into another are in `LEGACY_CODES`, still answered to requests
at earlier versions (the raise site's `legacy_code`). The doc line is the raise site's message
(… where it names values). Codes are public: renaming one is an API change (docs/api.md).
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """A stable machine code; `.http_status` and `.doc` say what it answers with and means."""

    http_status: int
    doc: str

    def __new__(cls, value: str, http_status: int = 400, doc: str = "") -> ErrorCode:
        member = str.__new__(cls, value)
        member._value_ = value
        member.http_status = http_status
        member.doc = doc
        return member

    ACCOUNT_CHARGED_OFF = (
        "account_charged_off",
        422,
        "a charged-off account cannot be restructured",
    )
    ACCOUNT_EXISTS = ("account_exists", 422, "customer … already has a … account (…)")
    ACCOUNT_NOT_ACTIVE = ("account_not_active", 402, "account … is …")
    ALREADY_REVERSED = ("already_reversed", 409, "repayment … was already reversed")
    AMOUNT_EXCEEDS_PENDING = (
        "amount_exceeds_pending",
        400,
        "amount … is more than the … still held",
    )
    BAD_KEY_CONFIG = ("bad_key_config", 422, "blind_index_key must be set when data_keys is set")
    BATCH_ERROR = ("batch_error", 409, "raised as BatchError (batch/eod.py)")
    BATCH_FUTURE_DATE = ("batch_future_date", 422, "raised as FutureDate (batch/eod.py)")
    BATCH_IN_PROGRESS = ("batch_in_progress", 409, "raised as RunInProgress (batch/eod.py)")
    BOOK_MISMATCH = (
        "book_mismatch",
        500,
        "this database is fenqi's … book and cannot serve as the … book (store/books.py)",
    )
    CAPTURE_EXCEEDS_AUTHORIZATION = (
        "capture_exceeds_authorization",
        422,
        "amount_fen: … is more than the … still authorized",
    )
    CONSENT_REQUIRED = (
        "consent_required",
        422,
        "consents: a credit decision needs consent to a bureau inquiry",
    )
    CREDIT_ERROR = ("credit_error", 422, "raised as CreditError (credit/errors.py)")
    CURRENCY_MISMATCH = ("currency_mismatch", 422, "product: … lends in … but the shop sells in …")
    DATABASE_NOT_READY = ("database_not_ready", 503, "raised as DatabaseNotReady (cli_support.py)")
    DECLINED = ("declined", 402, "raised as Declined (credit/errors.py)")
    DECRYPT_FAILED = (
        "decrypt_failed",
        422,
        "…: decryption failed under key … (wrong key or context, or the ciphertext was altered)",
    )
    DUPLICATE_ORDER_REF = ("duplicate_order_ref", 409, "merchant_order_ref: … is already order …")
    EXCEEDS_CREDIT_BALANCE = (
        "exceeds_credit_balance",
        422,
        "amount_fen: more than the credit balance to pay back",
    )
    EXCEEDS_OUTSTANDING = ("exceeds_outstanding", 422, "principal_fen: …")
    FORBIDDEN = ("forbidden", 403, "merchant … is …")
    FUNDING_ERROR = ("funding_error", 422, "raised as FundingError (funding/service.py)")
    FUNDING_INVALID = ("funding_invalid", 422, "raised as FundingConfigError (funding/loader.py)")
    FUNDING_LEDGER_REFUSED = ("funding_ledger_refused", 422, "ledger refused the funders' split: …")
    FUNDING_UNAVAILABLE = ("funding_unavailable", 422, "no funder lends in …")
    IDEMPOTENCY_CONFLICT = (
        "idempotency_conflict",
        409,
        "client_id … was already used for another event",
    )
    IDEMPOTENCY_KEY_REQUIRED = (
        "idempotency_key_required",
        400,
        "every POST needs an Idempotency-Key header",
    )
    IDEMPOTENCY_KEY_REUSED = (
        "idempotency_key_reused",
        409,
        "Idempotency-Key … was used for a different request",
    )
    IDENTITY_MISMATCH = (
        "identity_mismatch",
        409,
        "raised as IdentityMismatch (credit/customers.py)",
    )
    INVALID_ACTION = ("invalid_action", 422, "action: … is not one of …")
    INVALID_AMOUNT = ("invalid_amount", 422, "amount_fen: must be a positive integer, got …")
    INVALID_AMOUNTS = ("invalid_amounts", 400, "nothing to post: every amount is zero")
    INVALID_AUDIT = ("invalid_audit", 422, "audit actor_kind: … is not one of …")
    INVALID_CAP = ("invalid_cap", 400, "debit_cap_fen must not be negative")
    INVALID_CLIENT_ID = ("invalid_client_id", 400, "client_id: 1 to 128 characters")
    INVALID_CONSENT = ("invalid_consent", 422, "kind: no such consent kind …; known: …")
    INVALID_CURSOR = ("invalid_cursor", 400, "cursor: not a cursor this API returned")
    INVALID_DISPLAY_NAME = ("invalid_display_name", 422, "display_name: at most … characters")
    INVALID_ID_NUMBER = ("invalid_id_number", 422, "…: … (got …)")
    INVALID_IDENTITY = ("invalid_identity", 422, "raised as IdentityError (privacy/errors.py)")
    INVALID_INCOME_BAND = ("invalid_income_band", 422, "income_band: one of …")
    INVALID_MOBILE = (
        "invalid_mobile",
        422,
        "…: must be a mainland mobile number, 11 digits starting 13-19 (got …)",
    )
    INVALID_NAME = ("invalid_name", 422, "name: 1 to … characters")
    INVALID_POSTINGS = ("invalid_postings", 400, "postings: 1 to … per entry, got …")
    INVALID_TERMS = ("invalid_terms", 422, "terms: 1 to … months")
    INVALID_TRANSITION = ("invalid_transition", 422, "account … is …; cannot …")
    INVALID_USERNAME = (
        "invalid_username",
        422,
        "username: 3-64 characters of a-z, 0-9, '.', '_', '-', starting with a letter or digit",
    )
    INVALID_WEBHOOK_ENDPOINT = (
        "invalid_webhook_endpoint",
        422,
        "raised as InvalidEndpoint (webhooks/errors.py)",
    )
    INVALID_WEBHOOK_EVENT = (
        "invalid_webhook_event",
        422,
        "raised as InvalidEvent (webhooks/errors.py)",
    )
    LEDGER_ERROR = ("ledger_error", 400, "raised as LedgerError (ledger/entry.py)")
    LEDGER_REJECTED = ("ledger_rejected", 422, "repayment refused by the ledger: …")
    LIVE_BOOK_ONLY = ("live_book_only", 400, "… works on the live book only, not in test mode")
    LIMIT_OUT_OF_RANGE = ("limit_out_of_range", 422, "limit_fen: … is outside 0..…")
    LOGIN_BUSY = ("login_busy", 503, "raised as HashingBusy (privacy/passwords.py)")
    MERCHANT_EXISTS = ("merchant_exists", 409, "merchant … exists")
    NO_CREDIT_BALANCE = ("no_credit_balance", 422, "there is no credit balance to pay back")
    NOT_CONVERTIBLE = ("not_convertible", 422, "plan … is partly paid; pay it or repay first")
    NOT_DELINQUENT = (
        "not_delinquent",
        422,
        "hardship plans are for accounts in arrears (days past due > 0)",
    )
    NOT_FOUND = ("not_found", 404, "… … not found (what is named: account, entry, plan, event, …)")
    NOT_REVERSIBLE = ("not_reversible", 400, "entry … moved no money")
    NOTHING_TO_CONVERT = ("nothing_to_convert", 422, "plan_ids: name at least one purchase")
    NOTHING_TO_PAY = ("nothing_to_pay", 422, "nothing owed to …")
    NOTHING_TO_RESTRUCTURE = ("nothing_to_restructure", 422, "nothing left to restructure")
    ORDER_NOT_CAPTURABLE = ("order_not_capturable", 422, "order … is …; nothing to capture")
    ORDER_NOT_VOIDABLE = ("order_not_voidable", 422, "order … is …; nothing to void")
    OVERPAYMENT_TOO_LARGE = (
        "overpayment_too_large",
        422,
        "amount_fen: … is … more than the … owed; … accepts at most … more",
    )
    PAYOFF_AMOUNT_MISMATCH = (
        "payoff_amount_mismatch",
        422,
        "amount_fen: the payoff amount today is …, not …",
    )
    PAYOFF_NOT_ALLOWED = ("payoff_not_allowed", 422, "… does not allow early payoff")
    PENDING_ALREADY_RESOLVED = ("pending_already_resolved", 400, "pending entry … is already …")
    PLAN_NOT_FUNDED = ("plan_not_funded", 404, "plan … is not funded")
    PLAN_NOT_OFFERED = ("plan_not_offered", 422, "terms: … has no interest-free cycle; choose …")
    PLAN_NOT_OPEN = ("plan_not_open", 422, "plan … is …")
    PRIVACY_ERROR = ("privacy_error", 422, "raised as PrivacyError (privacy/errors.py)")
    PRODUCT_INVALID = (
        "product_invalid",
        422,
        "raised as ProductError (products/catalog_loader.py)",
    )
    PRODUCT_MISMATCH = (
        "product_mismatch",
        422,
        "the account is on another product than the one named",
    )
    QUOTE_INVALID = (
        "quote_invalid",
        422,
        "terms or tier not offered, or an amount outside the product's range (pricing/quote.py)",
    )
    RATE_CAP_EXCEEDED = ("rate_cap_exceeded", 422, "raised as RateCapExceeded (pricing/cap.py)")
    REASON_REQUIRED = ("reason_required", 422, "reason: … needs a reason")
    REFUND_EXCEEDS_PURCHASE = (
        "refund_exceeds_purchase",
        422,
        "amount_fen: … is more than the … left to refund on this plan",
    )
    REVERSAL_REFUSED = ("reversal_refused", 409, "the ledger refused the reversal: …")
    RISK_BAD_ARTIFACT = ("risk.bad_artifact", 400, "raised as ArtifactError (risk/errors.py)")
    RISK_BAD_DATA = ("risk.bad_data", 400, "raised as BadDataError (risk/errors.py)")
    RISK_BAD_FLOW = ("risk.bad_flow", 400, "raised as FlowError (risk/errors.py)")
    RISK_ERROR = ("risk.error", 400, "raised as RiskError (risk/errors.py)")
    RISK_FEATURE_MISMATCH = (
        "risk.feature_mismatch",
        400,
        "raised as FeatureMismatchError (risk/errors.py)",
    )
    RISK_STORE = ("risk.store", 400, "cannot record the decision (is the database migrated?): …")
    SAME_ACCOUNT = ("same_account", 400, "a posting needs two different accounts")
    SEARCH_NEEDS_A_KEY = ("search_needs_a_key", 422, "give phone or id_number")
    STAFF_ERROR = ("staff_error", 422, "raised as StaffError (privacy/errors.py)")
    TEST_MODE_UNAVAILABLE = (
        "test_mode_unavailable",
        409,
        "test mode is off on this server (no test book: FENQI_TEST_DATABASE_URL)",
    )
    TOO_MANY_ATTEMPTS = ("too_many_attempts", 429, "raised as LoginThrottled (privacy/logins.py)")
    UNAUTHORIZED = ("unauthorized", 401, "send Authorization: Bearer <token>")
    UNKNOWN_CURRENCY = ("unknown_currency", 422, "currency: … is not a currency of any product (…)")
    UNKNOWN_PRICING_TIER = (
        "unknown_pricing_tier",
        500,
        "raised as TierVocabularyError (products/tiers.py)",
    )
    UNKNOWN_ROLE = ("unknown_role", 422, "role: no such role …; known: …")
    UNKNOWN_TIER = ("unknown_tier", 422, "tier: … has no tier …")
    UNSAFE_WEBHOOK_URL = (
        "unsafe_webhook_url",
        422,
        "raised as UnsafeDestination (webhooks/destinations.py)",
    )
    USE_BUSINESS_OPERATION = (
        "use_business_operation",
        409,
        "entry … is repayment …: reverse it with POST /v1/ops/accounts/…/repayments/…/reverse",
    )
    USERNAME_TAKEN = ("username_taken", 409, "a staff username already in use (privacy/staff.py)")
    VALUE_TOO_LONG = ("value_too_long", 422, "…: value over … bytes")
    WEAK_PASSWORD = ("weak_password", 422, "password: must not be the username")
    WEBHOOK_ERROR = ("webhook_error", 422, "raised as WebhookError (webhooks/errors.py)")
    WEBHOOK_REPLAY_CONFLICT = (
        "webhook_replay_conflict",
        409,
        "raised as ReplayConflict (webhooks/errors.py)",
    )

    # the HTTP layer's own refusals (fenqi.api.problems, fenqi.api.middleware, versioning)
    BAD_REQUEST = ("bad_request", 400, "Content-Length is not a number")
    DUPLICATE_KEY = ("duplicate_key", 400, "the JSON body names … more than once")
    HTTP_ERROR = ("http_error", 400, "an HTTP error of the framework with no code of its own")
    INTERNAL_ERROR = ("internal_error", 500, "an internal error occurred; it has been logged")
    MALFORMED_JSON = ("malformed_json", 400, "the body is not valid JSON")
    METHOD_NOT_ALLOWED = ("method_not_allowed", 405, "the path does not take this method")
    REQUEST_TOO_LARGE = ("request_too_large", 413, "the request body is larger than the limit")
    UNSUPPORTED_VERSION = ("unsupported_version", 400, "Fenqi-Version: … is not a version")
    VALIDATION_ERROR = ("validation_error", 422, "…: the field's problem (pydantic)")

    BUREAU_AUTHORIZATION_REQUIRED = (
        "bureau_authorization_required",
        403,
        "raised as NoAuthorization (bureau/errors.py)",
    )
    BUREAU_ERROR = ("bureau_error", 422, "raised as BureauError (bureau/errors.py)")
    BUREAU_FILE_INVALID = (
        "bureau_file_invalid",
        422,
        "raised as FileFormatError (bureau/errors.py)",
    )
    BUREAU_UNAVAILABLE = (
        "bureau_unavailable",
        503,
        "raised as BureauUnavailable (bureau/errors.py)",
    )
    # issue 18: disputes (bureau/disputes.py), data-subject requests (privacy/rights.py),
    # rate regimes (compliance/regimes.py)
    DISPUTE_INVALID = ("dispute_invalid", 422, "raised as DisputeError (bureau/corrections.py)")
    DISPUTE_EXISTS = ("dispute_exists", 409, "a dispute of this account's … record is open")
    DISPUTE_CLOSED = ("dispute_closed", 409, "dispute … is already corrected or confirmed")
    DISPUTE_NOTHING_TO_CORRECT = (
        "dispute_nothing_to_correct",
        409,
        "the ledger still gives the record reported for …: nothing to correct",
    )
    PRIVACY_REQUEST_INVALID = (
        "privacy_request_invalid",
        422,
        "raised as RightsError (privacy/rights.py)",
    )
    PRIVACY_REQUEST_REFUSED = (
        "privacy_request_refused",
        409,
        "deletion refused: credit account(s) … still open or owing",
    )
    COMPLAINT_INVALID = (
        "complaint_invalid",
        422,
        "raised as ComplaintError (compliance/complaints.py)",
    )
    COMPLAINT_CLOSED = ("complaint_closed", 409, "complaint … is closed already")
    RATE_REGIME_INVALID = ("rate_regime_invalid", 422, "raised as RegimeError (regimes.py)")
    REPORT_INVALID = ("report_invalid", 422, "report: one of overdue, rates, disputes, …")
    CONFLICT = (
        "conflict",
        409,
        "the secret was rotated at the same time; read the endpoint and try again",
    )
    INVALID_MONTH = ("invalid_month", 400, "month: … is not a month like 2026-01")
    INVALID_RANGE = ("invalid_range", 422, "to: must not be before from")
    INVALID_REQUEST = ("invalid_request", 422, "expire_others_in_hours: must be 0 to …")
    LAST_API_KEY = (
        "last_api_key",
        409,
        "this is the shop's last usable API key: roll a new one first, then revoke this one",
    )
    PARTNER_FILE_INVALID = ("partner_file_invalid", 422, "…: missing columns …")
    PARTNER_FILE_MISMATCH = (
        "partner_file_mismatch",
        422,
        "raised as PartnerFileError (funding/files.py)",
    )
    TOO_MANY_API_KEYS = (
        "too_many_api_keys",
        409,
        "a shop holds at most … usable keys: revoke one, or roll with expire_others_in_hours",
    )
    UNKNOWN_FUNDER = ("unknown_funder", 404, "funder_id: no such funder …")
    WEBHOOK_ENDPOINT_EXISTS = (
        "webhook_endpoint_exists",
        409,
        "raised as EndpointExists (webhooks/manage.py)",
    )

    @property
    def problem_title(self) -> str:
        """The problem document's `title`: the code in words."""
        return self.value.replace("_", " ")


# Spellings merged into one code per meaning (API version 2026-12-03); requests at earlier
# versions still get the old spelling, with the status it was answered with then.
LEGACY_CODES: dict[str, tuple[ErrorCode, int]] = {
    "account_not_found": (ErrorCode.NOT_FOUND, 400),  # a ledger account
    "entry_not_found": (ErrorCode.NOT_FOUND, 400),  # a ledger entry
    "pending_not_found": (ErrorCode.NOT_FOUND, 400),  # a pending (held) ledger entry
    "webhook_event_not_found": (ErrorCode.NOT_FOUND, 404),  # a webhook event
    "quote_invalid": (ErrorCode.INVALID_AMOUNT, 422),  # a quote for an amount ≤ 0
}


def known_code(code: str) -> ErrorCode | None:
    """`code` as an ErrorCode, or None when it is not one (a decline's own reason, say)."""
    try:
        return ErrorCode(code)
    except ValueError:
        return None
