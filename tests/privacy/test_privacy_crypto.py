"""Field encryption, blind index, key configuration, keys file, rotation with reencrypt_rows."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import BigInteger, Column, Engine, Integer, MetaData, String, Table, Text, select

from fenqi.privacy.crypto import KeyRing, Sealed, load_or_create_keys_file, reencrypt_rows
from fenqi.privacy.errors import PrivacyError
from fenqi.settings import Settings

RING = KeyRing.generate("k1")


@settings(max_examples=50)
@given(st.text(max_size=200))
def test_roundtrip_any_text(value: str) -> None:
    sealed = RING.encrypt(value, context="customers.name")
    assert sealed.key_id == "k1"
    assert RING.decrypt(sealed.key_id, sealed.ciphertext, context="customers.name") == value


def test_ciphertext_is_random_and_hides_the_value() -> None:
    a = RING.encrypt("13812341234", context="customers.phone")
    b = RING.encrypt("13812341234", context="customers.phone")
    assert a.ciphertext != b.ciphertext  # fresh nonce every time
    raw = base64.b64decode(a.ciphertext)
    assert len(raw) == 12 + len("13812341234") + 16  # nonce + ct + tag
    assert b"13812341234" not in raw and "1381234" not in a.ciphertext


def test_context_is_bound() -> None:
    sealed = RING.encrypt("13812341234", context="customers.phone")
    with pytest.raises(PrivacyError) as info:
        RING.decrypt(sealed.key_id, sealed.ciphertext, context="customers.id_number")
    assert info.value.code == "decrypt_failed"


def test_tampering_fails() -> None:
    sealed = RING.encrypt("张三", context="customers.name")
    raw = bytearray(base64.b64decode(sealed.ciphertext))
    for index in (0, 12, len(raw) - 1):  # nonce, ciphertext, tag
        changed = bytearray(raw)
        changed[index] ^= 0x01
        with pytest.raises(PrivacyError) as info:
            RING.decrypt("k1", base64.b64encode(bytes(changed)).decode(), context="customers.name")
        assert info.value.code == "decrypt_failed"
    for junk in ("", "not base64!", base64.b64encode(b"short").decode()):
        with pytest.raises(PrivacyError, match="malformed"):
            RING.decrypt("k1", junk, context="customers.name")


def test_wrong_or_unknown_key_fails() -> None:
    other = KeyRing({"k1": os.urandom(32)}, "k1", os.urandom(32))
    sealed = RING.encrypt("x", context="c")
    with pytest.raises(PrivacyError) as info:
        other.decrypt("k1", sealed.ciphertext, context="c")
    assert info.value.code == "decrypt_failed"
    with pytest.raises(PrivacyError, match="not configured") as info:
        RING.decrypt("k9", sealed.ciphertext, context="c")
    assert info.value.code == "decrypt_failed"


def test_blind_index_stable_keyed_and_purpose_separated() -> None:
    phone = "13812341234"
    first = RING.blind_index(phone, purpose="customers.phone")
    assert first == RING.blind_index(phone, purpose="customers.phone")
    assert len(first) == 64 and int(first, 16) >= 0
    assert first != RING.blind_index(phone, purpose="customers.id_number")
    assert first != RING.blind_index("13812341235", purpose="customers.phone")
    other = KeyRing(dict(RING.keys), "k1", os.urandom(32))
    assert first != other.blind_index(phone, purpose="customers.phone")
    # A rotated data key does not change the index: lookups survive rotation.
    assert RING.with_new_active_key("k2").blind_index(phone, purpose="customers.phone") == first


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def test_from_settings_parses_keys() -> None:
    k1, k2, blind = os.urandom(32), os.urandom(32), os.urandom(32)
    ring = KeyRing.from_settings(
        Settings(
            data_keys=f"k1:{_b64(k1)}, k2:{_b64(k2)}",
            data_key_active="k2",
            blind_index_key=_b64(blind),
        )
    )
    assert ring.active_key_id == "k2" and ring.keys == {"k1": k1, "k2": k2}
    assert ring.blind_key == blind
    single = KeyRing.from_settings(Settings(data_keys=f"a:{_b64(k1)}", blind_index_key=_b64(blind)))
    assert single.active_key_id == "a"


@pytest.mark.parametrize(
    ("data_keys", "active", "blind", "match"),
    [
        ("k1:{k}", None, None, "blind_index_key must be set"),
        ("k1:{k},k2:{k2}", None, "{b}", "data_key_active must name"),
        ("k1:{k}", "k3", "{b}", "not among the keys"),
        ("k1:{short}", None, "{b}", "32 bytes"),
        ("k1:!!!", None, "{b}", "not valid base64"),
        ("k1", None, "{b}", "kid:base64key"),
        ("k1:{k},k1:{k2}", "k1", "{b}", "twice"),
        ("k1:{k}", None, "{short}", "blind-index key"),
        ("k1:{k}", None, "{k}", "must differ"),
        ("bad id:{k}", None, "{b}", "key id"),
    ],
)
def test_from_settings_refuses_bad_config(
    data_keys: str, active: str | None, blind: str | None, match: str
) -> None:
    values = {
        "k": _b64(os.urandom(32)),
        "k2": _b64(os.urandom(32)),
        "b": _b64(os.urandom(32)),
        "short": _b64(os.urandom(16)),
    }
    with pytest.raises(PrivacyError, match=match) as info:
        KeyRing.from_settings(
            Settings(
                data_keys=data_keys.format(**values),
                data_key_active=active,
                blind_index_key=None if blind is None else blind.format(**values),
            )
        )
    assert info.value.code == "bad_key_config"


def test_keys_file_created_0600_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "keys.json"
    first = KeyRing.from_settings(Settings(keys_file=path))
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["keys.json"]  # no temp left
    stored = json.loads(path.read_text())
    assert stored["active"] == first.active_key_id
    second = KeyRing.from_settings(Settings(keys_file=path))
    assert second.keys == first.keys and second.blind_key == first.blind_key
    sealed = first.encrypt("13812341234", context="customers.phone")
    assert second.decrypt_sealed(sealed, context="customers.phone") == "13812341234"


def test_keys_file_group_readable_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    load_or_create_keys_file(path)
    path.chmod(0o644)
    with pytest.raises(PrivacyError, match="chmod 600"):
        load_or_create_keys_file(path)


def test_keys_file_corrupt_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text("{not json")
    path.chmod(0o600)
    with pytest.raises(PrivacyError, match="unreadable"):
        load_or_create_keys_file(path)


def test_rotation_new_writes_use_new_key_old_values_still_decrypt() -> None:
    old = RING.encrypt("张三", context="customers.name")
    rotated = RING.with_new_active_key("k2")
    new = rotated.encrypt("李四", context="customers.name")
    assert new.key_id == "k2"
    assert rotated.decrypt_sealed(old, context="customers.name") == "张三"
    assert rotated.decrypt_sealed(new, context="customers.name") == "李四"
    with pytest.raises(PrivacyError):
        RING.decrypt_sealed(new, context="customers.name")  # the old ring lacks k2


test_metadata = MetaData()
people = Table(
    "privacy_test_people",
    test_metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("key_id", String(32), nullable=True),
    Column("name_ct", Text, nullable=True),
    Column("phone_ct", Text, nullable=True),
    Column("phone_bidx", String(64), nullable=True),
)
COLUMNS = {"name_ct": "people.name", "phone_ct": "people.phone"}


@pytest.mark.parametrize("in_transaction", [True, False])
def test_reencrypt_rows_on_both_databases(db_engine: Engine, in_transaction: bool) -> None:
    test_metadata.create_all(db_engine)
    ring1 = KeyRing.generate("k1")
    people_rows = [(f"name{i}", f"1381234{i:04d}") for i in range(25)]
    with db_engine.begin() as conn:
        for i, (name, phone) in enumerate(people_rows, start=1):
            if i == 25:  # a row with nothing encrypted
                conn.execute(people.insert().values(id=i, key_id=None))
                continue
            conn.execute(
                people.insert().values(
                    id=i,
                    key_id="k1",
                    name_ct=ring1.encrypt(name, context="people.name").ciphertext,
                    phone_ct=(
                        None if i == 3 else ring1.encrypt(phone, context="people.phone").ciphertext
                    ),
                    phone_bidx=ring1.blind_index(phone, purpose="people.phone"),
                )
            )
    ring2 = ring1.with_new_active_key("k2")
    with db_engine.begin() as conn:  # one row already rewritten under k2 by new code
        name, phone = people_rows[4]
        conn.execute(
            people.update()
            .where(people.c.id == 5)
            .values(
                key_id="k2",
                name_ct=ring2.encrypt(name, context="people.name").ciphertext,
                phone_ct=ring2.encrypt(phone, context="people.phone").ciphertext,
            )
        )
    if in_transaction:
        with db_engine.begin() as conn:
            count = reencrypt_rows(conn, ring2, people, "id", "key_id", COLUMNS, batch_size=7)
    else:
        with db_engine.connect() as conn:
            count = reencrypt_rows(conn, ring2, people, "id", "key_id", COLUMNS, batch_size=7)
    assert count == 23  # 24 encrypted rows, one already under k2
    with db_engine.connect() as conn:
        rows = conn.execute(select(people).order_by(people.c.id)).all()
        again = reencrypt_rows(conn, ring2, people, "id", "key_id", COLUMNS)
    assert again == 0
    only_new = KeyRing({"k2": ring2.keys["k2"]}, "k2", ring2.blind_key)  # k1 can be retired
    for row in rows:
        name, phone = people_rows[row.id - 1]
        if row.id == 25:
            assert row.key_id is None and row.name_ct is None
            continue
        assert row.key_id == "k2"
        assert only_new.decrypt("k2", row.name_ct, context="people.name") == name
        if row.id == 3:
            assert row.phone_ct is None
        else:
            assert only_new.decrypt("k2", row.phone_ct, context="people.phone") == phone
        assert row.phone_bidx == ring2.blind_index(phone, purpose="people.phone")


def test_reencrypt_rows_refuses_unknown_key(db_engine: Engine) -> None:
    test_metadata.create_all(db_engine)
    with db_engine.begin() as conn:
        conn.execute(people.insert().values(id=1, key_id="gone", name_ct="AAAA", phone_ct=None))
    with db_engine.begin() as conn, pytest.raises(PrivacyError) as info:
        reencrypt_rows(conn, RING, people, "id", "key_id", COLUMNS)
    assert info.value.code == "decrypt_failed"


def test_sealed_is_a_value() -> None:
    assert Sealed("k1", "abc") == Sealed("k1", "abc")
