"""Signatures: any body and secret round-trip; any change to body, secret, signature or time
beyond the tolerance fails."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from fenqi.webhooks.signing import parse_header, sign, verify

secrets_ = st.binary(min_size=1, max_size=64)
bodies = st.binary(max_size=2048)
timestamps = st.integers(min_value=0, max_value=4_000_000_000)


def test_known_vector() -> None:
    body = b'{"id":"evt_1"}'
    expected = hmac.new(b"k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign(b"k", 1_700_000_000, body) == f"t=1700000000,v1={expected}"


@given(secrets_, timestamps, bodies)
def test_roundtrip(secret: bytes, timestamp: int, body: bytes) -> None:
    assert verify(secret, sign(secret, timestamp, body), body, now=timestamp)


@given(secrets_, timestamps, bodies.filter(bool), st.data())
def test_any_tampered_body_byte_fails(
    secret: bytes, timestamp: int, body: bytes, data: st.DataObject
) -> None:
    header = sign(secret, timestamp, body)
    i = data.draw(st.integers(0, len(body) - 1))
    flip = data.draw(st.integers(1, 255))
    tampered = body[:i] + bytes([body[i] ^ flip]) + body[i + 1 :]
    assert not verify(secret, header, tampered, now=timestamp)


@given(secrets_, timestamps, bodies, st.data())
def test_any_tampered_signature_char_fails(
    secret: bytes, timestamp: int, body: bytes, data: st.DataObject
) -> None:
    header = sign(secret, timestamp, body)
    prefix, digest = header.split("v1=")
    i = data.draw(st.integers(0, len(digest) - 1))
    other = data.draw(st.sampled_from([c for c in "0123456789abcdef" if c != digest[i]]))
    assert not verify(
        secret, prefix + "v1=" + digest[:i] + other + digest[i + 1 :], body, timestamp
    )


@given(secrets_, secrets_, timestamps, bodies)
def test_another_secret_fails(secret: bytes, other: bytes, timestamp: int, body: bytes) -> None:
    if other != secret:
        assert not verify(other, sign(secret, timestamp, body), body, now=timestamp)


@given(secrets_, timestamps, bodies, st.integers(-300, 300))
def test_within_tolerance_passes(secret: bytes, timestamp: int, body: bytes, skew: int) -> None:
    assert verify(secret, sign(secret, timestamp, body), body, now=timestamp + skew)


@given(secrets_, timestamps, bodies, st.integers(301, 10**9), st.booleans())
def test_stale_or_future_timestamp_fails(
    secret: bytes, timestamp: int, body: bytes, skew: int, late: bool
) -> None:
    now = timestamp + skew if late else timestamp - skew
    assert not verify(secret, sign(secret, timestamp, body), body, now=now)


def test_the_timestamp_is_signed() -> None:
    header = sign(b"secret", 1_700_000_000, b"{}")
    moved = header.replace("t=1700000000", "t=1700000100")
    assert not verify(b"secret", moved, b"{}", now=1_700_000_100)


def test_rotation_any_listed_signature_matches() -> None:
    new = sign(b"new-secret", 1_700_000_000, b"{}")
    old_digest = sign(b"old-secret", 1_700_000_000, b"{}").split("v1=")[1]
    header = f"{new},v1={old_digest}"
    assert verify(b"old-secret", header, b"{}", now=1_700_000_000)
    assert verify(b"new-secret", header, b"{}", now=1_700_000_000)


@given(st.text(max_size=200), bodies)
def test_malformed_headers_never_raise(header: str, body: bytes) -> None:
    assert verify(b"secret", header, body, now=1_700_000_000) in (True, False)


def test_malformed_headers_rejected() -> None:
    for header in ("", "t=1", "v1=ab", "t=x,v1=ab", "t=1,t=2,v1=ab", "garbage", "t=-5,v1=ab"):
        assert parse_header(header) is None or not verify(b"s", header, b"", now=1)
    assert parse_header("t=1,v1=ab") == (1, ["ab"])
