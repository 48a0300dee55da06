"""Small helpers for reading rows back the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime


def as_utc(value: datetime) -> datetime:
    """SQLite returns naive datetimes for timezone-aware columns; fenqi stores UTC only."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def to_utc(value: datetime) -> datetime:
    """An aware instant in UTC, for binding: a naive value is a bug (which zone was it?)."""
    assert value.tzinfo is not None, "instants must be timezone-aware"
    return value.astimezone(UTC)
