"""Prepared statements give what Connection.execute gives, on both databases, and the ledger's
in-transaction account caches forget what a rolled-back savepoint undid."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, bindparam, event, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from fenqi.clock import FixedClock
from fenqi.ledger.accounts import account_meta, open_account
from fenqi.ledger.chart import AccountCode, OwnerKind
from fenqi.store.prepared import Prepared
from fenqi.store.schema.credit import credit_accounts as ca
from fenqi.store.schema.credit import installment_plans as plans

ROW = {
    "customer_ref": "c1",
    "product": "huabei",
    "tier": None,
    "currency": "CNY",
    "limit_fen": 500_000,
    "status": "active",
    "opened_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
}
INSERT = Prepared(insert(ca).returning(ca.c.id))
PLAN = {
    "order_ref": "o1",
    "kind": "installments",
    "terms": 3,
    "method": "equal_principal_equal_fee",
    "purchase_date": date(2026, 1, 2),
    "principal_fen": 30_000,
    "fee_fen": 900,
    "interest_fen": 0,
    "nominal_rate_bp": 1_200,
    "effective_rate_bp": 1_100,
    "status": "open",
    "created_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
}
INSERT_PLAN = Prepared(insert(plans).returning(plans.c.id))
BY_ID = Prepared(select(ca).where(ca.c.id == bindparam("k_id"), ca.c.status == "active"))
SET = Prepared(update(ca).where(ca.c.id == bindparam("k_id")))


def test_rows_and_types_match_execute(db_engine: Engine) -> None:
    with db_engine.begin() as conn:
        new_id = INSERT.run(conn, ROW).scalar_one()
        lean = BY_ID.run(conn, {"k_id": new_id}).mapping()
        core = dict(conn.execute(BY_ID.statement, {"k_id": new_id}).mappings().one())
        assert lean == core
        assert lean is not None and lean["limit_fen"] == 500_000
        assert isinstance(lean["opened_at"], datetime)
        assert BY_ID.run(conn, {"k_id": new_id + 1}).mapping() is None
        assert SET.run(conn, {"k_id": new_id, "limit_fen": 7}).rowcount == 1
        SET.many(conn, [{"k_id": new_id, "limit_fen": 8}, {"k_id": -1, "limit_fen": 9}])
        assert BY_ID.run(conn, {"k_id": new_id}).rows[0][5] == 8
        SET.many(conn, [{"k_id": new_id, "limit_fen": 10}])  # one set: a plain execution
        assert BY_ID.run(conn, {"k_id": new_id}).rows[0][5] == 10


def test_driver_errors_are_sqlalchemy_errors(db_engine: Engine) -> None:
    with db_engine.begin() as conn:
        INSERT.run(conn, ROW)
        # one account per customer and product
        with pytest.raises(IntegrityError), conn.begin_nested():
            INSERT.run(conn, ROW)
        assert conn.execute(select(ca.c.id)).scalars().all() != []


def test_one_cursor_serves_a_connection_and_a_driver_error_retires_it(db_engine: Engine) -> None:
    """A new cursor costs more than a statement on PostgreSQL, so statements share one per
    driver connection; after an error the next statement gets a fresh one and works."""
    with db_engine.begin() as conn:
        new_id = INSERT.run(conn, ROW).scalar_one()
        cursor = conn.connection.info["fenqi.prepared.cursor"]
        assert BY_ID.run(conn, {"k_id": new_id}).mapping() is not None
        assert SET.run(conn, {"k_id": new_id, "limit_fen": 7}).rowcount == 1
        assert conn.connection.info["fenqi.prepared.cursor"] is cursor
        with pytest.raises(IntegrityError), conn.begin_nested():
            INSERT.run(conn, ROW)
        # the savepoint's rollback already ran on a new cursor
        assert conn.connection.info["fenqi.prepared.cursor"] is not cursor
        assert BY_ID.run(conn, {"k_id": new_id}).rows[0][5] == 7
        # an update, then a select: the select's rows are its own, not the update's
        assert SET.run(conn, {"k_id": new_id, "limit_fen": 8}).rows == []
        assert BY_ID.run(conn, {"k_id": new_id}).rows[0][5] == 8


def test_text_statements_go_through_execute(db_engine: Engine) -> None:
    count = Prepared(text("SELECT count(*) FROM credit_accounts WHERE limit_fen > :least"))
    with db_engine.begin() as conn:
        INSERT.run(conn, ROW)
        assert count.run(conn, {"least": 0}).scalar() == 1


def test_listeners_and_autobegin_see_every_statement(db_engine: Engine) -> None:
    seen: list[str] = []

    def listen(_c: Any, _cur: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(db_engine, "before_cursor_execute", listen)
    try:
        with db_engine.begin() as conn:
            new_id = INSERT.run(conn, ROW).scalar_one()
            BY_ID.run(conn, {"k_id": new_id})
    finally:
        event.remove(db_engine, "before_cursor_execute", listen)
    assert sum("credit_accounts" in s for s in seen) == 2
    with db_engine.connect() as conn:  # no transaction yet: SQLAlchemy begins it
        assert BY_ID.run(conn, {"k_id": new_id}).mapping() is not None
        assert conn.in_transaction()


def test_a_rolled_back_savepoint_forgets_the_accounts_it_opened(db_engine: Engine) -> None:
    clock = FixedClock.on(date(2026, 1, 1))
    with db_engine.begin() as conn:
        with pytest.raises(RuntimeError), conn.begin_nested():
            undone = open_account(
                conn, clock, AccountCode.MERCHANT_PAYABLE, OwnerKind.MERCHANT, "m1", "CNY"
            )
            assert account_meta(conn, [undone]) == {undone: ("merchant_payable", "CNY")}
            raise RuntimeError("refused")
        # the id may be handed out again; what is known about it must come from the database
        other = open_account(
            conn, clock, AccountCode.PRINCIPAL_RECEIVABLE, OwnerKind.CUSTOMER, "7", "CNY"
        )
        assert account_meta(conn, [other]) == {other: ("principal_receivable", "CNY")}
        again = open_account(
            conn, clock, AccountCode.MERCHANT_PAYABLE, OwnerKind.MERCHANT, "m1", "CNY"
        )
        assert again != other
        assert account_meta(conn, [again]) == {again: ("merchant_payable", "CNY")}


def _boom(*_args: Any) -> None:
    raise AssertionError("savepoint went through Connection.execute")


def test_savepoints_run_on_the_cursor_and_keep_their_meaning(
    db_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SAVEPOINT, RELEASE and ROLLBACK TO skip SQLAlchemy's execute path (the dialect's own
    methods are never called), and still undo or keep exactly what they should, nested too,
    with the savepoint events fired."""
    kind = type(db_engine.dialect)
    for name in ("do_savepoint", "do_release_savepoint", "do_rollback_to_savepoint"):
        monkeypatch.setattr(kind, name, _boom)
    rolled_back: list[str] = []

    def heard(_conn: Any, name: str, _context: Any) -> None:
        rolled_back.append(name)

    event.listen(db_engine, "rollback_savepoint", heard)
    try:
        with db_engine.begin() as conn:
            kept = INSERT.run(conn, ROW).scalar_one()
            with pytest.raises(RuntimeError), conn.begin_nested():
                INSERT.run(conn, {**ROW, "customer_ref": "undone"})
                raise RuntimeError("refused")
            with conn.begin_nested():
                inner = INSERT.run(conn, {**ROW, "customer_ref": "inner"}).scalar_one()
                with pytest.raises(RuntimeError), conn.begin_nested():
                    SET.run(conn, {"k_id": inner, "limit_fen": 1})
                    raise RuntimeError("refused")
        with db_engine.connect() as conn:
            rows = dict(conn.execute(select(ca.c.customer_ref, ca.c.limit_fen)).all())
        assert rows == {"c1": 500_000, "inner": 500_000}
        assert kept and len(rolled_back) == 2
    finally:
        event.remove(db_engine, "rollback_savepoint", heard)


def test_savepoints_go_through_execute_while_someone_listens(db_engine: Engine) -> None:
    """With a cursor listener on, SAVEPOINT and RELEASE are executed where listeners see them."""
    seen: list[str] = []

    def listen(_c: Any, _cur: Any, statement: str, *_rest: Any) -> None:
        seen.append(statement.split()[0])

    event.listen(db_engine, "before_cursor_execute", listen)
    try:
        with db_engine.begin() as conn, conn.begin_nested():
            INSERT.run(conn, ROW)
    finally:
        event.remove(db_engine, "before_cursor_execute", listen)
    assert "SAVEPOINT" in seen and "RELEASE" in seen


def test_constant_column_defaults_are_bound_on_the_lean_path(
    db_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An insert leaving out columns with constant defaults (a plan's refunded, removed and
    late-fee counters, all 0) runs on the cursor, not through Connection.execute, and stores
    those defaults."""
    from sqlalchemy import Connection

    counters = ("refunded_fen", "fee_removed_fen", "interest_removed_fen", "late_fees_fen")
    with db_engine.begin() as conn:
        account = INSERT.run(conn, ROW).scalar_one()
        monkeypatch.setattr(Connection, "execute", _boom)
        plan_id = INSERT_PLAN.run(conn, {**PLAN, "credit_account_id": account}).scalar_one()
        monkeypatch.undo()
        row = conn.execute(
            select(*[plans.c[name] for name in counters]).where(plans.c.id == plan_id)
        ).one()
    assert tuple(row) == (0, 0, 0, 0)
