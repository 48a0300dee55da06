"""The running system's handles: settings, database engine, clock and product catalog.

Built once at start-up by each interface (CLI, API, demo) and passed to services.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy import Engine

from fenqi.clock import Clock, SystemClock
from fenqi.products.catalog_loader import ProductError, load_catalog
from fenqi.products.model import Product
from fenqi.settings import Settings, get_settings
from fenqi.store.engine import make_engine


@dataclass
class Context:
    settings: Settings
    engine: Engine
    clock: Clock
    _catalog: dict[str, Product] | None = field(default=None, repr=False)

    @cached_property
    def catalog(self) -> dict[str, Product]:
        return self._catalog or load_catalog(self.settings.apr_cap_bp, self.settings.catalog_dir)

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
        engine=engine or make_engine(settings.database_url),
        clock=clock or SystemClock(settings.timezone),
    )
