"""A simulation's checkpoint: the run's options and what the simulator remembers, as bytes.

A long simulation (a million shoppers over a year takes hours) must survive a kill, a reboot
or a stop by hand. The simulator commits each simulated day's service calls in one
transaction and writes its checkpoint in that same transaction, so the database and the
checkpoint always agree: `fenqi simulate --resume` reads it and goes on with the next day.

What is stored is what cannot be read back from the platform's tables: who holds which
account, the refunds and late payments already drawn for later days, the worst days past due
seen, and the counters. The rest (the shoppers' features at application, the due dates still
ahead) is rebuilt from the seed and the plan lines. Arrays go in numpy's .npz format, loaded
without pickles, so a checkpoint is data, never code.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, delete, insert, select

from fenqi.store.schema.simulation import simulation_checkpoints as table

NAME = "simulation"  # one checkpoint per database: the simulation it holds


class NothingToResume(ValueError):
    """The database holds no simulation to go on with."""


@dataclass(frozen=True)
class Checkpoint:
    day: int  # the last simulated day whose calls are committed (0 = the first)
    config: dict[str, Any]  # the run's options (`SimConfig.to_json`)
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]  # counters, time spent, the models directory the run used


def encode(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, meta=np.array(json.dumps(meta)), **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def decode(blob: bytes) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files if name != "meta"}
        meta = json.loads(str(npz["meta"]))
    return arrays, meta


def save(
    conn: Connection,
    day: int,
    config: dict[str, Any],
    arrays: dict[str, np.ndarray],
    meta: dict[str, Any],
    saved_at: datetime,
) -> None:
    """Replace the database's checkpoint, in the caller's transaction."""
    conn.execute(delete(table).where(table.c.name == NAME))
    conn.execute(
        insert(table).values(
            name=NAME,
            day=day,
            config=config,
            state=encode(arrays, meta),
            saved_at=saved_at,
        )
    )


def load(conn: Connection) -> Checkpoint:
    row = conn.execute(
        select(table.c.day, table.c.config, table.c.state).where(table.c.name == NAME)
    ).first()
    if row is None:
        raise NothingToResume(
            "this database holds no simulation checkpoint: start one with `fenqi simulate`"
        )
    arrays, meta = decode(bytes(row.state))
    return Checkpoint(int(row.day), dict(row.config), arrays, meta)
