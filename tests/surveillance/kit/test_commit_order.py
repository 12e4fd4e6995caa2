"""Audit rows and feed numbers are written at commit; inside the writing transaction it
looks as if they were written at once: a read of the trail sees them, a savepoint rolled
back takes back what was recorded in it and nothing recorded before it."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session, col
from support.factories import ACTOR, add_sites, table_snapshot

from surveillance.kit import audit, commit_order
from surveillance.kit.audit import AuditEntry
from surveillance.kit.db import read_session, write_session
from surveillance.kit.sqltypes import table_of
from surveillance.records.patients import Site


def _note(session: Session, key: str, now: datetime) -> None:
    audit.record(session, actor=ACTOR, action="note", entity="site", entity_key=key, at=now)


def _trail(engine: Engine) -> list[str]:
    return [row["entity_key"] for row in table_snapshot(engine, AuditEntry)]


def _verified(engine: Engine) -> bool:
    with read_session(engine) as session:
        breaks = audit.verify_chain(session)
        head = audit.last_checkpoint(session)
    rows = table_snapshot(engine, AuditEntry)
    assert head is not None
    return not breaks and (head.row_count, head.head_hash) == (len(rows), rows[-1]["hash"])


def test_nothing_is_written_before_the_commit_and_all_of_it_then(
    engine: Engine, now: datetime
) -> None:
    add_sites(engine)
    with write_session(engine) as session:
        _note(session, "a", now)
        facts = [audit.AuditFact(ACTOR, "note", "site", f"b{n}", None, None, {}) for n in (1, 2)]
        audit.record_many(session, facts, now)
        _note(session, "c", now)
        assert _trail(engine) == []  # another connection: nothing yet
    assert _trail(engine) == ["a", "b1", "b2", "c"]
    assert _verified(engine)


def test_a_read_of_the_trail_in_the_transaction_sees_what_it_recorded(
    engine: Engine, now: datetime
) -> None:
    add_sites(engine)
    with write_session(engine) as session:
        _note(session, "a", now)
        sites = select(func.count()).where(col(Site.timezone) == "Europe/Rome")
        assert session.execute(sites).scalar_one() == 1  # another table: nothing written
        assert _trail(engine) == []
        keys = session.execute(select(AuditEntry.entity_key)).scalars().all()
        assert keys == ["a"]
        _note(session, "b", now)  # after the read: chained after "a" at commit
    assert _trail(engine) == ["a", "b"]
    assert _verified(engine)


@pytest.mark.parametrize("read_inside", [False, True])
def test_a_savepoint_rolled_back_takes_back_only_what_was_recorded_in_it(
    engine: Engine, now: datetime, read_inside: bool
) -> None:
    """``read_inside``: the trail is read in the savepoint, so "before" is written there
    and undone by the rollback: it must be written again at commit."""
    add_sites(engine)
    with write_session(engine) as session:
        _note(session, "before", now)
        savepoint = session.begin_nested()
        _note(session, "inside", now)
        if read_inside:
            assert len(session.execute(select(AuditEntry)).scalars().all()) == 2
        savepoint.rollback()
        with session.begin_nested():  # released: what it recorded stays
            _note(session, "released", now)
        _note(session, "after", now)
    assert _trail(engine) == ["before", "released", "after"]
    assert _verified(engine)


def _failing_change(engine: Engine, now: datetime) -> None:
    with write_session(engine) as session:
        _note(session, "lost", now)
        raise RuntimeError("the change fails")


def test_a_transaction_rolled_back_writes_nothing(engine: Engine, now: datetime) -> None:
    add_sites(engine)
    with pytest.raises(RuntimeError):
        _failing_change(engine, now)
    with write_session(engine) as session:
        _note(session, "kept", now)
    assert _trail(engine) == ["kept"]
    assert _verified(engine)


def test_a_bulk_transaction_writes_as_it_goes(
    engine: Engine, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past ``WRITE_AT`` waiting rows they are written at once (memory stays bounded)."""
    monkeypatch.setattr(commit_order, "WRITE_AT", 3)
    add_sites(engine)

    def in_the_database(session: Session) -> int:  # the connection's view: no ORM event
        count = select(func.count()).select_from(table_of(AuditEntry))
        return int(session.connection().execute(count).scalar_one())

    with write_session(engine) as session:
        facts = [audit.AuditFact(ACTOR, "note", "site", f"b{n}", None, None, {}) for n in (1, 2)]
        audit.record_many(session, facts, now)
        _note(session, "c", now)
        assert in_the_database(session) == 0
        _note(session, "d", now)  # 3 waiting: written before "d" waits
        assert in_the_database(session) == 3
    assert _trail(engine) == ["b1", "b2", "c", "d"]
    assert _verified(engine)


def test_a_session_inside_someone_elses_transaction_must_write_what_waits(
    engine: Engine, now: datetime
) -> None:
    """The schema upgrade's pattern: a session on a connection whose owner commits. Ended
    with audit rows waiting, it is refused: its changes would be committed without them.
    With ``write_now`` first, the rows are there after the owner's commit."""
    add_sites(engine)
    with engine.connect() as connection, connection.begin():
        with pytest.raises(commit_order.WorkWouldBeLost, match=r"1 row.* of audit"):
            with Session(bind=connection) as session:
                _note(session, "forgotten", now)
        with Session(bind=connection) as session:
            _note(session, "written", now)
            commit_order.write_now(session)
            session.flush()
    assert _trail(engine) == ["written"]
    assert _verified(engine)


def test_a_session_closed_without_commit_drops_what_waits_with_its_changes(
    engine: Engine, now: datetime
) -> None:
    """Its own connection, closed uncommitted: the changes are rolled back, and what waits
    goes with them (nothing to refuse)."""
    add_sites(engine)
    with Session(engine) as session:
        _note(session, "never", now)
        session.execute(select(func.count()).select_from(table_of(Site)))
    with write_session(engine) as session:
        _note(session, "kept", now)
    assert _trail(engine) == ["kept"]
    assert _verified(engine)
