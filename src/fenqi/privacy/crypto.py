"""Field encryption (AES-256-GCM) with key ids for rotation, and keyed blind indexes.

Each encrypted value is stored beside the id of the key that sealed it. The ciphertext is
base64(nonce ‖ ciphertext ‖ tag) with a random 96-bit nonce; the `context` (e.g.
"customers.phone") is authenticated as associated data, so a value copied into another column
fails to decrypt. Equality lookups use a blind index: HMAC-SHA256 under a separate key, with a
per-purpose subkey, so the same phone gives unrelated digests for two purposes and the database
never holds a plain hash that could be reversed by trying every number.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fenqi.privacy.errors import PrivacyError

if TYPE_CHECKING:
    from sqlalchemy import Column, Connection, Table

    from fenqi.settings import Settings

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # 96 bits, the GCM standard nonce (NIST SP 800-38D)
TAG_BYTES = 16
BLIND_KEY_BYTES_MIN = 32
KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,32}")
PLAINTEXT_BYTES_MAX = 64 * 1024  # personal-data fields are short; a huge value is a bug
KEYS_FILE_VERSION = 1
REENCRYPT_BATCH_MAX = 10_000


@dataclass(frozen=True)
class Sealed:
    key_id: str
    ciphertext: str  # base64 of nonce ‖ ciphertext ‖ tag


def _b64decode(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise PrivacyError(f"{what}: not valid base64", code="bad_key_config") from None


def _check_key_id(key_id: str) -> None:
    if not KEY_ID_PATTERN.fullmatch(key_id):
        raise PrivacyError(
            f"key id {key_id!r}: 1-32 characters of letters, digits, '_', '.', '-'",
            code="bad_key_config",
        )


@dataclass(frozen=True)
class KeyRing:
    """Data keys by id (every one decrypts; the active one encrypts) and the blind-index key."""

    keys: Mapping[str, bytes] = field(repr=False)
    active_key_id: str
    blind_key: bytes = field(repr=False)
    _aeads: Mapping[str, AESGCM] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.keys:
            raise PrivacyError("no data keys configured", code="bad_key_config")
        for key_id, key in self.keys.items():
            _check_key_id(key_id)
            if len(key) != KEY_BYTES:
                raise PrivacyError(
                    f"data key {key_id!r}: must be {KEY_BYTES} bytes (AES-256), got {len(key)}",
                    code="bad_key_config",
                )
        if self.active_key_id not in self.keys:
            raise PrivacyError(
                f"active data key {self.active_key_id!r} is not among the keys "
                f"({', '.join(sorted(self.keys))})",
                code="bad_key_config",
            )
        if len(self.blind_key) < BLIND_KEY_BYTES_MIN:
            raise PrivacyError(
                f"blind-index key: at least {BLIND_KEY_BYTES_MIN} bytes, got {len(self.blind_key)}",
                code="bad_key_config",
            )
        if any(hmac.compare_digest(self.blind_key, key) for key in self.keys.values()):
            raise PrivacyError(
                "blind-index key must differ from every data key", code="bad_key_config"
            )
        object.__setattr__(self, "keys", MappingProxyType(dict(self.keys)))
        aeads = {key_id: AESGCM(key) for key_id, key in self.keys.items()}
        object.__setattr__(self, "_aeads", MappingProxyType(aeads))

    # --- encryption ---------------------------------------------------------------------

    def encrypt(self, plaintext: str, *, context: str) -> Sealed:
        """Seal a value under the active key, bound to `context` (table.column)."""
        data = plaintext.encode("utf-8")
        if len(data) > PLAINTEXT_BYTES_MAX:
            raise PrivacyError(
                f"{context}: value over {PLAINTEXT_BYTES_MAX} bytes", code="value_too_long"
            )
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aeads[self.active_key_id].encrypt(nonce, data, _aad(context))
        return Sealed(self.active_key_id, base64.b64encode(nonce + sealed).decode("ascii"))

    def decrypt(self, key_id: str, ciphertext: str, *, context: str) -> str:
        """Open a value; a wrong key, context or a changed byte raises PrivacyError."""
        aead = self._aeads.get(key_id)
        if aead is None:
            raise PrivacyError(
                f"{context}: cannot decrypt, key id {key_id!r} is not configured",
                code="decrypt_failed",
                key_id=key_id,
            )
        try:
            raw = base64.b64decode(ciphertext, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) < NONCE_BYTES + TAG_BYTES:
            raise PrivacyError(
                f"{context}: ciphertext is malformed", code="decrypt_failed", key_id=key_id
            )
        try:
            data = aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _aad(context))
        except InvalidTag:
            raise PrivacyError(
                f"{context}: decryption failed under key {key_id!r} "
                "(wrong key, wrong context, or the ciphertext was altered)",
                code="decrypt_failed",
                key_id=key_id,
            ) from None
        return data.decode("utf-8")

    def decrypt_sealed(self, sealed: Sealed, *, context: str) -> str:
        return self.decrypt(sealed.key_id, sealed.ciphertext, context=context)

    # --- blind index ----------------------------------------------------------------------

    def blind_index(self, value: str, *, purpose: str) -> str:
        """HMAC-SHA256 hex of `value` under a subkey derived for `purpose` (e.g.
        "customers.phone"). Normalize the value first (validate_mobile, validate_id_number):
        the index matches exact strings only."""
        if not purpose:
            raise ValueError("blind_index needs a purpose")
        subkey = hmac.new(
            self.blind_key, b"fenqi-blind-index-v1\x00" + purpose.encode("utf-8"), hashlib.sha256
        ).digest()
        return hmac.new(subkey, value.encode("utf-8"), hashlib.sha256).hexdigest()

    # --- construction ---------------------------------------------------------------------

    @classmethod
    def generate(cls, key_id: str = "k1") -> KeyRing:
        return cls({key_id: secrets.token_bytes(KEY_BYTES)}, key_id, secrets.token_bytes(32))

    def with_new_active_key(self, key_id: str, key: bytes | None = None) -> KeyRing:
        """A ring with one more key, made active (rotation); old keys still decrypt."""
        if key_id in self.keys:
            raise PrivacyError(f"key id {key_id!r} already exists", code="bad_key_config")
        keys = {**self.keys, key_id: key if key is not None else secrets.token_bytes(KEY_BYTES)}
        return KeyRing(keys, key_id, self.blind_key)

    @classmethod
    def parse(cls, data_keys: str, active_key_id: str | None, blind_index_key: str) -> KeyRing:
        """From "kid:base64key,kid:base64key", the active id (optional with one key) and the
        base64 blind-index key, the format of FENQI_DATA_KEYS and friends."""
        keys: dict[str, bytes] = {}
        for item in data_keys.split(","):
            item = item.strip()
            if not item:
                continue
            key_id, sep, encoded = item.partition(":")
            key_id = key_id.strip()
            if not sep:
                raise PrivacyError(
                    "data_keys: each item must be kid:base64key", code="bad_key_config"
                )
            _check_key_id(key_id)
            if key_id in keys:
                raise PrivacyError(f"data_keys: key id {key_id!r} twice", code="bad_key_config")
            keys[key_id] = _b64decode(encoded, f"data key {key_id!r}")
        if active_key_id is None:
            if len(keys) != 1:
                raise PrivacyError(
                    "data_key_active must name the active key when data_keys lists several",
                    code="bad_key_config",
                )
            active_key_id = next(iter(keys))
        return cls(keys, active_key_id, _b64decode(blind_index_key, "blind_index_key"))

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        """Keys from settings (FENQI_DATA_KEYS, FENQI_DATA_KEY_ACTIVE, FENQI_BLIND_INDEX_KEY);
        when data_keys is unset (demo, development), from keys_file, generated on first use."""
        if settings.data_keys:
            if not settings.blind_index_key:
                # Never invent one: a new blind key silently breaks every lookup of stored rows.
                raise PrivacyError(
                    "blind_index_key must be set when data_keys is set", code="bad_key_config"
                )
            return cls.parse(settings.data_keys, settings.data_key_active, settings.blind_index_key)
        ring = load_or_create_keys_file(Path(settings.keys_file))
        if settings.data_key_active:
            ring = KeyRing(ring.keys, settings.data_key_active, ring.blind_key)
        if settings.blind_index_key:
            ring = KeyRing(
                ring.keys, ring.active_key_id, _b64decode(settings.blind_index_key, "blind key")
            )
        return ring

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": KEYS_FILE_VERSION,
                "active": self.active_key_id,
                "keys": {k: base64.b64encode(v).decode("ascii") for k, v in self.keys.items()},
                "blind_index_key": base64.b64encode(self.blind_key).decode("ascii"),
            },
            indent=2,
        )


def _aad(context: str) -> bytes:
    if not context:
        raise ValueError("encryption needs a context (e.g. 'customers.phone')")
    return b"fenqi-field-v1\x00" + context.encode("utf-8")


def _ring_from_json(text: str, path: Path) -> KeyRing:
    try:
        data: Any = json.loads(text)
        if data.get("version") != KEYS_FILE_VERSION:
            raise ValueError(f"version {data.get('version')!r}")
        keys = {str(k): _b64decode(str(v), f"key {k!r}") for k, v in data["keys"].items()}
        return KeyRing(keys, str(data["active"]), _b64decode(data["blind_index_key"], "blind"))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PrivacyError(f"keys file {path}: unreadable ({exc})", code="bad_key_config") from None


def load_or_create_keys_file(path: Path) -> KeyRing:
    """Read the keys file, or create it once (mode 0600, parent directory created).

    Creation is atomic: the keys are written to a private temporary file that is then hard-
    linked into place, which fails if another process got there first; the loser reads the
    winner's file, so concurrent first runs agree on one set of keys.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        ring = KeyRing.generate()
        fd, tmp_name = tempfile.mkstemp(prefix=".keys-", dir=path.parent)  # created 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(ring.to_json())
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp_name, 0o600)
            with contextlib.suppress(FileExistsError):  # another process won: use its keys
                os.link(tmp_name, path)
        finally:
            os.unlink(tmp_name)
    if os.name == "posix" and path.stat().st_mode & 0o077:
        raise PrivacyError(
            f"keys file {path}: readable by group or others; run `chmod 600 {path}`",
            code="bad_key_config",
        )
    return _ring_from_json(path.read_text(encoding="utf-8"), path)


def reencrypt_rows(
    conn: Connection,
    keyring: KeyRing,
    table: Table,
    id_column: str,
    key_id_column: str,
    columns: Mapping[str, str],
    batch_size: int = 1000,
) -> int:
    """Re-seal, under the active key, every row whose key id is another key; return how many.

    `columns` maps each encrypted column name to its encryption context; all of them share the
    row's key-id column. Rows with a NULL key id hold nothing encrypted and are left alone.
    Each row is updated only if its key id is still the one read (a concurrent writer wins).
    Inside a transaction (engine.begin()) everything is one transaction; on a connection with
    no transaction open (engine.connect()) each batch commits on its own, so a long run can be
    stopped and restarted: old and new rows both decrypt while it runs.
    """
    from sqlalchemy import and_, bindparam, select, update

    if not 1 <= batch_size <= REENCRYPT_BATCH_MAX:
        raise ValueError(f"batch_size must be 1..{REENCRYPT_BATCH_MAX}")
    row_id: Column[Any] = table.c[id_column]
    key_col: Column[Any] = table.c[key_id_column]
    value_cols = [table.c[name] for name in columns]
    commit_each_batch = not conn.in_transaction()
    active = keyring.active_key_id
    stmt = (
        update(table)
        .where(and_(row_id == bindparam("_row_id"), key_col == bindparam("_old_key_id")))
        .values({key_id_column: bindparam("_new_key_id")})
        .values({name: bindparam(f"_v_{name}") for name in columns})
    )
    done = 0
    last_id: Any = None
    while True:
        query = select(row_id, key_col, *value_cols).where(key_col != active)
        if last_id is not None:
            query = query.where(row_id > last_id)
        rows = conn.execute(query.order_by(row_id).limit(batch_size)).all()
        if not rows:
            break
        params = []
        for row in rows:
            values = row._mapping
            old_key_id = values[key_id_column]
            param: dict[str, Any] = {
                "_row_id": values[id_column],
                "_old_key_id": old_key_id,
                "_new_key_id": active,
            }
            for name, context in columns.items():
                old = values[name]
                param[f"_v_{name}"] = (
                    None
                    if old is None
                    else keyring.encrypt(
                        keyring.decrypt(old_key_id, old, context=context), context=context
                    ).ciphertext
                )
            params.append(param)
        result = conn.execute(stmt, params)
        done += result.rowcount if result.rowcount >= 0 else len(params)
        last_id = rows[-1]._mapping[id_column]
        if commit_each_batch:
            conn.commit()
    return done
