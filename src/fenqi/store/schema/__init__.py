"""All tables share one MetaData; each area declares its tables in its own module here.

Hot rows are keyed by account id so the schema can be distributed by that key later.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, MetaData

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

# BIGINT on PostgreSQL; INTEGER on SQLite, where only "INTEGER PRIMARY KEY" autoincrements.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def load_all() -> MetaData:
    """Import every area's table module so metadata knows all tables."""
    from fenqi.store.schema import (  # noqa: F401
        batch,
        books,
        bureau,
        compliance,
        credit,
        funding,
        ledger,
        parties,
        privacy,
        risk,
        simulation,
        webhooks,
    )

    return metadata
