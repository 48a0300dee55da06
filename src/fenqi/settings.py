"""One settings object, read once at start-up from the environment (FENQI_*).

Why: scattered environment lookups make behaviour depend on where a value was read; every
setting the system honours is listed here with its default.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FENQI_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///.fenqi/fenqi.sqlite",
        description="SQLAlchemy URL; SQLite file by default, PostgreSQL in production.",
    )
    timezone: str = Field(
        default="Asia/Shanghai", description="Operator zone of the business date."
    )
    # Test mode (docs/api.md, "Test mode"): what test API keys (sk_test_...) make lives in a
    # database of its own, the test book. Unset: next to a SQLite live book (`x.sqlite` ->
    # `x.test.sqlite`); with PostgreSQL, test mode is off until this names a database (or a
    # schema: options=-csearch_path=...). `mode` = "test" points a command (`fenqi eod`,
    # `fenqi webhooks worker`, `fenqi ledger ...`) at the test book instead of the live one.
    # test_mode = False turns test mode off.
    test_database_url: str | None = None
    mode: Literal["live", "test"] = "live"
    test_mode: bool = Field(default=True, description="False: no test book, no test keys.")
    # Licensed consumer lenders are guided to keep the comprehensive annualized cost within 24%
    # (see docs/products.md); the cap is a setting, in basis points of the nominal IRR rate.
    apr_cap_bp: int = Field(default=2400, ge=0, le=100_000)
    # the rate regimes in use (fenqi/compliance/regimes.toml, docs/compliance.md): the CNY
    # window guidance (whose cap is apr_cap_bp) and the US APR line by default
    rate_regimes: str = Field(default="cn_window_24,us_reg_z_36", max_length=500)
    catalog_dir: Path | None = Field(
        default=None, description="Extra folder of product TOML files (overrides shipped ones)."
    )
    # Co-lending (fenqi/funding): the least share of each loan the platform funds itself; the
    # 2020 draft rules on online micro-loans ask for 30% (docs/funding.md). A program under it
    # is refused on load. funding_dir: an extra folder of funder and program files.
    funding_platform_floor_bp: int = Field(default=3000, ge=0, le=10_000)
    funding_dir: Path | None = None
    # fund every plan as it is booked and split later cash among its funders (funding/wiring.py);
    # off only for a benchmark's baseline or a database whose plans predate it
    funding_enabled: bool = True
    pending_hold_seconds: int = Field(default=7 * 24 * 3600, gt=0)
    # Personal data at rest: AES-256-GCM keys as "kid:base64key,kid:base64key"; the active key
    # encrypts, every listed key decrypts (rotation). Lookups use a keyed hash (blind index).
    # When unset (demo, development), keys are generated once into keys_file (mode 0600).
    data_keys: str | None = None
    data_key_active: str | None = None
    blind_index_key: str | None = None
    keys_file: Path = Path(".fenqi/keys.json")
    models_dir: Path = Field(
        default=Path(".fenqi/models"), description="Risk model registry used for applications."
    )
    risk_flow_file: Path | None = Field(
        default=None, description="Decision flow (JDM JSON); default: the flow shipped with fenqi."
    )
    eod_partition_size: int = Field(default=50_000, ge=1, description="Accounts per partition.")
    charge_off_days: int = Field(
        default=180, ge=30, le=3650, description="Days past due at which an account is charged off."
    )
    demo_file: Path = Field(
        default=Path(".fenqi/demo.json"),
        description="What `fenqi demo` built: the demo shop's key, staff logins, a few shoppers.",
    )
    # Test hook: the end-of-day process kills itself (SIGKILL) after this many step commits,
    # so tests can prove a killed run resumes correctly. Never set in production.
    eod_kill_after_steps: int | None = Field(default=None, ge=1)
    webhook_max_attempts: int = Field(default=8, ge=1, le=50)
    webhook_backoff_base_seconds: int = Field(default=30, ge=1)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    # Webhooks go to public addresses only (fenqi.webhooks.destinations); this lets them reach
    # loopback and private networks, for tests and the demo. Never in production.
    webhook_allow_private_networks: bool = False
    # Stored idempotent responses are kept this long: a retry within it gets the first answer,
    # later the key may be used again; expired rows are purged (docs/api.md).
    idempotency_window_hours: int = Field(default=24, ge=1, le=24 * 90)
    # Staff sign-in throttling (fenqi.privacy.logins): failures per account and per address
    # within the window lock further attempts for lock minutes.
    login_failures_max: int = Field(default=5, ge=1, le=1000)
    login_address_failures_max: int = Field(default=20, ge=1, le=100_000)
    login_window_minutes: int = Field(default=15, ge=1, le=24 * 60)
    login_lock_minutes: int = Field(default=15, ge=1, le=24 * 60)
    # The Secure attribute on console and wallet cookies (sent over HTTPS only). On by default;
    # off only for plain-http development and the demo on http://localhost (`fenqi demo` turns
    # it off). Requests that arrive over https always get it.
    cookie_secure: bool = True
    # A request body larger than this is refused with 413 before it is read whole: every body
    # of this API is a few kilobytes (docs/api.md).
    max_request_bytes: int = Field(default=1_000_000, ge=1_024, le=100_000_000)
    # PostgreSQL connections per process: at most pool + overflow. Every API worker, the webhook
    # worker and the end of day each hold their own, so workers × (pool + overflow) plus those
    # must stay below the server's max_connections (100 by default; docs/api.md).
    db_pool_size: int = Field(default=10, ge=1, le=1_000)
    db_max_overflow: int = Field(default=5, ge=0, le=1_000)
    db_pool_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    # Credit bureau (fenqi/bureau, docs/bureau.md). With no bureau_url, applications keep the
    # shop-sent bureau flag; with one, every application inquires (under the applicant's
    # recorded authorization) and an outage gives bureau_outage_fallback, never a crash.
    bureau_url: str | None = None
    bureau_token: str | None = None
    bureau_lender_id: str = Field(default="fenqi", min_length=1, max_length=32)
    bureau_timeout_seconds: float = Field(default=3.0, gt=0, le=60)
    bureau_retries: int = Field(default=2, ge=0, le=10)
    bureau_breaker_failures: int = Field(default=5, ge=1, le=1000)
    bureau_breaker_reset_seconds: float = Field(default=30.0, gt=0, le=3600)
    bureau_outage_fallback: Literal["refer", "decline"] = "refer"
    # how long an obtained report is kept (encrypted) before the retention job may delete it;
    # fenqi's assumption: 5 years, the period negative information stays on a PBOC file
    bureau_report_retention_days: int = Field(default=5 * 365, ge=1, le=20 * 365)
    # post-loan monitoring (`fenqi bureau monitor`): an open account is re-inquired every this
    # many days (under its bureau_monitoring consent), at most this many inquiries a day
    bureau_monitoring_interval_days: int = Field(default=30, ge=1, le=366)
    bureau_monitoring_daily_cap: int = Field(default=1000, ge=0, le=1_000_000)
    # days a shopper has to answer a dispute deadline (征信业管理条例: 20 days)
    bureau_dispute_days: int = Field(default=20, ge=1, le=90)
    # data-subject requests (PIPL art. 44-50) are answered within this many days; the law says
    # "promptly": 15 days is fenqi's assumption (docs/privacy.md, personal-data rights)
    privacy_request_days: int = Field(default=15, ge=1, le=90)
    # identity and transaction records are kept this long after an account closes before a
    # deletion request can erase them (PBOC Order 2022 No. 1: at least 5 years; docs/privacy.md)
    record_retention_years: int = Field(default=5, ge=1, le=30)
    # single-borrower cap for the exposure report: ¥300,000 of online micro-loans per borrower
    # (2020 draft online micro-loan rules; chinabankingnews.com 2020-11-03; check before use)
    borrower_exposure_cap_fen: int = Field(default=30_000_000, ge=0)

    def test_book_url(self) -> str | None:
        """The test book's database URL, or None when test mode is off."""
        from sqlalchemy.engine import make_url

        url = self.test_database_url
        if not self.test_mode:
            return None
        if url is None:
            live = make_url(self.database_url)
            path = live.database
            if live.get_backend_name() != "sqlite" or not path or path == ":memory:":
                return None
            stem = path[: -len(".sqlite")] if path.endswith(".sqlite") else path
            url = live.set(database=f"{stem}.test.sqlite").render_as_string(hide_password=False)
        if make_url(url) == make_url(self.database_url):
            raise ValueError("FENQI_TEST_DATABASE_URL must name another database than the live one")
        return url

    def book_url(self) -> str:
        """The database this process works on: the live book, or the test book (`mode`)."""
        if self.mode == "live":
            return self.database_url
        url = self.test_book_url()
        if url is None:
            raise ValueError(
                "FENQI_MODE=test, but there is no test book: set FENQI_TEST_DATABASE_URL"
            )
        return url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
