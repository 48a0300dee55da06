"""Password hashing with argon2id (argon2-cffi's RFC 9106 low-memory profile by default).

Hashes carry their parameters, so raising the cost later only needs `needs_rehash` at the next
successful login.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()  # argon2id; time_cost 3, memory 64 MiB, parallelism 4
PASSWORD_CHARS_MAX = 1024  # hashing cost must not be steerable by a huge input


def hash_password(password: str, hasher: PasswordHasher = _HASHER) -> str:
    if len(password) > PASSWORD_CHARS_MAX:
        raise ValueError(f"password: at most {PASSWORD_CHARS_MAX} characters")
    return hasher.hash(password)


def verify_password(password_hash: str, password: str, hasher: PasswordHasher = _HASHER) -> bool:
    """True if the password matches; False on mismatch or an unreadable hash."""
    if len(password) > PASSWORD_CHARS_MAX:
        return False
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str, hasher: PasswordHasher = _HASHER) -> bool:
    """True if the hash was made with other parameters than the current ones."""
    try:
        return hasher.check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        return True
