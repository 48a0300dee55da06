"""Refusals of the credit area, each with a stable code."""

from __future__ import annotations

from fenqi.errors import FenqiError


class CreditError(FenqiError):
    code = "credit_error"
    http_status = 422


class NotFound(CreditError):
    code = "not_found"
    http_status = 404


class Declined(CreditError):
    """An authorization refused for a business reason (the code says which)."""

    code = "declined"
    http_status = 402
