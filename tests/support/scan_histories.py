"""Random histories of a registry for the alert-scan tests, and the databases to play them on.

A history: enrolments, outcomes recorded, corrected and undone, status changes and
transfers, acknowledgements, a webhook endpoint added, time passing, scans in between,
each applied through the application's own services (``World.play``). ``Store`` makes
copies of one migrated database with the sites and the staff (SQLite files, PostgreSQL
databases from a template).
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from pg_cluster import PostgresCluster
from sqlalchemy import Engine, select
from sqlmodel import Session, col

import rules
from support.alert_support import AAV, ACTOR, ADMIN, START, Clock, add_sites_and_staff
from surveillance.accounts import auth
from surveillance.adverse_events.results import correct_outcome, record_outcome
from surveillance.alerting import operations
from surveillance.alerting.scan import ScanReport, scan
from surveillance.errors import SurveillanceError
from surveillance.kit import migrate
from surveillance.kit.db import make_engine, read_session, write_session
from surveillance.patients.changes import change_status
from surveillance.patients.enrolment import Enrolment, enroll
from surveillance.patients.undo import undo_outcome
from surveillance.records.outbox import Alert, WebhookEndpoint
from surveillance.records.patients import (
    Assessment,
    AssessmentStatus,
    OutcomeRecord,
    Patient,
    assessment_key,
)


def histories_settings(max_examples: int) -> settings:
    """Hypothesis settings for a property over ``histories``: each example plays a whole
    history on a real database (slow, with a fixture per test, not per example)."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


CAR_T = "cd19-car-t-pediatric-autoimmune"
SITES = ("Rome", "Erlangen")
_names = itertools.count()

# One step of a history; the integers pick a patient or a row among those that fit.
Step = tuple[Any, ...]
steps = st.one_of(
    st.tuples(st.just("advance"), st.sampled_from([1, 60, 24 * 60, 3 * 24 * 60, 8 * 24 * 60])),
    st.tuples(
        st.just("enrol"),
        st.integers(0, 4 * 365),  # infused this many days before "now"
        st.sampled_from(SITES),
        st.sampled_from([AAV, AAV, CAR_T]),
    ),
    st.tuples(
        st.just("record"),
        st.integers(0, 50),
        st.integers(0, 50),
        st.sampled_from(["completed", "missed", "missed", "not_done"]),
    ),
    st.tuples(
        st.just("correct"),
        st.integers(0, 50),
        st.integers(0, 50),
        st.sampled_from(["completed", "missed", "not_done"]),
    ),
    st.tuples(st.just("undo"), st.integers(0, 50)),
    st.tuples(
        st.just("status"),
        st.integers(0, 50),
        st.sampled_from(["lost_to_follow_up", "active", "transferred", "withdrawn", "deceased"]),
    ),
    st.tuples(st.just("ack"), st.integers(0, 50), st.integers(0, 50), st.sampled_from([1, 2])),
    st.tuples(st.just("endpoint"), st.sampled_from((*SITES, None))),
    st.tuples(st.just("scan"), st.booleans()),  # True: "as of" a given day, not today
)
histories = st.lists(steps, min_size=4, max_size=30).map(
    # Always a patient first (with an overdue past) and a scan at the end.
    lambda h: [("enrol", 800, "Rome", AAV), ("scan", False), *h, ("scan", False)]
)


@dataclass
class Store:
    """Makes databases: copies of one migrated with the sites and the staff."""

    new_url: Callable[[], str]


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    folder = tmp_path_factory.mktemp("incremental")
    template = folder / "template.db"
    _prepare(make_engine(f"sqlite:///{template}"))

    def new_url() -> str:
        target = folder / f"copy{next(_names)}.db"
        with closing(sqlite3.connect(template)) as src, closing(sqlite3.connect(target)) as dst:
            src.backup(dst)
        return f"sqlite:///{target}"

    return Store(new_url)


@pytest.fixture(scope="module")
def pg_store(pg: PostgresCluster) -> Store:
    template = f"scan_histories_template_{next(_names)}"  # one per module using it
    _prepare(make_engine(pg.create_database(template)))
    return Store(lambda: pg.create_database(f"incremental_{next(_names)}", template=template))


def _prepare(engine: Engine) -> None:
    migrate.upgrade(engine)
    with write_session(engine) as session:
        add_sites_and_staff(session)
    engine.dispose()


@dataclass
class World:
    """One database, its clock and how it is scanned."""

    engine: Engine
    full: bool
    clock: Clock = field(default_factory=lambda: Clock(START))
    patients: list[str] = field(default_factory=list)
    endpoints: int = 0
    reports: list[ScanReport] = field(default_factory=list)

    def play(self, step: Step, registry: rules.ProtocolRegistry) -> str:
        """Apply ``step``; say what happened (refused steps are part of the history)."""
        name, *args = step
        if name == "advance":
            self.clock.advance(timedelta(minutes=args[0]))
            return "advanced"
        try:
            with write_session(self.engine) as session:
                return getattr(self, f"_{name}")(session, registry, *args)
        except SurveillanceError as refused:
            return f"refused: {type(refused).__name__}"

    def alerts(self) -> set[tuple[Any, ...]]:
        a = Alert.__table__.c  # type: ignore[attr-defined]
        columns = (a.id, a.kind, a.level, a.channel, a.recipient, a.site_id, a.patient_id)
        with read_session(self.engine) as session:
            rows = session.execute(select(*columns, a.assessment_id, a.as_of))
            return {tuple(row) for row in rows}

    def _today(self) -> date:
        return (self.clock() + timedelta(hours=1)).date()  # Rome and Erlangen, in winter

    def _enrol(self, session: Session, registry: rules.ProtocolRegistry, *args: Any) -> str:
        days_ago, site, protocol = args
        study_id = f"P-{len(self.patients) + 1:03d}"
        birth, diagnosis = (
            (date(1990, 1, 1), "hemophilia_a") if protocol == AAV else (date(2015, 1, 1), "sle")
        )
        infused = self._today() - timedelta(days=days_ago)
        enrolment = Enrolment(study_id, site, birth, "F", diagnosis, protocol, infused)
        enroll(session, [enrolment], registry=registry, now=self.clock(), actor=ACTOR)
        self.patients.append(study_id)
        return f"enrolled {study_id}"

    def _patient(self, session: Session, pick: int) -> Patient:
        study_id = self.patients[pick % len(self.patients)]
        found = session.execute(select(Patient).where(col(Patient.study_id) == study_id))
        return found.scalar_one()

    def _rows(self, session: Session, patient: Patient, *where: Any) -> list[Assessment]:
        statement = select(Assessment).where(col(Assessment.patient_id) == patient.id, *where)
        return list(session.execute(statement.order_by(col(Assessment.id))).scalars())

    def _key(self, patient: Patient, row: Assessment) -> str:
        return assessment_key(patient.study_id, row.infusion_number, row.assessment, row.occurrence)

    def _record(self, session: Session, registry: rules.ProtocolRegistry, *args: Any) -> str:
        pick, row_pick, outcome = args
        patient = self._patient(session, pick)
        opened = self._rows(
            session,
            patient,
            col(Assessment.status) == AssessmentStatus.pending.value,
            col(Assessment.window_start) <= self._today(),
        )
        if not opened:
            return "nothing to record"
        row = opened[row_pick % len(opened)]
        record_outcome(
            session,
            key=self._key(patient, row),
            outcome=outcome,
            on=self._today(),
            reason=None if outcome == "completed" else "no answer",
            actor=ACTOR,
            registry=registry,
            now=self.clock(),
        )
        return f"recorded {row.id} {outcome}"

    def _correct(self, session: Session, registry: rules.ProtocolRegistry, *args: Any) -> str:
        pick, row_pick, outcome = args
        patient = self._patient(session, pick)
        done = ("completed", "missed", "not_done")
        recorded = self._rows(session, patient, col(Assessment.status).in_(done))
        if not recorded:
            return "nothing to correct"
        row = recorded[row_pick % len(recorded)]
        correct_outcome(
            session,
            key=self._key(patient, row),
            reason="entered on the wrong row",
            actor=ACTOR,
            registry=registry,
            now=self.clock(),
            expected_version=row.version,
            outcome=outcome,
            on=row.performed_on,
        )
        return f"corrected {row.id} {outcome}"

    def _undo(self, session: Session, registry: rules.ProtocolRegistry, *args: Any) -> str:
        patient = self._patient(session, args[0])
        latest = session.execute(
            select(OutcomeRecord, Assessment)
            .join(Assessment, col(Assessment.id) == col(OutcomeRecord.assessment_id))
            .where(col(Assessment.patient_id) == patient.id)
            .order_by(col(OutcomeRecord.id).desc())
            .limit(1)
        ).first()
        if latest is None:
            return "nothing to undo"
        row = latest.Assessment
        key = self._key(patient, row)
        undo_outcome(
            session,
            key=key,
            actor=ACTOR,
            registry=registry,
            now=self.clock(),
            expected_version=row.version,
        )
        return f"undid {row.id}"

    def _status(self, session: Session, registry: rules.ProtocolRegistry, *args: Any) -> str:
        patient = self._patient(session, args[0])
        other = "Erlangen" if patient.site_id == "Rome" else "Rome"
        change_status(
            session,
            study_id=patient.study_id,
            status=args[1],
            on=self._today(),
            reason="as the site wrote",
            actor=ACTOR,
            registry=registry,
            now=self.clock(),
            to_site=other if args[1] == "transferred" else None,
        )
        return f"{patient.study_id} {args[1]}"

    def _ack(self, session: Session, registry: rules.ProtocolRegistry, *args: Any) -> str:
        pick, row_pick, level = args
        patient = self._patient(session, pick)
        overdue = self._rows(
            session,
            patient,
            col(Assessment.status) == AssessmentStatus.pending.value,
            col(Assessment.window_end) < self._today(),
        )
        if not overdue:
            return "nothing to acknowledge"
        row = overdue[row_pick % len(overdue)]
        user = auth.principal_for(session, auth.get_user(session, ADMIN))
        operations.acknowledge(
            session, key=self._key(patient, row), level=level, note="called", user=user,
            now=self.clock(),
        )  # fmt: skip
        return f"acknowledged {row.id} at {level}"

    def _endpoint(self, session: Session, registry: rules.ProtocolRegistry, *args: Any) -> str:
        self.endpoints += 1
        events = "assessment.overdue,assessment.escalated,patient.follow_up_at_risk"
        endpoint = WebhookEndpoint(
            id=f"wh_{self.endpoints}", url="https://receiver.example/hooks", site_id=args[0],
            event_types=events, secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            created_at=self.clock(),
        )  # fmt: skip
        session.add(endpoint)
        return f"endpoint {endpoint.id}"

    def _scan(self, session: Session, registry: rules.ProtocolRegistry, *args: Any) -> str:
        on = self._today() - timedelta(days=3) if args[0] else None
        report = scan(
            session, now=self.clock(), overrides={}, registry=registry, on=on, full=self.full
        )
        self.reports.append(report)
        return f"scanned: {report.created}"
