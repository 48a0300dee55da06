"""A synthetic marketplace for demos, tests, benchmarks and what-if runs (reproducible by seed)."""
