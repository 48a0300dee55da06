"""How fenqi talks to a credit bureau: the `BureauClient` interface and its HTTP implementation.

A real bureau's client (PBOC's front-end processor, Baihang's API, a US bureau) implements the
same two methods and translates its answers into `CreditReport`; nothing else in fenqi changes.

`HttpBureauClient` calls fenqi's bureau service (`fenqi bureau serve`) with a timeout on every
request, a bounded number of retries with backoff on failures that may pass (connection errors,
timeouts, 5xx, 429), and a circuit breaker: after `failures_to_open` consecutive failed calls it
stops calling for `reset_seconds` (every call fails at once with `BureauUnavailable`), then lets
one trial call through (half-open) and closes again if it succeeds. A 4xx refusal is the
caller's mistake, not an outage: it is raised as a `BureauError` with the bureau's code, not
retried and not counted by the breaker.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx

from fenqi.bureau.errors import BureauError, BureauUnavailable
from fenqi.bureau.model import CreditReport
from fenqi.clock import Clock


@dataclass(frozen=True, slots=True)
class InquiryAuthorization:
    """The subject's recorded authorization an inquiry is made under."""

    reference: str  # e.g. "consent:123" (the consents row)
    granted_at: datetime
    text_version: str


@dataclass(frozen=True, slots=True)
class SubmissionResult:
    submission_id: int
    records: int


class BureauClient(Protocol):
    lender: str

    def inquire(
        self, subject_id: str, purpose: str, authorization: InquiryAuthorization
    ) -> CreditReport: ...

    def submit(self, fmt: str, content: str) -> SubmissionResult: ...


class CircuitBreaker:
    """closed → (N consecutive failures) → open for reset_seconds → half-open (one trial)."""

    def __init__(self, clock: Clock, failures_to_open: int = 5, reset_seconds: float = 30.0):
        if failures_to_open < 1 or reset_seconds <= 0:
            raise ValueError("failures_to_open ≥ 1 and reset_seconds > 0")
        self.clock = clock
        self.failures_to_open = failures_to_open
        self.reset = timedelta(seconds=reset_seconds)
        self.failures = 0
        self.opened_at: datetime | None = None

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half_open" if self.clock.now() >= self.opened_at + self.reset else "open"

    def allow(self) -> bool:
        return self.state != "open"

    def success(self) -> None:
        self.failures = 0
        self.opened_at = None

    def failure(self) -> None:
        self.failures += 1
        if self.state == "half_open" or self.failures >= self.failures_to_open:
            self.opened_at = self.clock.now()


RETRYABLE_STATUS = {429, 500, 502, 503, 504}


class HttpBureauClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        clock: Clock,
        *,
        lender: str = "fenqi",
        timeout_seconds: float = 3.0,
        retries: int = 2,
        backoff_seconds: float = 0.2,
        breaker: CircuitBreaker | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.lender = lender
        self.retries = retries
        self.backoff = backoff_seconds
        self.breaker = breaker or CircuitBreaker(clock)
        self.sleep = sleep
        self.http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout_seconds,
            headers={"Authorization": f"Bearer {token}"},
            transport=transport,
        )

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if not self.breaker.allow():
            raise BureauUnavailable(
                "bureau: circuit open after repeated failures", reason="circuit_open"
            )
        last = "unknown"
        for attempt in range(self.retries + 1):
            if attempt:
                self.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                r = self.http.post(path, json=body)
            except httpx.HTTPError as exc:  # timeouts and connection errors
                last = type(exc).__name__
                continue
            if r.status_code in RETRYABLE_STATUS:
                last = f"http_{r.status_code}"
                continue
            if r.status_code >= 400:
                try:
                    problem = r.json()
                except ValueError:
                    problem = {}
                self.breaker.success()  # the bureau answered: it is up
                raise BureauError(
                    str(problem.get("title", f"bureau refused: HTTP {r.status_code}")),
                    code=str(problem.get("code", "bureau_refused")),
                    http_status=r.status_code if r.status_code < 500 else 502,
                )
            self.breaker.success()
            data: dict[str, Any] = r.json()
            return data
        self.breaker.failure()
        raise BureauUnavailable(
            f"bureau: no answer after {self.retries + 1} attempts ({last})", reason=last
        )

    def inquire(
        self, subject_id: str, purpose: str, authorization: InquiryAuthorization
    ) -> CreditReport:
        data = self._post(
            "/v1/inquiries",
            {
                "subject_id": subject_id,
                "purpose": purpose,
                "authorization": {
                    "reference": authorization.reference,
                    "granted_at": authorization.granted_at.isoformat(),
                    "text_version": authorization.text_version,
                },
            },
        )
        return CreditReport.from_json(data)

    def submit(self, fmt: str, content: str) -> SubmissionResult:
        data = self._post("/v1/files", {"format": fmt, "content": content})
        return SubmissionResult(int(data["submission_id"]), int(data["records"]))

    def close(self) -> None:
        self.http.close()
