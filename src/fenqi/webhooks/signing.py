"""Webhook signatures: HMAC-SHA256 over a timestamp and the body.

The header is `Fenqi-Signature: t=<unix seconds>,v1=<hex digest>`, where the digest is
HMAC-SHA256(secret, f"{t}.".encode() + body). Signing the timestamp with the body lets a shop
reject a replayed request: a captured request cannot be re-sent later with a fresh timestamp.
Several `v1=` values may appear (e.g. while a secret is rotated); any one matching is enough.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "Fenqi-Signature"
EVENT_ID_HEADER = "Fenqi-Event-Id"
EVENT_TYPE_HEADER = "Fenqi-Event-Type"
SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300
# A header longer than this is not one we sent; refuse it before parsing (a limit on everything).
HEADER_LENGTH_MAX = 4096


def digest(secret: bytes, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `"{timestamp}." + body` under `secret`."""
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The `Fenqi-Signature` header value for `body` sent at `timestamp` (unix seconds)."""
    assert secret, "a webhook secret must not be empty"
    assert timestamp >= 0, "timestamp is unix seconds"
    return f"t={timestamp},{SCHEME}={digest(secret, timestamp, body)}"


def sign_all(secrets: list[bytes], timestamp: int, body: bytes) -> str:
    """The header signed with each of `secrets` (one `v1=` each, in order): while a shop's
    secret is rotated, deliveries carry the new and the old signature, so a receiver holding
    either secret accepts them."""
    assert secrets and all(secrets), "a webhook secret must not be empty"
    assert timestamp >= 0, "timestamp is unix seconds"
    digests = ",".join(f"{SCHEME}={digest(secret, timestamp, body)}" for secret in secrets)
    return f"t={timestamp},{digests}"


def parse_header(header: str) -> tuple[int, list[str]] | None:
    """(timestamp, [v1 digests]) from a header value, or None if it is malformed."""
    if len(header) > HEADER_LENGTH_MAX:
        return None
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            return None
        if key == "t":
            if timestamp is not None or not value.isascii() or not value.isdigit():
                return None
            timestamp = int(value)
        elif key == SCHEME:
            signatures.append(value)
    if timestamp is None or not signatures:
        return None
    return timestamp, signatures


def verify(
    secret: bytes,
    header: str,
    body: bytes,
    now: int,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """True if `header` signs `body` under `secret` and its timestamp is within
    `tolerance_seconds` of `now` (unix seconds). Digests are compared in constant time."""
    parsed = parse_header(header)
    if parsed is None or not secret:
        return False
    timestamp, signatures = parsed
    if abs(now - timestamp) > tolerance_seconds:
        return False
    expected = digest(secret, timestamp, body).encode()
    matched = False
    for candidate in signatures:
        # compare every candidate so the time taken does not say which one matched
        matched |= hmac.compare_digest(expected, candidate.encode("utf-8", "replace"))
    return matched
