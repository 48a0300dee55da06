"""Declarative credit products: TOML files validated on load."""

from fenqi.products.catalog_loader import (
    ProductError,
    load_catalog,
    load_product,
    load_product_file,
)
from fenqi.products.model import Product

__all__ = ["Product", "ProductError", "load_catalog", "load_product", "load_product_file"]
