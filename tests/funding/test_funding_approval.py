"""A partner's own decision: a rule set in its file, or a call to its endpoint (the partner
simulator over real HTTP) with a timeout and a fallback; a declining partner sends the loan to
the program's fallback (here: the platform alone)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine

from fenqi.clock import FixedClock
from fenqi.funding.allocation import Borrower
from fenqi.funding.approval import PartnerApprover, partner_simulator, rule_reasons
from fenqi.funding.model import Approval, ApprovalMode, ApprovalRules, Funder, FundingCatalog
from fenqi.funding.service import allocate_plan
from funding.test_funding_service import CATALOG, GOOD, sell
from support.api_server import free_port

DAY = date(2026, 1, 2)


@pytest.fixture(autouse=True)
def _funding_by_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests allocate and split by hand (allocate_plan, apply_cash on their own catalogs):
    the credit code's own funding calls (funding/wiring.py) are off here."""
    from fenqi.funding import wiring

    monkeypatch.setattr(wiring, "_configured", lambda: None)


def with_approval(approval: Approval) -> FundingCatalog:
    bank = CATALOG.funders["bank_example"].model_copy(update={"approval": approval})
    program = CATALOG.programs["colending_example"].model_copy(update={"partner_approval": True})
    return CATALOG.model_copy(
        update={
            "funders": {**CATALOG.funders, "bank_example": bank},
            "programs": {program.id: program},
        }
    )


@contextmanager
def simulator(max_amount_fen: int | None = None, hang: bool = False) -> Iterator[str]:
    port = free_port()
    app = partner_simulator(max_amount_fen=max_amount_fen, hang=hang)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        if server.started:
            break
        threading.Event().wait(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(10)


def fund(engine: Engine, catalog: FundingCatalog, who: str, amount: int) -> dict[str, int]:
    clock = FixedClock.on(DAY)
    with engine.begin() as conn:
        acct, plan = sell(conn, clock, who, amount)
        return allocate_plan(
            conn,
            clock,
            catalog,
            plan_id=plan,
            credit_account_id=acct,
            principal_fen=amount,
            currency="CNY",
            borrower=GOOD,
            client_id=f"cap-{who}",
        ).tranches


def test_rule_reasons_are_pure() -> None:
    rules = ApprovalRules(max_amount_fen=1000, max_terms=6, decline_region_prefixes=("31",))
    assert rule_reasons(rules, Borrower("huabei", 3, id_prefix="440101"), 1000) == []
    assert rule_reasons(rules, GOOD, 1001) == [
        "its part 1001 is over 1000",
        "term 12 over 6",
        "region declined",
    ]


def test_partner_rule_set_declines_and_platform_funds_alone(db_engine: Engine) -> None:
    catalog = with_approval(
        Approval(mode=ApprovalMode.RULES, rules=ApprovalRules(max_amount_fen=40_000))
    )
    assert set(fund(db_engine, catalog, "small", 60_000)) == {
        "bank_example",
        "trust_example",
        "platform",
    }
    assert fund(db_engine, catalog, "big", 100_000) == {"platform": 100_000}


def test_partner_endpoint_decides_over_http(db_engine: Engine) -> None:
    with simulator(max_amount_fen=40_000) as url:
        catalog = with_approval(Approval(mode=ApprovalMode.HTTP, url=f"{url}/decisions"))
        assert "bank_example" in fund(db_engine, catalog, "small", 60_000)
        assert fund(db_engine, catalog, "big", 100_000) == {"platform": 100_000}
        asked = httpx.get(f"{url}/decisions").json()
        assert [a["approved"] for a in asked] == [True, False]
        assert asked[0]["region"] == "310101" and "id_number" not in asked[0]


@pytest.mark.parametrize("on_timeout", ["decline", "approve"])
def test_a_silent_partner_counts_as_its_fallback(on_timeout: str) -> None:
    with simulator(hang=True) as url:
        approval = Approval(
            mode=ApprovalMode.HTTP, url=f"{url}/decisions", timeout_ms=200, on_timeout=on_timeout
        )
        bank = CATALOG.funders["bank_example"].model_copy(update={"approval": approval})
        decision = PartnerApprover()(bank, GOOD, 50_000, 1)
        assert decision.source == "timeout"
        assert decision.approved is (on_timeout == "approve")
    with httpx.Client() as client:  # nobody listening: an error, the same fallback
        dead = Approval(mode=ApprovalMode.HTTP, url=f"http://127.0.0.1:{free_port()}/d")
        bank = CATALOG.funders["bank_example"].model_copy(update={"approval": dead})
        decision = PartnerApprover(client)(bank, GOOD, 50_000, 1)
        assert decision.source == "error" and not decision.approved


def test_an_http_approval_without_url_is_refused_naming_the_field(tmp_path: Path) -> None:
    from fenqi.funding.loader import CATALOG_DIR, FundingConfigError, parse_file

    src = (CATALOG_DIR / "funders" / "bank_example.toml").read_text()
    bad = tmp_path / "bank_example.toml"
    bad.write_text(src.replace('mode = "rules"', 'mode = "http"'))
    with pytest.raises(FundingConfigError) as err:
        parse_file(bad)
    assert err.value.detail["field"] == "approval"
    assert "url: an http approval needs the partner's endpoint" in err.value.message
    bank = parse_file(CATALOG_DIR / "funders" / "bank_example.toml")
    assert isinstance(bank, Funder) and bank.approval.mode.value == "rules"
