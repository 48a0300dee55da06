"""A ledger refusal is mapped to the credit area's error in one place (issue 22):
`credit.posting.ledger_refusal`."""

from __future__ import annotations

import ast
from pathlib import Path

from fenqi.credit.posting import ledger_refusal
from fenqi.ledger.entry import EntryKind, EntryResult, EntryStatus, RejectCode

CREDIT = Path(__file__).resolve().parents[2] / "src" / "fenqi" / "credit"
REFUSAL_CODES = {"ledger_rejected", "reversal_refused"}


def test_refusal_codes_are_written_only_by_the_mapping() -> None:
    sites = []
    for path in sorted(CREDIT.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in REFUSAL_CODES:
                sites.append(f"{path.name}:{node.lineno}")
    assert sites and {s.split(":")[0] for s in sites} == {"posting.py"}, sites


def test_a_refusal_names_the_ledgers_reason() -> None:
    rejected = EntryResult(
        7, "c1", EntryKind.POST, EntryStatus.REJECTED, RejectCode.EXCEEDS_CREDITS
    )
    posting = ledger_refusal(rejected, "repayment")
    assert (posting.code, posting.http_status) == ("ledger_rejected", 422)
    assert posting.detail["reject_code"] == "debits_exceed_credits"
    assert "repayment" in posting.message and "debits_exceed_credits" in posting.message
    reversal = ledger_refusal(rejected, "reversal of entry 7", reversal=True)
    assert (reversal.code, reversal.http_status) == ("reversal_refused", 409)
