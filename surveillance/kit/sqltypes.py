"""Column types and helpers every table shares: UTC timestamps, stable constraint names."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Column, DateTime, Dialect, MetaData, Table
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel

# Stable constraint names, so migrations name the same things on SQLite and PostgreSQL.
SQLModel.metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)


# The largest value of an Integer column on PostgreSQL (and what SQLite's driver accepts
# safely): ids, versions and sequences from outside are checked against it first.
MAX_INTEGER = 2**31 - 1


class UtcDateTime(TypeDecorator[datetime]):
    """A moment stored in UTC. SQLite keeps no offset: an aware time in another zone
    (a site's clock) would be stored as its wall time and compare wrongly with UTC ones
    (a 07:00 Rome digest waited until 07:00 UTC to be sent)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if isinstance(value, datetime) and value.tzinfo is not None:
            return value.astimezone(UTC)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        # SQLite hands the stored UTC moment back without its zone: give it back, so every
        # reader gets an aware time on both databases (no per-caller "assume UTC").
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def utc_column(nullable: bool = False) -> Column[datetime]:
    """A timestamp column stored in UTC (every table's ``*_at``)."""
    return Column(UtcDateTime(), nullable=nullable)


def table_of(model: type[SQLModel]) -> Table:
    """A table model's ``Table`` (SQLModel does not declare ``__table__`` for type checkers)."""
    return cast(Table, model.__table__)  # type: ignore[attr-defined]
