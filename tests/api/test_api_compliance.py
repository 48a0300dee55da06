"""Disputes and data-subject requests over real HTTP, on SQLite and PostgreSQL: the shopper's
own account only, staff with `compliance.cases`, refusals audited and kept, access exports
everything decrypted, correction, consent withdrawal, deletion refused while an account is
open and scheduled (then anonymized by the retention job) once it is closed."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fenqi.bureau.reporting import build_records
from fenqi.privacy.audit import list_entries
from fenqi.privacy.consent import has_consent
from fenqi.privacy.rights import run_retention
from support.api_server import id_number, running_api


def _report(api) -> None:  # type: ignore[no-untyped-def]
    grace = {n: p.billing.grace_days for n, p in api.ctx.catalog.items()}
    with api.ctx.engine.begin() as conn:
        build_records(conn, api.clock, api.ctx.keys, api.clock.today(), grace_of=grace)


def test_shopper_disputes_and_staff_resolve(db_url: str, models_dir: Path, tmp_path: Path) -> None:
    with running_api(db_url, models_dir, tmp_path) as api:
        key = api.merchant()
        mine = api.apply(key, id_number(seq="501"), "13812345001").json()
        other = api.apply(key, id_number(seq="502"), "13812345002").json()
        assert mine["outcome"] == other["outcome"] == "approved"
        account = mine["credit_account_id"]
        q = api.post("/v1/quotes", key, {"credit_account_id": account, "amount_fen": 300_000})
        assert q.status_code == 200, q.text
        plans = [p for p in q.json()["plans"] if p["plan"] == "installments"]
        assert plans and all(
            p["rate_regime"]["name"] == "cn_window_24"
            and p["rate_regime"]["rate_bp"] == p["annualized_rate_bp"] <= 2400
            for p in plans
        )
        token = api.shopper_token(key, mine["customer_id"])
        intruder = api.shopper_token(key, other["customer_id"])
        body = {"item": "status", "claim": "I never missed a payment"}

        r = api.post(f"/v1/me/accounts/{account}/disputes", token, body)
        assert r.status_code == 422 and r.json()["code"] == "dispute_invalid"  # nothing reported
        _report(api)
        r = api.post(f"/v1/me/accounts/{account}/disputes", intruder, body)
        assert r.status_code == 404 and r.json()["code"] == "not_found"
        r = api.post(f"/v1/me/accounts/{account}/disputes", token, body)
        assert r.status_code == 201, r.text
        dispute = r.json()
        assert dispute["due_on"] == (api.clock.today() + timedelta(days=20)).isoformat()
        assert [d["id"] for d in api.get("/v1/me/disputes", token).json()] == [dispute["id"]]
        assert api.get("/v1/me/disputes", intruder).json() == []
        with api.ctx.engine.connect() as conn:
            refused = list_entries(conn, action="bureau.dispute_refused")
        assert [e.actor_id for e in refused] == [
            str(mine["customer_id"]),
            str(other["customer_id"]),
        ]

        support = api.staff_token("sam", "support")
        assert api.get("/v1/ops/disputes", support).status_code == 403
        officer = api.staff_token("olga", "compliance")
        [listed] = api.get("/v1/ops/disputes", officer, status="open").json()
        assert listed["id"] == dispute["id"]
        assert api.get("/v1/ops/disputes", officer, overdue="true").json() == []
        detail = api.get(f"/v1/ops/disputes/{dispute['id']}", officer).json()
        assert detail["evidence"]["reported"]["status"] == "current"
        r = api.post(
            f"/v1/ops/disputes/{dispute['id']}/resolve",
            officer,
            {"outcome": "corrected", "note": "checked"},
        )
        assert r.status_code == 409 and r.json()["code"] == "dispute_nothing_to_correct"
        r = api.post(
            f"/v1/ops/disputes/{dispute['id']}/resolve",
            officer,
            {"outcome": "confirmed", "note": "no payment was ever late"},
        )
        assert r.status_code == 200 and r.json()["status"] == "confirmed"
        assert api.get("/v1/me/disputes", token).json()[0]["outcome_note"] == (
            "no payment was ever late"
        )
        month = api.clock.today().strftime("%Y-%m")
        r = api.get("/v1/ops/compliance/reports/disputes", officer, month=month)
        assert r.status_code == 200 and r.json()["totals"]["opened"] == 1
        assert api.get("/v1/ops/compliance/reports/bureau", support, month=month).status_code == 403
        bad = api.get("/v1/ops/compliance/reports/bureau", officer, month="2026-13")
        assert bad.status_code in (400, 422)


def test_data_subject_requests(db_url: str, models_dir: Path, tmp_path: Path) -> None:
    with running_api(db_url, models_dir, tmp_path) as api:
        key = api.merchant()
        body = {
            "product": "huabei",
            "name": "张三",
            "id_number": id_number(seq="511"),
            "phone": "13812345011",
            "income_band": "10k_20k",
            "consents": [
                {"kind": "bureau_inquiry", "text_version": "2026-01", "scope": "credit decision"},
                {"kind": "shopping_data", "text_version": "2026-01", "scope": "orders"},
                {"kind": "sensitive_data", "text_version": "2026-01", "scope": "accounts"},
            ],
            "behaviour": {
                "account_age_days": 2000,
                "orders_12m": 40,
                "spend_12m_fen": 3_000_000,
                "return_rate_bp": 300,
                "other_lenders": 0,
            },
        }
        app = api.post("/v1/applications", key, body).json()
        account, customer = app["credit_account_id"], app["customer_id"]
        token = api.shopper_token(key, customer)

        r = api.post("/v1/me/privacy/access", token, {})
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        assert data["customer"]["name"] == "张三"
        assert data["customer"]["phone"] == "13812345011"
        assert data["customer"]["id_number"] == id_number(seq="511")
        assert {"credit_accounts", "consents", "applications"} <= set(data["tables"])
        assert "token_hash" not in str(data) and "phone_bidx" not in str(data)

        r = api.post(
            "/v1/me/privacy/corrections", token, {"field": "phone", "value": "13900000001"}
        )
        assert r.status_code == 201 and r.json()["detail"] == {"field": "phone"}
        r = api.post("/v1/me/privacy/corrections", token, {"field": "name", "value": "李四"})
        assert r.status_code == 422  # a name is corrected by staff, after checking documents
        data = api.post("/v1/me/privacy/access", token, {}).json()["data"]
        assert data["customer"]["phone"] == "13900000001"

        r = api.post("/v1/me/privacy/withdrawals", token, {"kind": "bureau_inquiry"})
        assert r.status_code == 201 and r.json()["outcome"]["revoked"] == 1
        with api.ctx.engine.connect() as conn:
            assert not has_consent(conn, customer, "bureau_inquiry", api.clock.now())
        r = api.post(
            "/v1/me/consents", token, {"kind": "sharing", "text_version": "2026-02", "scope": ""}
        )
        assert r.status_code == 422  # sharing names the funder or bureau
        r = api.post(
            "/v1/me/consents",
            token,
            {"kind": "sharing", "text_version": "2026-02", "scope": "funder:bank_a"},
        )
        assert r.status_code == 201
        kinds = [
            (c["kind"], c["revoked_at"] is None) for c in api.get("/v1/me/consents", token).json()
        ]
        assert ("sensitive_data", True) in kinds  # given separately at application
        assert ("bureau_inquiry", False) in kinds and ("sharing", True) in kinds

        # deletion: refused while the account is open, the refusal kept and audited
        r = api.post("/v1/me/privacy/deletion", token, {})
        assert r.status_code == 409 and r.json()["code"] == "privacy_request_refused"
        assert str(account) in r.json()["detail"]
        statuses = [
            (q["kind"], q["status"]) for q in api.get("/v1/me/privacy/requests", token).json()
        ]
        assert ("deletion", "refused") in statuses and ("access", "completed") in statuses

        officer = api.staff_token("olga", "compliance")
        r = api.post(f"/v1/ops/accounts/{account}/close", officer, {"reason": "shopper asked"})
        assert r.status_code == 200, r.text
        r = api.post(f"/v1/ops/customers/{customer}/privacy/deletion", officer, {})
        assert r.status_code == 201, r.text
        scheduled = r.json()
        assert scheduled["status"] == "scheduled"
        assert scheduled["erase_on"] == "2031-01-02"
        assert "kept" in scheduled["outcome"]
        assert api.get("/v1/me/accounts", token).status_code == 401  # sessions ended
        overdue = api.get("/v1/ops/privacy/requests", officer, status="scheduled").json()
        assert [q["id"] for q in overdue] == [scheduled["id"]]

        with api.ctx.engine.begin() as conn:
            assert run_retention(conn, api.clock, api.ctx.keys)["anonymized"] == 0
        api.clock.set(api.clock.now().replace(year=2031, month=1, day=3))
        with api.ctx.engine.begin() as conn:
            assert run_retention(conn, api.clock, api.ctx.keys)["anonymized"] == 1
        officer = api.staff_token("olga", "compliance")  # five years on: a new session
        r = api.post(f"/v1/ops/customers/{customer}/privacy/access", officer, {})
        assert r.status_code == 200
        who = r.json()["data"]["customer"]
        assert who["erased"] and who["name"] == "(erased)" and who["phone"] == "(erased)"
        with api.ctx.engine.connect() as conn:
            actions = {e.action for e in list_entries(conn, target_kind="customer", limit=1000)}
        assert {"privacy.access", "privacy.correction", "privacy.withdrawal"} <= actions
        assert {"privacy.deletion_refused", "privacy.deletion", "privacy.anonymized"} <= actions


def test_console_compliance_page(db_url: str, models_dir: Path, tmp_path: Path) -> None:
    from web.test_web_console_routes import csrf_of, sign_in

    with running_api(db_url, models_dir, tmp_path) as api:
        key = api.merchant()
        app = api.apply(key, id_number(seq="521"), "13812345021").json()
        account, customer = app["credit_account_id"], app["customer_id"]
        _report(api)
        token = api.shopper_token(key, customer)
        body = {"item": "balance", "claim": "this is not my balance"}
        assert api.post(f"/v1/me/accounts/{account}/disputes", token, body).status_code == 201

        finance = sign_in(api, "fin", "finance")  # reports only
        page = finance.get("/console/compliance")
        assert page.status_code == 200 and 'data-testid="disputes"' not in page.text
        rep = finance.get(
            "/console/compliance/reports", params={"name": "overdue", "month": "2026-01"}
        )
        assert rep.status_code == 200 and 'data-testid="report-totals"' in rep.text
        csv = finance.get(
            "/console/compliance/reports",
            params={"name": "exposure", "month": "2026-01", "format": "csv"},
        )
        assert csv.headers["content-type"].startswith("text/csv")
        assert csv.text.splitlines()[0].startswith("customer_id,currency,accounts")

        officer = sign_in(api, "olga", "compliance")
        page = officer.get("/console/compliance")
        assert "this is not my balance" in page.text
        dispute_id = api.get("/v1/me/disputes", token).json()[0]["id"]
        r = officer.post(
            f"/console/compliance/disputes/{dispute_id}/resolve",
            data={
                "outcome": "confirmed",
                "note": "balance matches the ledger",
                "csrf_token": csrf_of(page.text),
            },
            follow_redirects=True,
        )
        assert r.status_code == 200 and f"Dispute {dispute_id} confirmed." in r.text
        r = officer.post(
            "/console/compliance/requests",
            data={
                "customer_id": str(customer),
                "action": "access",
                "csrf_token": csrf_of(page.text),
            },
        )
        assert r.status_code == 200 and "张三" in r.text and "13812345021" in r.text
        r = officer.post(
            "/console/compliance/requests",
            data={
                "customer_id": str(customer),
                "action": "deletion",
                "csrf_token": csrf_of(page.text),
            },
            follow_redirects=True,
        )
        assert "refused" in r.text and "still open" in r.text
        assert api.get("/v1/me/privacy/requests", token).json()[-1]["status"] == "refused"
        no_csrf = officer.post("/console/compliance/requests", data={"customer_id": "1"})
        assert no_csrf.status_code == 403


def test_wallet_my_data_page(db_url: str, models_dir: Path, tmp_path: Path) -> None:
    import httpx

    from web.test_web_console_routes import csrf_of

    with running_api(db_url, models_dir, tmp_path) as api:
        key = api.merchant()
        app = api.apply(key, id_number(seq="531"), "13812345031").json()
        account, customer = app["credit_account_id"], app["customer_id"]
        _report(api)
        wallet = httpx.Client(base_url=api.base, timeout=60)
        wallet.cookies.set("fenqi_wallet", api.shopper_token(key, customer), path="/wallet")
        page = wallet.get("/wallet/privacy")
        assert page.status_code == 200 and "bureau_inquiry" in page.text
        csrf = csrf_of(page.text)
        r = wallet.post(
            "/wallet/disputes",
            data={
                "account_id": str(account),
                "item": "status",
                "claim": "never late",
                "csrf_token": csrf,
            },
            follow_redirects=True,
        )
        assert "Dispute received" in r.text and 'data-testid="wallet-disputes"' in r.text
        r = wallet.post("/wallet/privacy/access", data={"csrf_token": csrf})
        assert r.status_code == 200 and "13812345031" in r.text and "credit_accounts" in r.text
        r = wallet.post(
            "/wallet/privacy/withdraw",
            data={"kind": "shopping_data", "csrf_token": csrf},
            follow_redirects=True,
        )
        assert "Consent withdrawn" in r.text
        r = wallet.post("/wallet/privacy/delete", data={"csrf_token": csrf}, follow_redirects=True)
        assert "We cannot delete your data yet" in r.text
        assert wallet.post("/wallet/privacy/delete", data={}).status_code == 403
