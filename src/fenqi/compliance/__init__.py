"""Compliance (issue 18): rate regimes and disclosure, regulatory reports."""
