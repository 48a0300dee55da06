"""Refusals of the privacy area, each with a stable machine code."""

from __future__ import annotations

from fenqi.errors import FenqiError


class PrivacyError(FenqiError):
    """Personal-data protection refused or failed (bad key configuration, failed decryption)."""

    code = "privacy_error"
    http_status = 422


class IdentityError(FenqiError):
    """An identity number or mobile number broke a rule; the message names the field and rule
    and shows the value masked, never in full."""

    code = "invalid_identity"
    http_status = 422


class StaffError(FenqiError):
    """A staff-user operation refused (weak password, unknown role, username taken)."""

    code = "staff_error"
    http_status = 422


class Forbidden(FenqiError):
    """A staff user's role does not grant the permission an action needs."""

    code = "forbidden"
    http_status = 403


class StaffNotFound(StaffError):
    code = "not_found"
    http_status = 404
