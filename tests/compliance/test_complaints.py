"""The complaints register on SQLite and PostgreSQL over real HTTP: staff record and close a
complaint, refusals are audited and change nothing, the regulatory report counts it; and the
`fenqi compliance complaint-*` commands as a user runs them."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from bureau.test_monitoring import fenqi
from fenqi.compliance import reports
from fenqi.privacy.audit import list_entries
from fenqi.store.schema.compliance import complaints
from support.api_server import id_number, running_api


def test_staff_record_and_close_a_complaint_and_the_report_counts_it(
    db_url: str, models_dir: Path, tmp_path: Path
) -> None:
    with running_api(db_url, models_dir, tmp_path) as api:
        key = api.merchant()
        applied = api.apply(key, id_number(seq="501"), "13812345501")
        customer = int(applied.json()["customer_id"])
        staff = api.staff_token("officer", "compliance")
        body = {
            "customer_id": customer,
            "channel": "phone",
            "category": "collection",
            "text": f"called at night; my ID {id_number(seq='501')}",
        }
        r = api.post("/v1/ops/complaints", staff, body)
        assert r.status_code == 201, r.text
        c = r.json()
        assert (c["status"], c["due_on"]) == (
            "open",
            (api.clock.today() + timedelta(days=15)).isoformat(),
        )
        assert id_number(seq="501") not in c["text"]  # kept redacted
        # refused, nothing recorded: an unknown customer (audited), a bad category
        assert (
            api.post("/v1/ops/complaints", staff, {**body, "customer_id": 99999}).status_code == 404
        )
        bad = api.post("/v1/ops/complaints", staff, {**body, "category": "weather"})
        assert bad.status_code == 422
        support = api.staff_token("helpdesk", "support")
        assert api.post("/v1/ops/complaints", support, body).status_code == 403

        api.clock.advance(timedelta(days=16))
        staff = api.staff_token("officer", "compliance")  # a new session after 16 days
        late = api.get("/v1/ops/complaints", staff, overdue="true").json()
        assert [x["id"] for x in late] == [c["id"]]
        month = api.clock.today().strftime("%Y-%m")
        with api.ctx.engine.connect() as conn:
            before = reports.build(conn, "disputes", month, grace_of={}, cap_fen=1)
        assert before.totals["open_past_answer_date_complaints"] == 1
        close = {"outcome": "partly_upheld", "note": "calls moved to daytime"}
        done = api.post(f"/v1/ops/complaints/{c['id']}/close", staff, close)
        assert done.status_code == 200 and done.json()["outcome"] == "partly_upheld"
        again = api.post(f"/v1/ops/complaints/{c['id']}/close", staff, close)
        assert again.status_code == 409 and again.json()["code"] == "complaint_closed"

        with api.ctx.engine.connect() as conn:
            assert len(conn.execute(select(complaints)).all()) == 1
            actions = [e.action for e in list_entries(conn) if e.action.startswith("complaint.")]
            assert sorted(actions) == [
                "complaint.closed",
                "complaint.opened",
                "complaint.refused",  # the unknown customer
                "complaint.refused",  # closed twice (a malformed body is refused before)
            ]
            opened_month = (api.clock.today() - timedelta(days=16)).strftime("%Y-%m")
            rep = reports.build(conn, "disputes", opened_month, grace_of={}, cap_fen=1)
            now = reports.build(conn, "disputes", month, grace_of={}, cap_fen=1)
        assert {
            "kind": "complaint",
            "what": "collection",
            "status": "closed:partly_upheld",
            "count": 1,
        } in rep.rows
        assert now.totals["open_past_answer_date_complaints"] == 0


def test_complaint_commands(tmp_path: Path) -> None:
    env = {
        "FENQI_DATABASE_URL": f"sqlite:///{tmp_path / 'fenqi.sqlite'}",
        "FENQI_KEYS_FILE": str(tmp_path / "keys.json"),
    }
    assert fenqi("db", "upgrade", env=env).returncode == 0
    args = ("--channel", "letter", "--category", "billing", "--text", "charged twice")
    missing = fenqi("compliance", "complaint-open", "--customer", "5", *args, env=env)
    assert missing.returncode != 0 and "not_found" in missing.stderr
    listed = fenqi("compliance", "complaints", "--json", env=env)
    assert listed.returncode == 0 and json.loads(listed.stdout) == []
    from fenqi.privacy.audit import list_entries as entries
    from fenqi.store.engine import make_engine

    engine = make_engine(env["FENQI_DATABASE_URL"])
    with engine.connect() as conn:
        assert [e.action for e in entries(conn, action="complaint.refused")] == [
            "complaint.refused"
        ]
    engine.dispose()
