"""PostgreSQL pooled connections are checked on checkout only after they rested
(``kit.db.PING_AFTER_REST_SECONDS``): a busy server's pages skip the round trip, a
connection whose server side ended is still never handed out after a rest."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from pg_cluster import PostgresCluster
from sqlalchemy import Engine, create_engine, exc, text
from sqlalchemy.pool import NullPool

from surveillance.kit import db
from surveillance.kit.db import make_engine, read_session

pytestmark = pytest.mark.postgres

_names = itertools.count()


@pytest.fixture
def pooled(pg: PostgresCluster) -> Iterator[Engine]:
    """An engine with one pooled connection, so every read reuses it."""
    engine = make_engine(pg.create_database(f"pool_checks_{next(_names)}"), pool_size=1)
    yield engine
    engine.dispose()


@pytest.fixture
def pings(pooled: Engine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Each check the pool makes (the dialect's ping), counted."""
    made: list[int] = []
    ping = pooled.dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        made.append(1)
        return ping(dbapi_connection)

    monkeypatch.setattr(pooled.dialect, "do_ping", counted)
    return made


def _backend(engine: Engine) -> int:
    with read_session(engine) as session:
        return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _end_server_side(pg: PostgresCluster, pid: int) -> None:
    admin = create_engine(pg.url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as connection:
        ended = connection.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        assert ended.scalar_one() is True
    admin.dispose()


def test_a_connection_used_a_moment_ago_is_not_checked(pooled: Engine, pings: list[int]) -> None:
    first = _backend(pooled)  # a new connection: nothing to check
    assert [_backend(pooled) for _ in range(5)] == [first] * 5
    assert pings == []


def test_a_rested_connection_is_checked(
    pooled: Engine, pings: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _backend(pooled)
    monkeypatch.setattr(db, "PING_AFTER_REST_SECONDS", 0.0)
    assert _backend(pooled) == first
    assert pings == [1]


def test_a_rested_connection_whose_server_side_ended_is_replaced(
    pg: PostgresCluster, pooled: Engine, pings: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server restart (here: the backend ended) is found by the check; the read that
    follows runs on a new connection, without an error."""
    first = _backend(pooled)
    _end_server_side(pg, first)
    monkeypatch.setattr(db, "PING_AFTER_REST_SECONDS", 0.0)
    second = _backend(pooled)
    assert second != first
    assert pings  # the failed check (and, with no rest asked for, the new connection's)


def test_reused_at_once_after_the_server_side_ended_one_read_fails_then_the_pool_recovers(
    pg: PostgresCluster, pooled: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trade of not checking a connection used a moment before: the read of that
    moment fails (as it would have mid-restart), and invalidates the pool; the next read
    runs on a new connection."""
    monkeypatch.setattr(db, "PING_AFTER_REST_SECONDS", 3600.0)
    first = _backend(pooled)
    _end_server_side(pg, first)
    with pytest.raises(exc.OperationalError) as failed:
        _backend(pooled)
    assert failed.value.connection_invalidated
    assert _backend(pooled) != first


def test_a_check_that_fails_for_another_reason_is_not_taken_for_a_lost_server(
    pooled: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a lost connection invalidates the pool, silently (as SQLAlchemy's pre-ping
    does); any other error of the check reaches the caller, and the next read works."""
    _backend(pooled)
    monkeypatch.setattr(db, "PING_AFTER_REST_SECONDS", 0.0)

    def refused(dbapi_connection: Any) -> bool:
        raise psycopg.errors.InsufficientPrivilege("permission denied")

    monkeypatch.setattr(pooled.dialect, "do_ping", refused)
    with pytest.raises(exc.ProgrammingError, match="permission denied"):
        _backend(pooled)
    monkeypatch.undo()
    assert _backend(pooled) > 0
