"""SQLite with several processes: WAL, a busy timeout and BEGIN IMMEDIATE.

Two OS processes write to one SQLite file at the same time, each in many short
transactions that read before they write (recording an outcome re-plans the calendar;
an audit row reads the chain's head). A deferred BEGIN fails such transactions with
"database is locked"; BEGIN IMMEDIATE makes them wait their turn.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from support.factories import add_sites, enroll_committed

import rules
from surveillance.kit import audit, migrate
from surveillance.kit.audit import AuditEntry
from surveillance.kit.db import make_engine, read_session
from surveillance.records.patients import Assessment, OutcomeRecord, Patient

WORKER = """
import sys
import time
from datetime import UTC, datetime

from sqlalchemy import select

import rules
from surveillance.adverse_events.results import record_outcome
from surveillance.kit import audit
from surveillance.kit.db import make_engine, read_session, write_session
from surveillance.records.patients import Assessment, Patient

url, study_id, count, start_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
registry = rules.ProtocolRegistry.from_directory()
engine = make_engine(url)
now = datetime(2026, 11, 25, 12, tzinfo=UTC)
with read_session(engine) as session:
    todo = session.execute(
        select(Assessment.infusion_number, Assessment.assessment, Assessment.occurrence,
               Assessment.due_on)
        .join(Patient, Patient.id == Assessment.patient_id)
        .where(Patient.study_id == study_id, Assessment.status == "pending",
               Assessment.due_on <= now.date())
        .order_by(Assessment.due_on, Assessment.id)
        .limit(count)
    ).all()
assert len(todo) == count, len(todo)
while time.time() < start_at:  # start both workers together
    time.sleep(0.001)
for n, (infusion, assessment, occurrence, due) in enumerate(todo):
    key = f"{study_id}:{infusion}:{assessment}:{occurrence}"
    with write_session(engine) as session:
        record_outcome(session, key=key, outcome="completed", on=due, actor=study_id,
                       registry=registry, now=now)
    with write_session(engine) as session:
        audit.record(session, actor=study_id, action="heartbeat", entity="worker",
                     entity_key=f"{study_id}:{n}", at=now)
print("done", len(todo))
"""

WRITES_PER_WORKER = 40


def test_two_processes_writing_at_once_never_see_database_is_locked(
    tmp_path: Path, registry: rules.ProtocolRegistry, now: datetime
) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    add_sites(engine)
    workers = ("ROM-101", "ROM-102")
    for study_id in workers:
        enroll_committed(engine, registry, now, study_id=study_id)
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    engine.dispose()

    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    start_at = time.time() + 3.0  # both have imported and connected by then
    processes = [
        subprocess.Popen(
            [sys.executable, str(script), url, study_id, str(WRITES_PER_WORKER), str(start_at)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for study_id in workers
    ]
    outputs = [process.communicate(timeout=180) for process in processes]
    for process, (stdout, stderr) in zip(processes, outputs, strict=True):
        assert "database is locked" not in stderr
        assert process.returncode == 0, stderr
        assert stdout.strip() == f"done {WRITES_PER_WORKER}"

    engine = make_engine(url)
    with read_session(engine) as session:
        outcomes = dict(
            session.execute(
                select(OutcomeRecord.recorded_by, func.count()).group_by(OutcomeRecord.recorded_by)
            ).all()
        )
        heartbeats = dict(
            session.execute(
                select(AuditEntry.actor, func.count())
                .where(AuditEntry.action == "heartbeat")
                .group_by(AuditEntry.actor)
            ).all()
        )
        completed = dict(
            session.execute(
                select(Patient.study_id, func.count())
                .join(Assessment, Assessment.patient_id == Patient.id)  # type: ignore[arg-type]
                .where(Assessment.status == "completed")
                .group_by(Patient.study_id)
            ).all()
        )
        breaks = audit.verify_chain(session)
    engine.dispose()
    assert outcomes == dict.fromkeys(workers, WRITES_PER_WORKER)
    assert heartbeats == dict.fromkeys(workers, WRITES_PER_WORKER)
    assert completed == dict.fromkeys(workers, WRITES_PER_WORKER)
    # Writers were serialised: the chain did not fork.
    assert breaks == []


@pytest.mark.parametrize("pragma", ["journal_mode", "busy_timeout", "foreign_keys"])
def test_every_sqlite_connection_is_configured(tmp_path: Path, pragma: str) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'nested' / 'x.db'}")  # folder created
    expected = {"journal_mode": "wal", "busy_timeout": 30_000, "foreign_keys": 1}[pragma]
    with engine.connect() as connection:
        assert connection.execute(text(f"PRAGMA {pragma}")).scalar() == expected
    engine.dispose()
