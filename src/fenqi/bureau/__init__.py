"""Credit bureau (征信): consented inquiry, monthly account-level reporting, a bureau to talk to.

- `fenqi.bureau.server`: a credit reference service of its own (`fenqi bureau serve`), standing
  in for the PBOC credit reference center, Baihang or a US bureau: its own database and tables.
- `fenqi.bureau.client`: the interface fenqi talks to a bureau through (`BureauClient`), and its
  HTTP implementation (timeout, retries, circuit breaker).
- `fenqi.bureau.attributes` (pure): what a decision reads from a report.
- `fenqi.bureau.inquiry`: inquiry only with a recorded authorization, report stored encrypted.
- `fenqi.bureau.records` (pure), `pboc`, `metro2`: one account record model, two file formats.
- `fenqi.bureau.reporting`: monthly records from the ledger and arrears, files, reconciliation.

See docs/bureau.md.
"""
