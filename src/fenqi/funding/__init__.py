"""Funding: who lends each fen of a plan's principal (own capital, co-lending partners).

`model.py` (funders and programs as data), `loader.py` (load and check the TOML files),
`allocation.py` (pure splits and eligibility), `service.py` (allocation and cash in the
database and the ledger), `settlement.py` (a date's figures per funder, checked against the
ledger), `cli.py` (`fenqi funding ...`). See docs/funding.md.
"""
