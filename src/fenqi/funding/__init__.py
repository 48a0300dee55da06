"""Funding: who lends each fen of a plan's principal (own capital, co-lending partners).

`model.py` (funders and programs as data), `loader.py` (load and check the TOML files),
`allocation.py` (pure splits and eligibility), `approval.py` (a partner's own decision: rules
or an HTTP call; the partner simulator), `service.py` (allocation and cash in the database and
the ledger), `settlement.py` (a date's figures per funder, checked against the ledger),
`eod.py` (the end-of-day settlement step per partition), `files.py` (loan-level partner files
and their check against the ledger), `payouts.py` (partner payouts, receipts, monthly
statements), `reports.py` (exposure, concentration, lending share), `cli.py`
(`fenqi funding ...`). See docs/funding.md.
"""
