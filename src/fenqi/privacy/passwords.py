"""Password hashing with argon2id (argon2-cffi's RFC 9106 low-memory profile by default).

Hashes carry their parameters, so raising the cost later only needs `needs_rehash` at the next
successful login.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from fenqi.errors import FenqiError

_HASHER = PasswordHasher()  # argon2id; time_cost 3, memory 64 MiB, parallelism 4
PASSWORD_CHARS_MAX = 1024  # hashing cost must not be steerable by a huge input

# Each argon2 hash takes 64 MiB and a core for a while: at most this many run at once in one
# process, the others wait (up to HASH_WAIT_SECONDS, then "busy"). A bound on memory and CPU
# (160 concurrent wrong passwords once took the workers from 0.4 to 5.4 GiB), not a lock
# guarding data: correctness never depends on it.
HASH_CONCURRENCY = 2
HASH_WAIT_SECONDS = 10.0
_SLOTS = threading.BoundedSemaphore(HASH_CONCURRENCY)
_HELD = threading.local()  # a thread holding a slot does not take a second one


class HashingBusy(FenqiError):
    code = "login_busy"
    http_status = 503


@contextmanager
def hashing_slot(timeout: float = HASH_WAIT_SECONDS) -> Iterator[None]:
    """Hold one of the process's HASH_CONCURRENCY hashing slots (HashingBusy after timeout)."""
    if getattr(_HELD, "depth", 0):
        _HELD.depth += 1
        try:
            yield
        finally:
            _HELD.depth -= 1
        return
    if not _SLOTS.acquire(timeout=timeout):
        raise HashingBusy("too many sign-ins at once; retry in a few seconds")
    _HELD.depth = 1
    try:
        yield
    finally:
        _HELD.depth = 0
        _SLOTS.release()


def hash_password(password: str, hasher: PasswordHasher = _HASHER) -> str:
    if len(password) > PASSWORD_CHARS_MAX:
        raise ValueError(f"password: at most {PASSWORD_CHARS_MAX} characters")
    with hashing_slot():
        return hasher.hash(password)


def verify_password(password_hash: str, password: str, hasher: PasswordHasher = _HASHER) -> bool:
    """True if the password matches; False on mismatch or an unreadable hash."""
    if len(password) > PASSWORD_CHARS_MAX:
        return False
    with hashing_slot():
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
