"""Work that must follow commit order, done at commit: many writers run at once.

The audit chain (each row hashes the one before) and the adverse-event feed (sequences
without gaps, visible in the order they were given) need one order over all writers.
Holding one lock from a writer's first audit row to its commit gives that order but
serialises whole writes: the reads, checks and calendar re-planning too. Instead, that
work waits on the session (``defer``) and a ``before_commit`` listener does it: it takes
the lock (PostgreSQL: a transaction-level advisory lock, released once the commit is
visible; SQLite's writers are one at a time anyway, by ``BEGIN IMMEDIATE``), writes what
waits, and the commit follows. Only the lock, a few statements and the commit are
serialised; whoever takes the lock next reads the head and the last sequence as the
previous writer committed them, so the order is the commit order.

Inside the writing transaction nothing else changes:
* a read of a table the waiting work writes (``Deferred.tables``: the audit trail) writes
  it first, under the lock (the old behaviour, for that transaction only);
* a savepoint rolled back drops what was deferred in it, and puts back for the commit
  what was deferred before it but written in it (the rollback undid those rows).

A transaction that defers more than ``WRITE_AT`` items (a bulk load) writes them as it
goes, so memory stays bounded: it holds the lock from then on, as every writer used to.

A session that never commits itself (bound to a connection whose owner commits, as the
schema upgrade's) calls ``write_now`` before it ends. One that forgets is refused when it
ends (``WorkWouldBeLost``): its changes would be committed by the connection's owner
without their audit rows. A transaction rolled back drops what waits, with its changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, event, text
from sqlalchemy.orm import ORMExecuteState, SessionTransaction
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.util import find_tables
from sqlmodel import Session

# Any constant: serialises the writers of the chain and the feed on PostgreSQL.
_LOCK_ID = 7_150_001
_STATE = "commit_order"  # key in ``session.info``
WRITE_AT = 5_000  # items waiting (e.g. audit rows): written at once, not at commit


@dataclass(frozen=True, eq=False)
class Deferred:
    """One kind of work done in commit order. ``write`` gets the items deferred since
    the last write, oldest first, under the lock, inside the transaction."""

    name: str
    write: Callable[[Session, list[Any]], None]
    # A read of these tables in the writing transaction writes the waiting items first.
    tables: frozenset[str] = frozenset()


@dataclass(eq=False)
class _Entry:
    serial: int  # order of ``defer`` calls in the transaction
    kind: Deferred
    item: Any
    size: int
    written_in: SessionTransaction | None = None  # the open savepoint it was written in


@dataclass
class _State:
    """One root transaction's deferred work (dropped when the transaction ends)."""

    serial: int = 0
    waiting: list[_Entry] = field(default_factory=list)
    waiting_size: int = 0  # their rows
    in_savepoints: list[_Entry] = field(default_factory=list)  # a rollback may undo them
    marks: dict[SessionTransaction, int] = field(default_factory=dict)  # first serial in it


class WorkWouldBeLost(RuntimeError):
    """A session ended with audit rows or feed numbers waiting, while the transaction it
    wrote in goes on (a connection someone else commits): it must ``write_now`` first."""


def lock(session: Session) -> None:
    """Take the writers' lock until this transaction ends."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})


def defer(session: Session, kind: Deferred, item: Any, size: int = 1) -> int:
    """Have ``kind.write`` get ``item`` (``size`` rows) at commit, or at a later write;
    its serial (unique in the transaction)."""
    session.connection()  # in a transaction: its end is where waiting work is checked
    state = _state(session)
    if state.waiting_size >= WRITE_AT:  # before ``item``: its caller may not be done with it
        write_now(session)
    state.serial += 1
    state.waiting.append(_Entry(state.serial, kind, item, size))
    state.waiting_size += size
    return state.serial


def write_now(session: Session) -> None:
    """Do the waiting work now: take the lock (kept to commit) and write it."""
    state: _State | None = session.info.get(_STATE)
    if state is None or not state.waiting:
        return
    entries, state.waiting = state.waiting, []  # taken first: the writes' reads see none
    state.waiting_size = 0
    savepoint = session.get_nested_transaction()
    if savepoint is not None:
        for entry in entries:
            entry.written_in = savepoint
        state.in_savepoints.extend(entries)
    lock(session)
    kinds: dict[Deferred, list[Any]] = {}  # each kind's items in order; kinds are independent
    for entry in entries:
        kinds.setdefault(entry.kind, []).append(entry.item)
    for kind, items in kinds.items():
        kind.write(session, items)


def _state(session: Any) -> _State:
    state: _State | None = session.info.get(_STATE)
    if state is None:
        state = session.info[_STATE] = _State()
    return state


def _within(transaction: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False


def _reads(statement: Any, tables: frozenset[str]) -> bool:
    if isinstance(statement, TextClause):
        return any(name in statement.text for name in tables)
    found = find_tables(statement, check_columns=True, include_aliases=True, include_joins=True)
    return any(getattr(table, "name", None) in tables for table in found)  # None: no table


# -- the session's events (every Session: the app's, the CLI's, the tests') ------------


@event.listens_for(OrmSession, "before_commit")
def _before_commit(session: Any) -> None:
    # Also before a savepoint is released: written there, the rows go with it.
    state: _State | None = session.info.get(_STATE)
    if state is not None and state.waiting:
        session.flush()  # the change's own rows before the lock: they are not serialised
        write_now(session)


@event.listens_for(OrmSession, "do_orm_execute")
def _before_read(execute_state: ORMExecuteState) -> None:
    session: Any = execute_state.session  # the app's sessions are sqlmodel's
    state: _State | None = session.info.get(_STATE)
    if state is None or not state.waiting:
        return
    tables = frozenset().union(*(entry.kind.tables for entry in state.waiting))
    if tables and _reads(execute_state.statement, tables):
        write_now(session)


@event.listens_for(OrmSession, "after_transaction_create")
def _savepoint_begun(session: Any, transaction: SessionTransaction) -> None:
    if transaction.nested:
        state = _state(session)
        state.marks[transaction] = state.serial + 1


@event.listens_for(OrmSession, "after_commit")
def _committed(session: Any) -> None:
    released = session.get_nested_transaction()
    state: _State | None = session.info.get(_STATE)
    if released is None or state is None:
        return  # the root: ``_ended`` forgets the state
    state.marks.pop(released, None)
    parent = released.parent
    outer = parent if parent is not None and parent.nested else None
    for entry in state.in_savepoints:
        if entry.written_in is released:
            entry.written_in = outer  # now the enclosing savepoint's (or final: None)
    state.in_savepoints = [e for e in state.in_savepoints if e.written_in is not None]


@event.listens_for(OrmSession, "after_soft_rollback")
def _rolled_back(session: Any, previous: SessionTransaction) -> None:
    state: _State | None = session.info.get(_STATE)
    if state is None:
        return
    if not previous.nested:  # the whole transaction: its changes and what waits go together
        state.waiting, state.waiting_size = [], 0
        return
    mark = state.marks.pop(previous, state.serial + 1)
    undone = [e for e in state.in_savepoints if _within(e.written_in, previous)]
    state.in_savepoints = [e for e in state.in_savepoints if e not in undone]
    for entry in undone:
        entry.written_in = None
    again = [e for e in undone + state.waiting if e.serial < mark]
    state.waiting = sorted(again, key=lambda e: e.serial)
    state.waiting_size = sum(entry.size for entry in state.waiting)
    state.marks = {t: m for t, m in state.marks.items() if not _within(t, previous)}


@event.listens_for(OrmSession, "after_transaction_end")
def _ended(session: Any, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # committed (nothing waits), rolled back or closed
        state: _State | None = session.info.pop(_STATE, None)
        if state is not None and state.waiting and _outer_transaction_goes_on(session):
            kinds = sorted({entry.kind.name for entry in state.waiting})
            raise WorkWouldBeLost(
                f"{state.waiting_size} row(s) of {', '.join(kinds)} waiting for a commit this "
                "session never makes; call commit_order.write_now(session) before it ends"
            )


def _outer_transaction_goes_on(session: Any) -> bool:
    """Bound to a connection whose transaction outlives the session (its owner commits)."""
    bind = session.bind
    return isinstance(bind, Connection) and bind.in_transaction()
