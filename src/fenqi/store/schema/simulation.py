"""The simulator's checkpoint: where a simulated marketplace stopped, so that it can go on.

One row per database: the run's options, the last simulated day whose service calls are
committed, and what the simulator remembers (who has which account, what is planned). It is
written in the same transaction as that day's calls, so it never disagrees with the ledger.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, Integer, LargeBinary, String, Table

from fenqi.store.schema import metadata

simulation_checkpoints = Table(
    "simulation_checkpoints",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("day", Integer, nullable=False),  # the last simulated day done (0 = the first)
    Column("config", JSON, nullable=False),
    Column("state", LargeBinary, nullable=False),  # numpy arrays in an .npz, no pickles
    Column("saved_at", DateTime(timezone=True), nullable=False),
)
