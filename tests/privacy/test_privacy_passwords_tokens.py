"""argon2id password hashes and hashed bearer tokens."""

from __future__ import annotations

import hashlib

import pytest
from argon2 import PasswordHasher

from fenqi.privacy.passwords import hash_password, needs_rehash, verify_password
from fenqi.privacy.tokens import hash_token, new_token, token_matches


def test_hash_and_verify() -> None:
    stored = hash_password("correct horse battery staple")
    assert stored.startswith("$argon2id$")
    assert "correct horse" not in stored
    assert verify_password(stored, "correct horse battery staple")
    assert not verify_password(stored, "correct horse battery stapl")
    assert not verify_password("not-a-hash", "anything")
    assert not needs_rehash(stored)
    assert hash_password("same password!") != hash_password("same password!")  # salted


def test_needs_rehash_when_parameters_change() -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("a long password")
    assert verify_password(weak, "a long password")  # parameters travel with the hash
    assert needs_rehash(weak)


def test_huge_password_refused() -> None:
    with pytest.raises(ValueError):
        hash_password("x" * 5000)
    assert not verify_password(hash_password("short enough"), "x" * 5000)


def test_tokens() -> None:
    token = new_token("sk")
    assert token.startswith("sk_") and len(token) >= 3 + 43
    assert new_token("sk") != token
    digest = hash_token(token)
    assert digest == hashlib.sha256(token.encode()).hexdigest()
    assert token not in digest
    assert token_matches(token, digest)
    assert not token_matches(token + "x", digest)
    for bad in ("", "SK", "has space", "x" * 17):
        with pytest.raises(ValueError):
            new_token(bad)
