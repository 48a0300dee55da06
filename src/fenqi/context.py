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

    @cached_property
    def catalog(self) -> dict[str, Product]:
        return self._catalog or load_catalog(self.settings.apr_cap_bp, self.settings.catalog_dir)

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

    def product(self, name: str) -> Product:
        if name not in self.catalog:
            known = ", ".join(sorted(self.catalog))
            raise ProductError(name, "product", f"no such product; known: {known}")
        return self.catalog[name]


def build_context(
    settings: Settings | None = None, clock: Clock | None = None, engine: Engine | None = None
) -> Context:
    settings = settings or get_settings()
    return Context(
        settings=settings,
        engine=engine
        or make_engine(
            settings.database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout_seconds,
        ),
        clock=clock or SystemClock(settings.timezone),
    )
