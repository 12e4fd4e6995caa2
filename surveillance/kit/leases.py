"""A database lease per job, so one process runs it at a time (APScheduler 3 does not
coordinate processes). Works the same on SQLite and PostgreSQL: a row per job name
taken with a conditional UPDATE; the unique alert ids make an overlap harmless anyway."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import Engine, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel, col

from surveillance.kit.db import write_session
from surveillance.kit.sqltypes import utc_column


class JobLease(SQLModel, table=True):
    """One process runs a job at a time: a lease row with an expiry (works on both stores)."""

    __tablename__ = "job_leases"

    name: str = Field(primary_key=True, max_length=80)
    holder: str = Field(max_length=120)
    expires_at: datetime = Field(sa_column=utc_column())
    last_completed_at: datetime | None = Field(default=None, sa_column=utc_column(True))


HOLDER = f"{socket.gethostname()}:{os.getpid()}"


def try_acquire(
    engine: Engine, name: str, *, now: datetime, ttl: timedelta, holder: str = HOLDER
) -> bool:
    """Take the lease ``name`` if it is free, expired or already ours."""
    with write_session(engine) as session:
        taken = session.execute(
            update(JobLease)
            .where(
                col(JobLease.name) == name,
                or_(col(JobLease.expires_at) < now, col(JobLease.holder) == holder),
            )
            .values(holder=holder, expires_at=now + ttl)
        ).rowcount  # type: ignore[attr-defined]
        if taken:
            return True
        if session.get(JobLease, name) is not None:
            return False
    try:
        with write_session(engine) as session:
            session.add(JobLease(name=name, holder=holder, expires_at=now + ttl))
        return True
    except IntegrityError:  # another process created it first
        return False


def release(
    engine: Engine, name: str, *, now: datetime, completed: bool, holder: str = HOLDER
) -> None:
    values: dict[str, object] = {"expires_at": now}
    if completed:
        values["last_completed_at"] = now
    with write_session(engine) as session:
        session.execute(
            update(JobLease)
            .where(col(JobLease.name) == name, col(JobLease.holder) == holder)
            .values(**values)
        )


def last_completed(engine: Engine, name: str) -> datetime | None:
    with write_session(engine) as session:
        lease = session.get(JobLease, name)
        return lease.last_completed_at if lease else None


@contextmanager
def leased(engine: Engine, name: str, *, now: datetime, ttl: timedelta) -> Iterator[bool]:
    """``with leased(...) as mine: if mine: ...`` - the lease is released afterwards."""
    mine = try_acquire(engine, name, now=now, ttl=ttl)
    completed = False
    try:
        yield mine
        completed = mine
    finally:
        if mine:
            release(engine, name, now=now, completed=completed)
