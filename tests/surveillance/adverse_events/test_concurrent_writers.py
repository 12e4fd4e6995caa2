"""Several writers at once on PostgreSQL (issue 15).

Four threads record adverse-event cases and outcomes for their own patients through the
service functions, while a consumer pages the feed by cursor all along. The chain's lock
is taken at commit (``kit.commit_order``), not at a transaction's first audit row, so
the writers' slow part (the calendar re-plan, made slower here on purpose, after the
case's version and audit row are written) overlaps; the feed still shows every entry
once, in order, with no gap, and the audit chain and its checkpoint still hold.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import col
from support.factories import ACTOR, add_sites, enrolment, record, rows_of

import rules
from surveillance.adverse_events import cases
from surveillance.adverse_events.cases import create_case
from surveillance.adverse_events.facts import CaseFacts
from surveillance.adverse_events.feed import feed_page
from surveillance.kit import audit
from surveillance.kit.audit import AuditEntry
from surveillance.kit.db import read_session, write_session
from surveillance.patients.enrolment import enroll
from surveillance.records.adverse_event_vocabulary import (
    CaseOutcome,
    Category,
    GradeScale,
    Relatedness,
)
from surveillance.records.adverse_events import AdverseEventVersion
from surveillance.records.patients import AssessmentStatus

WRITERS, ROUNDS = 4, 3
PLANNING_DELAY = 0.3  # seconds added to every case's re-plan: the slow part of a write
CRS = CaseFacts(
    onset_date=date(2024, 2, 2),
    awareness_date=date(2024, 2, 2),
    term="Cytokine release syndrome",
    category=Category.crs,
    grade=2,
    grade_scale=GradeScale.astct,
    serious=False,
    relatedness=Relatedness.related,
    expected=True,
    outcome=CaseOutcome.recovered,
)

POSTGRES_ONLY = pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


def _most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one moment."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    most = current = 0
    for _, step in events:  # an end sorts before a start at the same moment
        current += step
        most = max(most, current)
    return most


def _due_keys(engine: Engine, study_id: str, today: date) -> list[str]:
    with read_session(engine) as session:
        rows = rows_of(session, study_id)
    due = [r for r in rows if r.status == AssessmentStatus.pending.value and r.due_on <= today]
    return [f"{study_id}:{r.infusion_number}:{r.assessment}:{r.occurrence}" for r in due]


@POSTGRES_ONLY
def test_four_writers_overlap_while_the_feed_stays_gapless_and_the_chain_whole(
    engine: Engine,
    registry: rules.ProtocolRegistry,
    now: datetime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_sites(engine)
    study_ids = [f"ROM-{300 + n}" for n in range(WRITERS)]
    with write_session(engine) as session:
        enroll(session, [enrolment(study_id=s) for s in study_ids], registry=registry,
               now=now, actor=ACTOR)  # fmt: skip
    outcomes = {s: _due_keys(engine, s, now.date())[:ROUNDS] for s in study_ids}
    assert all(len(keys) == ROUNDS for keys in outcomes.values())

    slow: list[tuple[float, float]] = []  # when each re-plan was in its slow part
    replan: Callable[..., Any] = cases._replan

    def slow_replan(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        time.sleep(PLANNING_DELAY)  # after this transaction's version and audit row
        slow.append((started, time.perf_counter()))
        return replan(*args, **kwargs)

    monkeypatch.setattr(cases, "_replan", slow_replan)
    errors: list[BaseException] = []
    start = threading.Barrier(WRITERS)

    def writer(study_id: str) -> None:
        try:
            start.wait()
            for key in outcomes[study_id]:
                with write_session(engine) as session:
                    create_case(session, study_id=study_id, facts=CRS, actor=study_id,
                                registry=registry, now=now)  # fmt: skip
                with write_session(engine) as session:
                    record(session, registry, now, key)
        except BaseException as exc:  # reported below: a thread's failure fails the test
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(s,)) for s in study_ids]
    for thread in threads:
        thread.start()
    seen: list[tuple[int, str, int]] = []
    cursor = pages = 0
    while True:
        writing = any(t.is_alive() for t in threads)
        with read_session(engine) as session:
            page = feed_page(session, after=cursor, limit=2, registry=registry)
        pages += 1
        for entry in page.entries:
            expected = seen[-1][0] + 1 if seen else 1
            assert entry["sequence"] == expected, f"gap or disorder at {entry['sequence']}"
            seen.append((entry["sequence"], entry["case_id"], entry["version"]))
        cursor = int(page.next_cursor)
        if not writing and page.caught_up:
            break
        time.sleep(0.005)
    for thread in threads:
        thread.join()
    assert errors == []

    total = WRITERS * ROUNDS
    assert [s for s, _, _ in seen] == list(range(1, total + 1))
    assert len({(case_id, version) for _, case_id, version in seen}) == total
    assert pages > ROUNDS  # it paged while the writers wrote
    # The old design held the lock from the version's number to the commit, the slow
    # part included: never two re-plans at once. Now most of the writers' overlap.
    assert len(slow) == total
    assert _most_at_once(slow) >= 3, sorted(slow)

    with read_session(engine) as session:
        assert audit.verify_chain(session) == []
        head = audit.last_checkpoint(session)
        rows = session.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
        newest = session.execute(
            select(AuditEntry).order_by(col(AuditEntry.id).desc()).limit(1)
        ).scalar_one()
        created = session.execute(
            select(func.count()).where(AuditEntry.action == "adverse_event_created")
        ).scalar_one()
        recorded = session.execute(
            select(func.count()).where(AuditEntry.action == "record_outcome")
        ).scalar_one()
        sequences = session.execute(select(AdverseEventVersion.sequence)).scalars().all()
    assert head is not None
    assert (head.row_count, head.head_id, head.head_hash) == (rows, newest.id, newest.hash)
    assert (created, recorded) == (total, total)
    assert sorted(sequences) == list(range(1, total + 1))  # no placeholder left behind
