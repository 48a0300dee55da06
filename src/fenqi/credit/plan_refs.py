"""References of plans that no shop order names (hardship agreements, bill conversions).

`installment_plans.order_ref` holds 64 characters and, with the credit account, makes a plan
unique (a retried request finds its plan). Such a plan's reference is built from the request's
client id, which over the API is long ("staff:<user>:<48 hex>", "customer:<id>:<key of up to 64>");
one that would not fit is replaced by a digest of the client id, the same for the same request.
"""

from __future__ import annotations

import hashlib

ORDER_REF_CHARS_MAX = 64  # installment_plans.order_ref


def plan_ref(kind: str, client_id: str) -> str:
    """`<kind>:<client id>`, or `<kind>:#<digest of the client id>` when that is too long."""
    ref = f"{kind}:{client_id}"
    if len(ref) <= ORDER_REF_CHARS_MAX:
        return ref
    digest = hashlib.sha256(client_id.encode()).hexdigest()
    return f"{kind}:#{digest[: ORDER_REF_CHARS_MAX - len(kind) - 2]}"
