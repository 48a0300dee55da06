"""The root of fenqi's exception family: every user-facing error has a stable machine code.

An assertion failure is a bug; a FenqiError is an expected refusal with a message that names the
problem. The API maps these once to application/problem+json.
"""

from __future__ import annotations

from typing import Any


class FenqiError(Exception):
    """`code` is one of `fenqi.error_codes.ErrorCode`; `http_status` is the status the raise
    site gives, which the API answers with only at versions before the one error vocabulary
    (from then on the code's own status); `legacy_code` is the spelling this refusal had
    before that version, when it changed (docs/api.md, Error codes)."""

    code: str = "fenqi_error"
    http_status: int = 400
    legacy_code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        legacy_code: str | None = None,
        **detail: Any,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if http_status is not None:
            self.http_status = http_status
        if legacy_code is not None:
            self.legacy_code = legacy_code
        self.detail = detail

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.detail}
