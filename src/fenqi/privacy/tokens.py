"""Bearer tokens and API keys: random, prefixed for recognition, stored only as SHA-256.

A token has 256 bits of randomness, so a plain (unsalted, fast) hash is enough: nobody can
enumerate the space, unlike passwords, which need argon2. The prefix ("sk", "shop", "sess")
says what a leaked string is, so secret scanners and people can recognise it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

TOKEN_RANDOM_BYTES = 32
_PREFIX = re.compile(r"[a-z][a-z0-9]{0,15}(?:_[a-z][a-z0-9]{0,7})?")  # "sk", "sk_test"


def new_token(prefix: str) -> str:
    """A fresh token like "sk_3q2Vx..."; show it once, store hash_token(token)."""
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(
            "token prefix: 1-16 lower-case letters and digits, starting with a letter, "
            "and an optional _qualifier (sk_test)"
        )
    return f"{prefix}_{secrets.token_urlsafe(TOKEN_RANDOM_BYTES)}"


def hash_token(token: str) -> str:
    """SHA-256 hex of the token: what the database stores and looks up."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_matches(token: str, stored_hash: str) -> bool:
    """Constant-time comparison of a presented token with a stored hash."""
    return hmac.compare_digest(hash_token(token), stored_hash)
