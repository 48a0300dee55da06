"""Refusals of the bureau area, each with a stable machine code."""

from __future__ import annotations

from fenqi.errors import FenqiError


class BureauError(FenqiError):
    code = "bureau_error"
    http_status = 422


class NoAuthorization(BureauError):
    """An inquiry without a recorded authorization naming purpose and date."""

    code = "bureau_authorization_required"
    http_status = 403


class BureauUnavailable(BureauError):
    """The bureau did not answer (timeout, 5xx, circuit open): the caller falls back."""

    code = "bureau_unavailable"
    http_status = 503


class FileFormatError(BureauError):
    """A reporting file broke its format; the message names the line and the field."""

    code = "bureau_file_invalid"
    http_status = 422
