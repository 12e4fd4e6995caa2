"""The audit trail is a hash chain: every change is in it, and tampering shows."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import Engine, select, text
from support.factories import ACTOR, add_sites, enrolment, record, table_snapshot

import rules
from surveillance.kit import audit
from surveillance.kit.audit import AuditEntry
from surveillance.kit.db import make_engine, read_session, write_session
from surveillance.patients.changes import add_infusion, change_status, record_event
from surveillance.patients.enrolment import enroll


def _operations(engine: Engine, registry: rules.ProtocolRegistry, now: datetime) -> None:
    """A realistic day: a cohort enrolled (bulk chain), outcomes, an event, statuses."""
    add_sites(engine)
    with write_session(engine) as session:
        enroll(
            session,
            [
                enrolment(study_id="ROM-101"),
                enrolment(study_id="ROM-102"),
                enrolment(study_id="ERL-001", site_id="Erlangen"),
            ],
            registry=registry,
            now=now,
            actor=ACTOR,
        )
    for n, later in enumerate((0, 1, 2)):
        with write_session(engine) as session:
            record(
                session,
                registry,
                now + timedelta(minutes=later),
                f"ROM-101:1:rcl_test:{n + 1}",
                result="negative",
            )
    with write_session(engine) as session:
        record_event(
            session,
            study_id="ROM-102",
            kind="new_malignancy",
            on=date(2026, 10, 1),
            note="lymphoma",
            actor=ACTOR,
            registry=registry,
            now=now,
        )
        add_infusion(
            session,
            study_id="ROM-102",
            on=date(2025, 6, 1),
            actor=ACTOR,
            registry=registry,
            now=now,
        )
    with write_session(engine) as session:
        change_status(
            session,
            study_id="ERL-001",
            status="deceased",
            on=date(2026, 11, 1),
            reason="reported",
            actor=ACTOR,
            registry=registry,
            now=now,
        )


@pytest.fixture
def trail(engine: Engine, registry: rules.ProtocolRegistry, now: datetime) -> list[int]:
    """The ids of the audit rows written by ``_operations``."""
    _operations(engine, registry, now)
    return [row["id"] for row in table_snapshot(engine, AuditEntry)]


def _breaks(engine: Engine) -> list[audit.ChainBreak]:
    with read_session(engine) as session:
        return audit.verify_chain(session)


def test_the_chain_holds_after_a_series_of_operations(engine: Engine, trail: list[int]) -> None:
    assert _breaks(engine) == []
    rows = table_snapshot(engine, AuditEntry)
    actions = [row["action"] for row in rows]
    assert actions[:3] == ["enroll"] * 3
    for expected in (
        "record_outcome",
        "calendar_change",
        "record_event",
        "add_infusion",
        "change_status",
    ):
        assert expected in actions
    assert rows[0]["previous_hash"] == audit.GENESIS_HASH
    for previous, row in itertools.pairwise(rows):
        assert row["previous_hash"] == previous["hash"]
    assert len({row["hash"] for row in rows}) == len(rows)


def test_an_empty_trail_verifies(engine: Engine) -> None:
    assert _breaks(engine) == []


@pytest.fixture
def shifted_engine(engine: Engine, database_url: str) -> Iterator[Engine]:
    """On PostgreSQL: a connection in another time zone (timestamps come back shifted)."""
    if engine.dialect.name != "postgresql":
        yield engine
        return
    shifted = make_engine(database_url, connect_args={"options": "-c timezone=Asia/Kolkata"})
    yield shifted
    shifted.dispose()


def test_the_chain_holds_whatever_the_sessions_time_zone(
    shifted_engine: Engine, trail: list[int]
) -> None:
    assert _breaks(shifted_engine) == []


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("new_values", '{"status": "completed", "result": "positive"}'),
        ("reason", "edited afterwards"),
        ("actor", "someone else"),
        ("entity_key", "ROM-999"),
    ],
)
def test_an_edited_row_is_detected(
    engine: Engine, trail: list[int], column: str, value: str
) -> None:
    target = trail[len(trail) // 2]
    with engine.begin() as connection:
        connection.execute(
            text(f"UPDATE audit_log SET {column} = :value WHERE id = :id"),
            {"value": value, "id": target},
        )
    breaks = _breaks(engine)
    assert [(b.entry_id, b.problem) for b in breaks] == [
        (target, "content does not match its hash: the row was edited")
    ]


def test_an_edited_timestamp_is_detected(engine: Engine, trail: list[int]) -> None:
    target = trail[3]
    with read_session(engine) as session:
        entry = session.get(AuditEntry, target)
        assert entry is not None
        moved = entry.at - timedelta(days=1)
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE audit_log SET at = :at WHERE id = :id"), {"at": moved, "id": target}
        )
    assert [b.entry_id for b in _breaks(engine)] == [target]


def test_a_deleted_middle_row_is_detected(engine: Engine, trail: list[int]) -> None:
    middle = trail[len(trail) // 2]
    following = trail[len(trail) // 2 + 1]
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_log WHERE id = :id"), {"id": middle})
    breaks = _breaks(engine)
    assert [(b.entry_id, b.problem) for b in breaks] == [
        (following, "previous hash does not match: a row before it was deleted or edited")
    ]


def test_a_forged_row_with_a_recomputed_hash_breaks_the_next_link(
    engine: Engine, trail: list[int]
) -> None:
    """Re-hashing the edited row is not enough: the next row still names the old hash."""
    target, following = trail[2], trail[3]
    with write_session(engine) as session:
        entry = session.get(AuditEntry, target)
        assert entry is not None
        entry.new_values = json.dumps({"forged": True})
        entry.hash = audit._digest(entry.previous_hash, entry)
        session.add(entry)
    assert [b.entry_id for b in _breaks(engine)] == [following]


@pytest.mark.parametrize("deleted", [1, 2])
def test_deleting_the_newest_rows_is_detected(
    engine: Engine, trail: list[int], deleted: int
) -> None:
    """The chain alone cannot tell a shorter trail: the checkpoint kept beside it can."""
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_log WHERE id >= :id"), {"id": trail[-deleted]})
    breaks = _breaks(engine)
    assert [b.entry_id for b in breaks] == [trail[-1]]
    assert "the newest rows were deleted" in breaks[0].problem
    assert f"{len(trail) - deleted} rows, {len(trail)} checkpointed" in breaks[0].problem


def test_a_replaced_newest_row_is_detected(engine: Engine, trail: list[int]) -> None:
    """The newest row swapped for a forged one, correctly chained, under the same id."""
    with write_session(engine) as session:
        head = session.get(AuditEntry, trail[-1])
        assert head is not None
        forged = AuditEntry(
            id=head.id, at=head.at, actor="forger", action=head.action, entity=head.entity,
            entity_key=head.entity_key, patient_id=head.patient_id, reason=None,
            old_values=head.old_values, new_values='{"forged": true}',
            previous_hash=head.previous_hash, hash="",
        )  # fmt: skip
        forged.hash = audit._digest(forged.previous_hash, forged)
        session.delete(head)
        session.flush()
        session.add(forged)
    breaks = _breaks(engine)
    assert [(b.entry_id, b.problem) for b in breaks] == [
        (trail[-1], "the row at the last checkpoint was replaced")
    ]


def test_every_write_appends_a_checkpoint_of_the_head(engine: Engine, trail: list[int]) -> None:
    with read_session(engine) as session:
        checkpoints = (
            session.execute(
                select(audit.AuditCheckpoint).order_by(audit.AuditCheckpoint.id)  # type: ignore[arg-type]
            )
            .scalars()
            .all()
        )
        head = session.get(AuditEntry, trail[-1])
    assert head is not None
    last = checkpoints[-1]
    assert (last.row_count, last.head_id, last.head_hash) == (len(trail), head.id, head.hash)
    counts = [c.row_count for c in checkpoints]
    assert counts == sorted(counts)


def test_rows_appended_after_a_bulk_insert_continue_the_chain(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime
) -> None:
    add_sites(engine)
    with write_session(engine) as session:
        audit.record(session, actor=ACTOR, action="note", entity="site", entity_key="Rome", at=now)
        audit.record_many(
            session,
            [
                audit.AuditFact(ACTOR, "note", "site", f"Rome-{n}", None, None, {"n": n})
                for n in range(5)
            ],
            now,
        )
        audit.record(session, actor=ACTOR, action="note", entity="site", entity_key="end", at=now)
    with write_session(engine) as session:
        audit.record_many(session, [], now)  # nothing to add: nothing added
    rows = table_snapshot(engine, AuditEntry)
    assert [row["entity_key"] for row in rows] == [
        "Rome",
        *[f"Rome-{n}" for n in range(5)],
        "end",
    ]
    assert _breaks(engine) == []
    [last] = table_snapshot(engine, audit.AuditCheckpoint)[-1:]
    assert (last["row_count"], last["head_hash"]) == (7, rows[-1]["hash"])
