"""The funding operations API and console page over real HTTP (SQLite and PostgreSQL): staff
only, exposure against limits, settlement run and read, concentration, share of new lending,
the partner file (downloaded, then checked against the ledger), partner payouts paid once
under concurrent requests, monthly statements."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from fenqi.funding.files import verify_file
from fenqi.ledger.service import reconcile, trial_balance
from fenqi.store.schema.funding import funder_region_exposure
from funding.test_funding_ops import DAY, NEXT, books
from support.api_server import running_api
from web.test_web_dashboard_ranges import sign_in


@pytest.fixture(autouse=True)
def _funding_by_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    """books() allocates by hand: the credit code's own funding calls are off here."""
    from fenqi.funding import wiring

    monkeypatch.setattr(wiring, "_configured", lambda: None)


def test_funding_operations_over_http(db_url: str, models_dir: Path, tmp_path: Path) -> None:
    with running_api(db_url, models_dir, tmp_path, start=NEXT) as api:
        plans = books(api.ctx.engine)
        admin = api.staff_token()
        # staff only: no token, 401; a role without reports.read, 403
        assert api.http.get("/v1/ops/funding/exposure").status_code == 401
        collector = api.staff_token("col", "collector")
        assert api.get("/v1/ops/funding/exposure", collector).status_code == 403

        cat = api.get("/v1/ops/funding/catalog", admin).json()
        assert [p["id"] for p in cat["programs"]] == ["colending_example"]
        exp = {r["funder"]: r for r in api.get("/v1/ops/funding/exposure", admin).json()["items"]}
        assert exp["bank_example"]["outstanding_fen"] == 90_000 - 5_000 - 25_000
        assert exp["bank_example"]["total_used_bp"] == 0  # of ¥200 million

        r = api.post(f"/v1/ops/funding/settlements/{NEXT}", admin)
        assert r.status_code == 201, r.text
        assert r.json()["ledger_mismatches"] == []
        settled = api.get(f"/v1/ops/funding/settlements/{NEXT}", admin).json()["items"]
        bank = next(s for s in settled if s["funder_id"] == "bank_example")
        assert bank["principal_collected_fen"] == 5_000 and bank["losses_fen"] == 25_000

        conc = api.get("/v1/ops/funding/concentration", admin, top=2).json()["items"]
        bank_c = next(c for c in conc if c["funder"] == "bank_example")
        assert bank_c["borrowers"] == 2 and [t["outstanding_fen"] for t in bank_c["top"]] == [
            45_000,
            15_000,
        ]
        assert bank_c["top_share_bp"] == 10_000
        share = api.get(
            "/v1/ops/funding/lending-share", admin, **{"from": DAY.isoformat(), "to": NEXT}
        ).json()
        assert share["lent_fen"] == 180_001
        assert {f["funder"]: f["share_bp"] for f in share["funders"]} == {
            "bank_example": 4999,
            "platform": 3000,
            "trust_example": 1999,
        }
        bad = api.get("/v1/ops/funding/lending-share", admin, **{"from": NEXT, "to": DAY})
        assert bad.status_code == 422 and bad.json()["code"] == "invalid_range"

        for fmt in ("csv", "parquet"):
            f = api.get(f"/v1/ops/funding/funders/bank_example/files/{NEXT}", admin, format=fmt)
            assert f.status_code == 200
            path = tmp_path / f"bank.{fmt}"
            path.write_bytes(f.content)
            with api.ctx.engine.connect() as conn:
                assert verify_file(conn, path)["loans"] == len(plans)
        missing = api.get(f"/v1/ops/funding/funders/nobody/files/{NEXT}", admin)
        assert missing.status_code == 404 and missing.json()["code"] == "unknown_funder"

        # eight payouts at once, each with its own key: one pays, the others find nothing
        def pay(i: int) -> httpx.Response:
            return api.post("/v1/ops/funding/funders/bank_example/payouts", admin, key=f"k{i}")

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(pay, range(8)))
        paid = [a for a in answers if a.status_code == 201]
        assert len(paid) == 1, [a.text for a in answers]
        assert {a.json()["code"] for a in answers if a.status_code != 201} == {"nothing_to_pay"}
        replay = pay(answers.index(paid[0]))  # the same key: the stored answer
        assert replay.status_code == 201 and replay.json() == paid[0].json()

        st = api.get("/v1/ops/funding/funders/bank_example/statements/2026-01", admin).json()
        assert st["paid_to_funder_fen"] == paid[0].json()["paid_fen"]
        assert st["closing_cash_due_fen"] == 0
        r = api.post("/v1/ops/funding/funders/bank_example/receipts", admin)
        assert r.status_code == 201 and r.json()["received_fen"] == 90_000
        with api.ctx.engine.connect() as conn:
            assert trial_balance(conn).balanced and reconcile(conn) == []

        console = sign_in(api, "reporter", "admin")
        page = console.get("/console/funding", params={"date": NEXT.isoformat()})
        assert page.status_code == 200
        assert 'data-testid="funding-exposure"' in page.text and "bank_example" in page.text
        assert "¥50.00" in page.text  # the bank's principal collected on NEXT
        assert 'href="/console/funding"' in page.text  # in the menu


def test_the_console_shows_each_funders_top_regions_against_its_region_limit(
    db_url: str, models_dir: Path, tmp_path: Path
) -> None:
    """Concentration by region on the funding page: each funder's provinces by its principal
    outstanding there, its share of the book, the region limit and the share of it used."""
    with running_api(db_url, models_dir, tmp_path, start=NEXT) as api:
        books(api.ctx.engine)  # every borrower from province 31 (Shanghai)
        with api.ctx.engine.begin() as conn:  # a region limit last applied of ¥2,000
            conn.execute(
                update(funder_region_exposure)
                .where(funder_region_exposure.c.funder_id == "bank_example")
                .values(cap_fen=200_000)
            )
        console = sign_in(api, "reporter", "admin")
        page = console.get("/console/funding", params={"date": NEXT.isoformat()}).text
    table = page.split('data-testid="funding-regions"', 1)[1].split("</table>", 1)[0]
    bank = re.search(r'<tr data-funder="bank_example" data-region="31">(.*?)</tr>', table, re.S)
    assert bank, table
    cells = re.findall(r"<td[^>]*>(.*?)</td>", bank.group(1), re.S)
    # the bank's ¥600 outstanding, all in 31: 100% of its book, 30% of its ¥2,000 limit
    assert [c.strip() for c in cells] == [
        "bank_example",
        "31",
        "¥600.00",
        "100.00%",
        "¥2,000.00",
        "30.00%",
    ]
    platform = re.search(r'data-funder="platform" data-region="31">(.*?)</tr>', table, re.S)
    assert platform and "—" in platform.group(1)  # own capital: no region limit
