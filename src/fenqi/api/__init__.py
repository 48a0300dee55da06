"""REST API (FastAPI): merchant checkout, shopper wallet, operations. `fenqi serve` runs it."""
