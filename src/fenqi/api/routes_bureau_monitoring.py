"""`GET /v1/ops/accounts/{id}/bureau-monitoring`: the account's latest post-loan monitoring
run and the bureau attributes of its latest successful monitoring inquiry (issue 18)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy import select

from fenqi.api.deps import Id, allowed, get_ctx
from fenqi.api.problems import PROBLEM_RESPONSES
from fenqi.bureau import monitoring
from fenqi.context import Context
from fenqi.errors import FenqiError
from fenqi.privacy.staff import Permission, StaffUser
from fenqi.store.schema.credit import credit_accounts

router = APIRouter(prefix="/v1/ops", tags=["operations"], responses=PROBLEM_RESPONSES)


@router.get("/accounts/{account_id}/bureau-monitoring")
def account_monitoring(
    account_id: Id,
    user: StaffUser = Depends(allowed(Permission.CUSTOMER_READ_MASKED)),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """No personal data: the attributes are counts, amounts and statuses; the report itself
    stays sealed."""
    with ctx.engine.connect() as conn:
        found = conn.execute(
            select(credit_accounts.c.id).where(credit_accounts.c.id == account_id)
        ).first()
        if found is None:
            raise FenqiError(
                f"credit account {account_id} not found", code="not_found", http_status=404
            )
        return monitoring.latest(conn, account_id)
