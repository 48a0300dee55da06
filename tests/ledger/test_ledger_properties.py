"""Random sequences of ledger operations keep every invariant (on SQLite and PostgreSQL).

Holds, partial and final posts, voids, repayments, reversals and replays, in any order: the
trial balance stays zero, reconciliation stays exact, exposure never passes the limit, and a
model of what should have happened agrees with the ledger after every step.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from fenqi.clock import FixedClock
from fenqi.ledger.entry import EntryRequest, LedgerError, PostingSpec
from fenqi.ledger.service import (
    get_balance,
    post_entry,
    reconcile,
    resolve_pending,
    reverse_entry,
    trial_balance,
    void_pending,
)
from support.ledger_world import make_world

LIMIT = 50_000
op = st.one_of(
    st.tuples(st.just("hold"), st.integers(1, 30_000)),
    st.tuples(st.just("buy"), st.integers(1, 30_000)),
    st.tuples(st.just("capture"), st.integers(0, 50), st.integers(1, 100), st.booleans()),
    st.tuples(st.just("void"), st.integers(0, 50)),
    st.tuples(st.just("repay"), st.integers(1, 40_000)),
    st.tuples(st.just("reverse"), st.integers(0, 50)),
    st.tuples(st.just("replay"), st.integers(0, 50)),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=st.lists(op, min_size=1, max_size=25))
def test_random_operations_keep_invariants(db_engine: Engine, ops: list[tuple[Any, ...]]) -> None:
    clock = FixedClock(datetime(2026, 3, 1, tzinfo=UTC))
    owner = uuid.uuid4().hex[:10]
    with db_engine.begin() as conn:
        w = make_world(conn, clock, owner=owner, limit_fen=LIMIT)
        holds: list[list[int]] = []  # [entry_id, remaining]
        posted_entries: list[tuple[int, int, bool]] = []  # (entry id, signed principal, reversed)
        requests: list[EntryRequest] = []
        posted = pending = 0
        for i, (kind, *args) in enumerate(ops):
            cid = f"{owner}-{i}"
            if kind in ("hold", "buy"):
                req = EntryRequest(
                    cid,
                    "CNY",
                    (PostingSpec(w.principal, w.merchant, args[0]),),
                    pending=kind == "hold",
                )
                requests.append(req)
                result = post_entry(conn, clock, req)
                fits = posted + pending + args[0] <= LIMIT
                assert result.ok == fits
                if fits and kind == "hold":
                    holds.append([result.entry_id, args[0]])
                    pending += args[0]
                elif fits:
                    posted += args[0]
                    posted_entries.append((result.entry_id, args[0], False))
            elif kind == "capture" and holds:
                h = holds[args[0] % len(holds)]
                amount = max(1, h[1] * args[1] // 100)
                result = resolve_pending(conn, clock, cid, h[0], [amount], final=args[2])
                posted_entries.append((result.entry_id, amount, False))
                posted += amount
                released = h[1] if args[2] else amount
                pending -= released
                h[1] -= released
                if h[1] == 0:
                    holds.remove(h)
            elif kind == "void" and holds:
                h = holds.pop(args[0] % len(holds))
                void_pending(conn, clock, cid, h[0])
                pending -= h[1]
            elif kind == "repay":
                req = EntryRequest(cid, "CNY", (PostingSpec(w.cash, w.principal, args[0]),))
                result = post_entry(conn, clock, req)
                assert result.ok == (args[0] <= posted)
                if result.ok:
                    posted -= args[0]
                    posted_entries.append((result.entry_id, -args[0], False))
            elif kind == "reverse" and posted_entries:
                idx = args[0] % len(posted_entries)
                entry_id, signed, reversed_already = posted_entries[idx]
                if reversed_already or posted - signed < 0:
                    try:
                        refused = not reverse_entry(conn, clock, cid, entry_id, "test").ok
                    except LedgerError:
                        refused = True
                    assert refused, "reversal should have been refused"
                    continue
                # a reversal ignores the limit (a correction), but never takes a receivable
                # below zero
                assert reverse_entry(conn, clock, cid, entry_id, "test").ok
                posted -= signed
                posted_entries[idx] = (entry_id, signed, True)
            elif kind == "replay" and requests:
                req = requests[args[0] % len(requests)]
                before = get_balance(conn, w.principal)
                again = post_entry(conn, clock, req)
                assert again.replayed
                assert get_balance(conn, w.principal) == before
            bal = get_balance(conn, w.principal)
            assert (bal.debits_posted - bal.credits_posted, bal.debits_pending) == (posted, pending)
            assert bal.available_fen is not None and bal.available_fen >= 0
            assert bal.exposure_fen <= LIMIT or any(r for _, _, r in posted_entries)
        assert trial_balance(conn).balanced
        assert reconcile(conn) == []
