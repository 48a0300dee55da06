"""Shoppers: registration with protected personal data, links to shops, sessions, lookup.

Name, resident ID number and mobile are validated, then stored only encrypted (AES-GCM, the
key id beside them) and found by keyed hashes; what leaves this module is masked unless a
caller with the right role asks to reveal it (and that is audited by the caller).
"""

from __future__ import annotations

import hmac
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select

from fenqi.clock import Clock
from fenqi.credit.errors import CreditError, NotFound
from fenqi.privacy.crypto import KeyRing
from fenqi.privacy.identity import validate_id_number, validate_mobile
from fenqi.privacy.masking import mask_id_number, mask_name, mask_phone
from fenqi.privacy.tokens import hash_token, new_token
from fenqi.store.books import is_test_book
from fenqi.store.prepared import Prepared
from fenqi.store.schema.parties import customer_links, customers, sessions
from fenqi.store.times import iso
from fenqi.store.upsert import conflict_insert

INCOME_BANDS = ("none", "lt3k", "3k_6k", "6k_10k", "10k_20k", "gt20k")  # monthly, CNY
SESSION_HOURS = 12
NAME_CHARS_MAX = 64


@dataclass(frozen=True, slots=True)
class Identity:
    name: str
    id_number: str
    phone: str
    birth_date: date


def check_identity(name: str, id_number: str, phone: str, today: date) -> Identity:
    name = name.strip()
    if not 1 <= len(name) <= NAME_CHARS_MAX:
        raise CreditError(f"name: 1 to {NAME_CHARS_MAX} characters", code="invalid_name")
    rid = validate_id_number(id_number, today=today)
    return Identity(name, rid.normalized, validate_mobile(phone, field="phone"), rid.birth_date)


_BY_ID_NUMBER = Prepared(
    select(customers.c.id).where(customers.c.id_number_bidx == bindparam("k_bidx"))
)
_ON_FILE = Prepared(
    select(customers.c.key_id, customers.c.name_enc, customers.c.phone_bidx).where(
        customers.c.id == bindparam("k_id")
    )
)


class IdentityMismatch(CreditError):
    """An application gave an ID number on file with another name or phone: it must not reach
    the customer on file (that would hand their account to whoever knows the ID number)."""

    code = "identity_mismatch"
    http_status = 409


def _same_name(a: str, b: str) -> bool:
    def norm(x: str) -> bytes:
        return " ".join(unicodedata.normalize("NFKC", x).split()).casefold().encode()

    return hmac.compare_digest(norm(a), norm(b))


def check_same_person(conn: Connection, keys: KeyRing, customer_id: int, ident: Identity) -> None:
    """Refuse (409 identity_mismatch) unless name and phone match what is on file for this ID
    number. The phone is compared by its blind index, the name after decrypting it; neither
    value is logged nor put in the message."""
    row = _ON_FILE.run(conn, {"k_id": customer_id}).mapping()
    assert row is not None
    phone_ok = hmac.compare_digest(
        row["phone_bidx"], keys.blind_index(ident.phone, purpose="customers.phone")
    )
    name_on_file = keys.decrypt(row["key_id"], row["name_enc"], context="customers.name")
    if not (_same_name(name_on_file, ident.name) and phone_ok):
        raise IdentityMismatch(
            "this ID number is on file with another name or phone; the application cannot "
            "be attached to that customer (the shopper contacts support to update their "
            "details)"
        )


_CUSTOMER_COLUMNS = (
    "key_id",
    "name_enc",
    "id_number_enc",
    "phone_enc",
    "id_number_bidx",
    "phone_bidx",
    "income_band",
    "created_at",
)


@lru_cache(maxsize=4)
def _insert_customer(dialect_name: str) -> Prepared:
    """Insert the customer unless its ID number is known; the new id comes back (none when a
    concurrent registration won), so the row is not read back."""
    return Prepared(
        conflict_insert(dialect_name, customers)
        .values({c: bindparam(c) for c in _CUSTOMER_COLUMNS})
        .on_conflict_do_nothing(index_elements=["id_number_bidx"])
        .returning(customers.c.id)
    )


@lru_cache(maxsize=4)
def _link_customer(dialect_name: str) -> Prepared:
    return Prepared(
        conflict_insert(dialect_name, customer_links)
        .values({c: bindparam(c) for c in ("customer_id", "merchant_id", "created_at")})
        .on_conflict_do_nothing(index_elements=["customer_id", "merchant_id"])
    )


def register(
    conn: Connection,
    clock: Clock,
    keys: KeyRing,
    ident: Identity,
    income_band: str,
    merchant_id: str,
) -> tuple[int, bool]:
    """The customer's id (created if new) and whether it was created; links the shop.

    An ID number already on file is accepted only with the name and phone on file
    (`IdentityMismatch` otherwise), and nothing is linked or written then."""
    if income_band not in INCOME_BANDS:
        raise CreditError(
            f"income_band: one of {', '.join(INCOME_BANDS)}", code="invalid_income_band"
        )
    id_bidx = keys.blind_index(ident.id_number, purpose="customers.id_number")
    found = _BY_ID_NUMBER.run(conn, {"k_bidx": id_bidx}).scalar()
    created = found is None
    if created:
        key_id = keys.active_key_id
        seal = {
            col: keys.encrypt(value, context=f"customers.{col}")
            for col, value in (
                ("name", ident.name),
                ("id_number", ident.id_number),
                ("phone", ident.phone),
            )
        }
        assert all(s.key_id == key_id for s in seal.values())
        found = (
            _insert_customer(conn.dialect.name)
            .run(
                conn,
                {
                    "key_id": key_id,
                    "name_enc": seal["name"].ciphertext,
                    "id_number_enc": seal["id_number"].ciphertext,
                    "phone_enc": seal["phone"].ciphertext,
                    "id_number_bidx": id_bidx,
                    "phone_bidx": keys.blind_index(ident.phone, purpose="customers.phone"),
                    "income_band": income_band,
                    "created_at": clock.now(),
                },
            )
            .scalar()
        )
        created = found is not None
        if found is None:
            found = _BY_ID_NUMBER.run(conn, {"k_bidx": id_bidx}).scalar_one()
    assert found is not None
    if not created:  # only the person on file may reach the customer on file
        check_same_person(conn, keys, int(found), ident)
    _link_customer(conn.dialect.name).run(
        conn, {"customer_id": found, "merchant_id": merchant_id, "created_at": clock.now()}
    )
    return int(found), created


def is_linked(conn: Connection, customer_id: int, merchant_id: str) -> bool:
    return (
        conn.execute(
            select(customer_links.c.customer_id).where(
                customer_links.c.customer_id == customer_id,
                customer_links.c.merchant_id == merchant_id,
            )
        ).first()
        is not None
    )


def open_session(
    conn: Connection,
    clock: Clock,
    subject_kind: str,
    subject_id: str,
    merchant_id: str | None,
    hours: int = SESSION_HOURS,
) -> tuple[str, Any]:
    if subject_kind != "customer":
        token = new_token("ss")
    else:  # a test-mode session (opened by a test key) says so: its requests go to the test book
        token = new_token("st_test" if is_test_book(conn) else "st")
    expires = clock.now() + timedelta(hours=hours)
    conn.execute(
        insert(sessions).values(
            token_hash=hash_token(token),
            subject_kind=subject_kind,
            subject_id=subject_id,
            merchant_id=merchant_id,
            expires_at=expires,
            created_at=clock.now(),
        )
    )
    return token, expires


def _row(conn: Connection, customer_id: int) -> Any:
    row = conn.execute(select(customers).where(customers.c.id == customer_id)).mappings().first()
    if row is None:
        raise NotFound(f"customer {customer_id} not found")
    return row


def reveal(conn: Connection, keys: KeyRing, customer_id: int) -> dict[str, Any]:
    row = _row(conn, customer_id)
    return {
        col: keys.decrypt(row["key_id"], row[f"{col}_enc"], context=f"customers.{col}")
        for col in ("name", "id_number", "phone")
    }


def masked(conn: Connection, keys: KeyRing, customer_id: int) -> dict[str, Any]:
    row = _row(conn, customer_id)
    plain = reveal(conn, keys, customer_id)
    return {
        "id": customer_id,
        "name": mask_name(plain["name"]),
        "id_number": mask_id_number(plain["id_number"]),
        "phone": mask_phone(plain["phone"]),
        "income_band": row["income_band"],
        "created_at": iso(row["created_at"]),
    }


def find(
    conn: Connection, keys: KeyRing, *, phone: str | None = None, id_number: str | None = None
) -> list[int]:
    """Customers with this phone or ID number, by blind index (no plaintext search)."""
    if id_number:
        bidx = keys.blind_index(id_number.strip().upper(), purpose="customers.id_number")
        stmt = select(customers.c.id).where(customers.c.id_number_bidx == bidx)
    elif phone:
        bidx = keys.blind_index(validate_mobile(phone, field="phone"), purpose="customers.phone")
        stmt = select(customers.c.id).where(customers.c.phone_bidx == bidx)
    else:
        raise CreditError("give phone or id_number", code="search_needs_a_key")
    return [int(x) for x in conn.execute(stmt.order_by(customers.c.id).limit(50)).scalars()]
