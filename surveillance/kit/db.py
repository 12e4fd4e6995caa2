"""Engines and transactions for SQLite (embedded default) and PostgreSQL.

SQLite: WAL so readers never wait for the writer, a busy timeout, and ``BEGIN
IMMEDIATE`` for write transactions: a deferred ``BEGIN`` that reads and then writes
fails with "database is locked" under concurrent writers, whatever the timeout.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import make_url
from sqlmodel import Session

from surveillance.kit.private_files import create_private_file

SQLITE_BUSY_TIMEOUT_MS = 30_000

# PostgreSQL, set once on each new connection (it stays in the pool with it). The app's
# statements are pages read from an index and cut by a limit, and the scan's set-based
# statements each touch a site's few rows, which the planner overestimates ("pending,
# window closed before D" taken as independent: at 10^5 patients a hundred times the rows
# read, most pending rows lie ahead). On such estimates it started parallel workers for a
# due list (~7 of its 8 ms) and compiled the scan's few-millisecond statements to machine
# code (JIT, 15-150 ms each, 100 or more a scan). A due-list page's statement also relies
# on its branches being read in order (``patients.due_list``), which a parallel plan does
# not promise. A SET after connecting, not libpq startup ``options``: those would replace
# the deployment's own (``?options=`` in the URL, PGOPTIONS), and some poolers refuse them.
# A report that reads everything may ``SET LOCAL`` either back.
OLTP_SETTINGS = "SET max_parallel_workers_per_gather = 0; SET jit = off"


# A pooled PostgreSQL connection is checked with a round trip on checkout only after it
# rested this long: the check (SQLAlchemy's pre-ping: one ";" per checkout) was ~0.3 ms of
# a ~3 ms due-list page, on connections a busy server had used a moment before. A server
# that restarts ends every connection: those rested longer are replaced before use; one
# reused sooner fails its first statement, and that failure invalidates the whole pool,
# as a failed ping would, so only requests of the same moment see it (they would have
# failed anyway, mid-restart). PgBouncer's ``server_check_delay`` makes the same trade.
PING_AFTER_REST_SECONDS = 1.0
_RESTED_SINCE = "rested_since"


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite ``url``; None for another database or an in-memory one."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``. A missing SQLite file is created owner-only (0600, in a
    0700 folder if the folder is new) before SQLite opens it: SQLite would create it with
    the umask's mode, and its -wal and -shm files take the database file's mode."""
    if make_url(url).get_backend_name() != "sqlite":
        engine = create_engine(url, **kwargs)
        _configure_postgresql(engine)
        return engine
    path = sqlite_file(url)
    if path is not None:
        create_private_file(path)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs)
    _configure_sqlite(engine)
    return engine


def _configure_postgresql(engine: Engine) -> None:
    dialect = engine.dialect

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(OLTP_SETTINGS)
        dbapi_connection.commit()  # a session setting, kept after the first transaction
        record.info[_RESTED_SINCE] = time.monotonic()  # just made: nothing to check

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_RESTED_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(_RESTED_SINCE)
        if since is not None and time.monotonic() - since < PING_AFTER_REST_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if not dialect.is_disconnect(error, dbapi_connection, None):
                raise  # not a lost connection: the caller sees it, as with pre-ping
            # As a failed pre-ping: every pooled connection is suspect (a restart ended
            # them all); the pool makes a new one for this checkout.
            raise exc.InvalidatePoolError(f"rested connection failed its check: {error}") from error


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy issue BEGIN itself (pysqlite's own BEGIN is always deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get("sqlite_immediate", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """One write transaction: commits on success, rolls back on any error."""
    bind = engine.execution_options(sqlite_immediate=True) if is_sqlite(engine) else engine
    with Session(bind, expire_on_commit=False) as session:
        with session.begin():
            yield session


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as session:
        yield session


class WriteInReadSession(RuntimeError):
    """Something tried to write through a session opened to read without a transaction:
    it would commit at once, with nothing to roll it back. A defect, never a user error."""


class _StatementReadSession(Session):
    """A ``Session`` that reads only: each statement runs on its own (see below)."""


@event.listens_for(_StatementReadSession, "before_flush")
def _refuse_flush(session: Session, _context: Any, _instances: Any) -> None:
    raise WriteInReadSession("a read without a transaction cannot write")


@event.listens_for(_StatementReadSession, "do_orm_execute")
def _refuse_write_statement(state: Any) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        raise WriteInReadSession("a read without a transaction cannot write")


@contextmanager
def statement_read_session(engine: Engine) -> Iterator[Session]:
    """A read made of statements that each stand alone (e.g. a due-list page: one statement),
    run without a transaction on PostgreSQL: no BEGIN and no ROLLBACK, two round trips of
    a ~3 ms page. The rows are the same: at READ COMMITTED (PostgreSQL's default; the app
    sets no other) each statement of a transaction takes its own snapshot anyway, and a
    statement that stands alone reads the same at any level. Not for server-side cursors
    (they need a transaction), nor for ``SET LOCAL`` (it would last one statement). Writes
    through the session (a flush, an INSERT, UPDATE or DELETE it executes) are refused with
    ``WriteInReadSession``; a statement run on ``session.connection()`` is not checked.
    SQLite's BEGIN costs no round trip, so there the read keeps its transaction."""
    bind = engine if is_sqlite(engine) else engine.execution_options(isolation_level="AUTOCOMMIT")
    with _StatementReadSession(bind, autoflush=False) as session:
        yield session
