"""The running system's handles: settings, database engine, clock and product catalog.

Built once at start-up by each interface (CLI, API, demo) and passed to services.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from fenqi.clock import Clock, SystemClock
from fenqi.privacy.crypto import KeyRing
from fenqi.products.catalog_loader import ProductError, load_catalog
from fenqi.products.model import Product
from fenqi.settings import Settings, get_settings
from fenqi.store.books import mark_test_book
from fenqi.store.engine import make_engine

if TYPE_CHECKING:
    from fenqi.bureau.client import BureauClient
    from fenqi.credit.checkout import RiskCheck
    from fenqi.credit.underwriting import Underwriter


@dataclass
class Context:
    settings: Settings
    engine: Engine
    clock: Clock
    _catalog: dict[str, Product] | None = field(default=None, repr=False)
    livemode: bool = True  # False: the test book's context (TestModeContext)

    @cached_property
    def catalog(self) -> dict[str, Product]:
        return self._catalog or load_catalog(
            self.settings.apr_cap_bp, self.settings.catalog_dir, on=self.clock.today()
        )

    @cached_property
    def keys(self) -> KeyRing:
        """Personal-data keys (AES-GCM ring and blind-index key)."""
        return KeyRing.from_settings(self.settings)

    @cached_property
    def underwriter(self) -> Underwriter:
        from fenqi.credit.underwriting import RiskUnderwriter, load_decider
        from fenqi.products.tiers import (
            check_tier_vocabulary,
            flow_pricing_tiers,
            read_flow_graph,
        )

        # the flow's pricing tiers must be the catalog's: checked before anything is decided
        graph, source = read_flow_graph(self.settings.risk_flow_file)
        check_tier_vocabulary(flow_pricing_tiers(graph), source, self.catalog)
        # the registry's model: a fresh installation gets its starter model from the interface
        # that starts it (`fenqi serve`, the demo build, the simulator), never from here
        return RiskUnderwriter(load_decider(self.settings.models_dir, self.settings.risk_flow_file))

    @cached_property
    def checkout_risk(self) -> RiskCheck:
        from fenqi.credit.checkout_risk import risk_engine_check

        return risk_engine_check(self.clock)

    @cached_property
    def bureau(self) -> BureauClient | None:
        """The credit bureau's client (None when FENQI_BUREAU_URL is unset)."""
        from fenqi.bureau.inquiry import client_from_settings

        return client_from_settings(self.settings, self.clock)

    @cached_property
    def test_mode(self) -> Context | None:
        """The test book's context (docs/api.md, "Test mode"): the same settings, clock,
        catalog, keys and risk model, on the test book's own database; None when test mode is
        off (PostgreSQL without FENQI_TEST_DATABASE_URL)."""
        url = self.settings.test_book_url()
        if url is None:
            return None
        return TestModeContext(
            settings=self.settings,
            engine=mark_test_book(self._engine_for(url)),
            clock=self.clock,
            _catalog=self.catalog,
            livemode=False,
            live=self,
        )

    def _engine_for(self, url: str) -> Engine:
        return make_engine(
            url,
            pool_size=self.settings.db_pool_size,
            max_overflow=self.settings.db_max_overflow,
            pool_timeout=self.settings.db_pool_timeout_seconds,
        )

    def product(self, name: str) -> Product:
        if name not in self.catalog:
            known = ", ".join(sorted(self.catalog))
            raise ProductError(name, "product", f"no such product; known: {known}")
        return self.catalog[name]


@dataclass
class TestModeContext(Context):
    """The test book's context. It shares the live context's keys and risk model (`live`),
    and differs where test mode must: applications and checkouts go through the magic inputs
    first (`fenqi.credit.test_mode`), and the credit bureau is never asked about a test
    applicant (a real inquiry leaves a mark on a real person's report)."""

    __test__ = False  # not a pytest test class, whatever its name
    live: Context | None = field(default=None, repr=False)

    @cached_property
    def keys(self) -> KeyRing:
        return self.live.keys if self.live is not None else super().keys

    @cached_property
    def underwriter(self) -> Underwriter:
        from fenqi.credit.test_mode import MagicUnderwriter

        base = self.live.underwriter if self.live is not None else super().underwriter
        return MagicUnderwriter(base, self.keys)

    @cached_property
    def checkout_risk(self) -> RiskCheck:
        from fenqi.credit.test_mode import magic_checkout_risk

        return magic_checkout_risk(super().checkout_risk)

    @cached_property
    def bureau(self) -> BureauClient | None:
        return None

    @cached_property
    def test_mode(self) -> Context | None:
        return self


def build_context(
    settings: Settings | None = None, clock: Clock | None = None, engine: Engine | None = None
) -> Context:
    """The context of this process's book: the live one, or with FENQI_MODE=test the test
    book (`TestModeContext`)."""
    settings = settings or get_settings()
    engine = engine or make_engine(
        settings.book_url(),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
    )
    clock = clock or SystemClock(settings.timezone)
    if settings.mode == "test":
        return TestModeContext(settings, mark_test_book(engine), clock, livemode=False)
    return Context(settings=settings, engine=engine, clock=clock)
