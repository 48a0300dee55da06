"""fenqi (分期): an open-source e-commerce consumer-finance platform."""

__version__ = "0.1.0"
