"""Loading and checking product files.

A bad file is refused whole, with an error that names the file, the field and the rule broken;
nothing half-loads. The rate cap is checked here too: every offered plan is priced at a
reference amount and date, and a product whose annualized rate would pass the cap is refused.
"""

from __future__ import annotations

import tomllib
from datetime import date
from decimal import Decimal
from pathlib import Path

from pydantic import ValidationError

from fenqi.errors import FenqiError
from fenqi.products.model import Product

CATALOG_DIR = Path(__file__).parent / "catalog"
# Reference purchase for the cap check: ¥1,000 bought on the day after a typical statement day.
REFERENCE_AMOUNT_FEN = 100_000
REFERENCE_DATE = date(2025, 1, 2)
DAYS_PER_YEAR = 365


class ProductError(FenqiError):
    code = "product_invalid"
    http_status = 422

    def __init__(self, source: str, field: str, rule: str) -> None:
        super().__init__(f"{source}: {field}: {rule}", source=source, field=field, rule=rule)


def _field(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(file)"


def parse_product(
    data: dict[str, object], source: str, cap_bp: int, on: date | None = None
) -> Product:
    try:
        product = Product.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        rule = first["msg"].removeprefix("Value error, ")
        raise ProductError(source, _field(tuple(first["loc"])), rule) from None
    check_product_caps(product, source, cap_bp, on)
    return product


def check_product_caps(product: Product, source: str, cap_bp: int, on: date | None = None) -> None:
    """Every offered plan at a reference purchase, held to the rate regime in force on `on`
    (the loading date; the reference date when not given)."""
    from fenqi.pricing.cap import RateCapExceeded
    from fenqi.pricing.quote import quote

    amount = max(product.limits.min_fen, min(REFERENCE_AMOUNT_FEN, product.limits.max_fen))
    amount = max(amount, product.installments.min_amount_fen, 1)
    for index, term in enumerate(product.installments.terms):
        try:
            quote(product, amount, term.count, REFERENCE_DATE, cap_bp=cap_bp, regime_date=on)
        except RateCapExceeded as exc:
            raise ProductError(source, f"installments.terms[{index}]", exc.message) from None
    from fenqi.compliance.regimes import plain_cap_bp

    cap_bp = plain_cap_bp(product.currency, product.kind.value, on or REFERENCE_DATE, cap_bp)
    yearly_bp = product.revolving.daily_rate_bp * DAYS_PER_YEAR
    if product.revolving.allowed and yearly_bp > Decimal(cap_bp):
        raise ProductError(
            source,
            "revolving.daily_rate_bp",
            f"{product.revolving.daily_rate_bp} bp a day is {yearly_bp / 100:.2f}% a year, over "
            f"the cap of {cap_bp / 100:.2f}%",
        )


def load_product_file(path: Path, cap_bp: int, on: date | None = None) -> Product:
    source = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ProductError(source, "(file)", f"cannot read: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ProductError(source, "(file)", f"not valid TOML: {exc}") from None
    product = parse_product(data, source, cap_bp, on)
    if product.name != path.stem:
        raise ProductError(source, "name", f"must match the file name {path.stem!r}")
    return product


def load_catalog(
    cap_bp: int, extra_dir: Path | None = None, on: date | None = None
) -> dict[str, Product]:
    """Shipped products, then an operator's folder whose files override them by name, each
    held to the rate regime in force on `on` (the loading date)."""
    products: dict[str, Product] = {}
    for folder in [CATALOG_DIR, *([extra_dir] if extra_dir else [])]:
        for path in sorted(folder.glob("*.toml")):
            product = load_product_file(path, cap_bp, on)
            products[product.name] = product
    return products


def load_product(name: str, cap_bp: int, extra_dir: Path | None = None) -> Product:
    catalog = load_catalog(cap_bp, extra_dir)
    if name not in catalog:
        raise ProductError(name, "name", f"no such product; known: {', '.join(sorted(catalog))}")
    return catalog[name]
