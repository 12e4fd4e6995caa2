"""Enrolment: the stored calendar is the engine's plan; impossible facts write nothing."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, select
from support.factories import (
    AAV,
    CAR_T,
    add_rome,
    add_sites,
    count,
    enroll_one,
    enrolment,
    rows_of,
)

import rules
from surveillance.errors import Conflict, InvalidInput, NotFound, SurveillanceError
from surveillance.kit.audit import AuditEntry
from surveillance.kit.db import read_session, write_session
from surveillance.patients.enrolment import enroll
from surveillance.records import sites
from surveillance.records.patients import (
    Assessment,
    Infusion,
    Patient,
    PatientStatus,
    assessment_key,
)

# Just before midnight UTC: already 26 November in Rome, still 25 November in New York.
LATE_EVENING_UTC = datetime(2026, 11, 25, 23, 30, tzinfo=UTC)


def _written(engine: Engine) -> dict[str, int]:
    with read_session(engine) as session:
        return {
            "patients": count(session, Patient),
            "infusions": count(session, Infusion),
            "assessments": count(session, Assessment),
            "audit": count(session, AuditEntry),
        }


NOTHING = {"patients": 0, "infusions": 0, "assessments": 0, "audit": 0}


def _refused(
    engine: Engine,
    registry: rules.ProtocolRegistry,
    now: datetime,
    error: type[SurveillanceError],
    match: str,
    **overrides: Any,
) -> None:
    """Enrolment is refused with ``error`` before anything is written.

    The caller's transaction catches the error and commits: anything the service had
    flushed before refusing would be kept, so this checks "refused before writing",
    not merely "rolled back".
    """
    with write_session(engine) as session:
        with pytest.raises(error, match=match):
            enroll_one(session, registry, now, **overrides)
    assert _written(engine) == NOTHING


def test_enrolment_stores_the_engines_calendar_with_its_protocol_version(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime
) -> None:
    add_sites(engine)
    with write_session(engine) as session:
        patient = enroll_one(session, registry, now)

    protocol = registry.get(CAR_T)
    expected = rules.build_calendar(
        protocol, rules.PatientFacts(date(2014, 3, 1), "sle", "F"), [date(2024, 1, 31)]
    )
    with read_session(engine) as session:
        stored = rows_of(session, "ROM-101")
        infusions = list(session.execute(select(Infusion)).scalars())
        audit_rows = list(session.execute(select(AuditEntry)).scalars())

    assert patient.protocol_id == CAR_T
    assert patient.protocol_version == protocol.version == "1.1"  # the newest: the default
    assert patient.status == PatientStatus.active.value
    assert len(stored) == len(expected) > 200

    def identity(row: Assessment) -> tuple[Any, ...]:
        return (
            row.infusion_number,
            row.assessment,
            row.occurrence,
            row.category,
            row.due_on,
            row.window_start,
            row.window_end,
            row.protocol_id,
            row.protocol_version,
            row.reason,
        )

    assert sorted(identity(row) for row in stored) == sorted(
        (
            p.infusion,
            p.assessment,
            p.occurrence,
            p.category,
            p.due,
            p.window_start,
            p.window_end,
            p.protocol,
            p.protocol_version,
            p.reason,
        )
        for p in expected
    )
    assert {row.status for row in stored} == {"pending"}
    assert {row.site_id for row in stored} == {"Rome"}
    assert {row.patient_id for row in stored} == {patient.id}

    assert [(i.patient_id, i.number, i.infused_on, i.protocol_version) for i in infusions] == [
        (patient.id, 1, date(2024, 1, 31), "1.1")
    ]
    assert [(a.action, a.entity_key, a.patient_id) for a in audit_rows] == [
        ("enroll", "ROM-101", patient.id)
    ]
    new_values = json.loads(audit_rows[0].new_values or "{}")
    assert new_values["protocol"] == f"{CAR_T} 1.1"
    assert new_values["infusion_date"] == "2024-01-31"
    assert new_values["assessments_planned"] == len(expected)


def test_a_cohort_is_enrolled_in_one_call_each_with_its_own_calendar(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime
) -> None:
    add_sites(engine)
    cohort = [
        enrolment(study_id="ROM-101"),
        enrolment(study_id="ROM-102", diagnosis="ssc", birth_date=date(2010, 6, 15)),
        enrolment(study_id="ERL-001", site_id="Erlangen", diagnosis="jdm", sex="M"),
        enrolment(
            study_id="ERL-002",
            site_id="Erlangen",
            protocol_id=AAV,
            diagnosis="hemophilia_b",
            birth_date=date(1990, 5, 1),
            sex="M",
        ),
    ]
    with write_session(engine) as session:
        ids = enroll(session, cohort, registry=registry, now=now, actor="test")

    assert sorted(ids) == sorted(e.study_id for e in cohort)
    assert len(set(ids.values())) == 4
    with read_session(engine) as session:
        for wanted in cohort:
            patient = session.get(Patient, ids[wanted.study_id])
            assert patient is not None
            assert (patient.study_id, patient.site_id, patient.diagnosis) == (
                wanted.study_id,
                wanted.site_id,
                wanted.diagnosis,
            )
            plan = rules.build_calendar(
                registry.get(wanted.protocol_id),
                rules.PatientFacts(wanted.birth_date, wanted.diagnosis, wanted.sex),
                [wanted.infusion_date],
            )
            stored = rows_of(session, wanted.study_id)
            assert sorted((r.assessment, r.occurrence, r.due_on) for r in stored) == sorted(
                (p.assessment, p.occurrence, p.due) for p in plan
            )
            assert {r.site_id for r in stored} == {wanted.site_id}
        # Diagnosis-specific rules follow the diagnosis.
        assert rows_of(session, "ROM-102", "ssc_activity")
        assert not rows_of(session, "ROM-102", "sle_activity")
        assert rows_of(session, "ERL-001", "jdm_activity")
        assert count(session, AuditEntry) == 4


def test_infusion_before_birth_is_refused(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime
) -> None:
    add_sites(engine)
    _refused(
        engine,
        registry,
        now,
        InvalidInput,
        "infusion date 2014-02-01 is before the birth date 2014-03-01",
        infusion_date=date(2014, 2, 1),
    )


def test_infusion_in_the_future_is_refused(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime
) -> None:
    add_sites(engine)
    _refused(
        engine,
        registry,
        now,
        InvalidInput,
        r"infusion date 2026-11-26 is in the future \(today at Rome is 2026-11-25\)",
        infusion_date=date(2026, 11, 26),
    )


def test_birth_in_the_future_is_refused(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime
) -> None:
    add_sites(engine)
    _refused(
        engine,
        registry,
        now,
        InvalidInput,
        "birth date 2027-01-01 is in the future",
        birth_date=date(2027, 1, 1),
        infusion_date=date(2027, 1, 2),
    )


def test_today_is_the_sites_local_date_not_utc(
    engine: Engine, registry: rules.ProtocolRegistry
) -> None:
    """At 23:30 UTC it is already tomorrow in Rome: an infusion today in Rome is accepted."""
    add_sites(engine)
    with write_session(engine) as session:
        sites.add_site(session, site_id="Boston", name="Boston", timezone="America/New_York")

    with write_session(engine) as session:
        patient = enroll_one(session, registry, LATE_EVENING_UTC, infusion_date=date(2026, 11, 26))
    with read_session(engine) as session:
        infused = session.execute(
            select(Infusion.infused_on).where(Infusion.patient_id == patient.id)
        ).scalar_one()
        assert infused == date(2026, 11, 26)
        assert rows_of(session, "ROM-101")

    # Same instant in Boston is still 25 November: the same date is in the future there.
    with write_session(engine) as session:
        with pytest.raises(InvalidInput, match=r"in the future \(today at Boston is 2026-11-25\)"):
            enroll_one(
                session,
                registry,
                LATE_EVENING_UTC,
                study_id="BOS-001",
                site_id="Boston",
                infusion_date=date(2026, 11, 26),
            )
    with read_session(engine) as session:
        assert session.execute(select(Patient.study_id)).scalars().all() == ["ROM-101"]


def test_unknown_protocol_is_refused(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime
) -> None:
    add_sites(engine)
    _refused(
        engine,
        registry,
        now,
        InvalidInput,
        "unknown protocol 'cd20-car-t'",
        protocol_id="cd20-car-t",
    )


def test_unknown_diagnosis_is_refused(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime
) -> None:
    add_sites(engine)
    _refused(
        engine,
        registry,
        now,
        InvalidInput,
        "ROM-101: diagnosis 'ra' is not covered by cd19-car-t-pediatric-autoimmune",
        diagnosis="ra",
    )


@pytest.mark.parametrize("study_id", ["Maria Rossi", "rom-101", "RO", "-ROM-1", "ROM_101"])
def test_a_study_id_that_is_not_pseudonymous_is_refused(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, study_id: str
) -> None:
    add_sites(engine)
    _refused(engine, registry, now, InvalidInput, "not a pseudonymous id", study_id=study_id)


def test_a_sex_other_than_f_or_m_is_refused(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime
) -> None:
    add_sites(engine)
    _refused(engine, registry, now, InvalidInput, "sex must be F or M", sex="female")


def test_unknown_site_is_not_found(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime
) -> None:
    add_sites(engine)
    _refused(
        engine,
        registry,
        now,
        NotFound,
        "unknown site 'Milan'; known: Erlangen, Rome",
        site_id="Milan",
    )


def test_a_study_id_enrolled_twice_is_a_conflict(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime
) -> None:
    add_sites(engine)
    with write_session(engine) as session:
        enroll_one(session, registry, now)
    before = _written(engine)

    with write_session(engine) as session:
        with pytest.raises(Conflict, match="already enrolled: ROM-101"):
            enroll_one(session, registry, now, diagnosis="jdm")
    assert _written(engine) == before
    with read_session(engine) as session:
        patient = session.execute(select(Patient)).scalar_one()
        assert patient.diagnosis == "sle"


def test_a_study_id_given_twice_in_one_batch_is_a_conflict(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime
) -> None:
    add_sites(engine)
    with write_session(engine) as session:
        with pytest.raises(Conflict, match="study id given twice: ROM-101"):
            enroll(
                session,
                [enrolment(), enrolment(study_id="ROM-102"), enrolment()],
                registry=registry,
                now=now,
                actor="test",
            )
    assert _written(engine) == NOTHING


def test_one_bad_row_refuses_the_whole_batch(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime
) -> None:
    add_sites(engine)
    good = [enrolment(study_id=f"ROM-{n}") for n in (101, 102, 104)]
    bad = enrolment(study_id="ROM-103", infusion_date=date(2013, 1, 1))
    with write_session(engine) as session:
        with pytest.raises(InvalidInput, match="ROM-103: infusion date 2013-01-01 is before"):
            enroll(session, [*good[:2], bad, good[2]], registry=registry, now=now, actor="test")
    assert _written(engine) == NOTHING

    # Without the bad row the same batch goes in (so the refusal above was about that row).
    with write_session(engine) as session:
        enroll(session, good, registry=registry, now=now, actor="test")
    written = _written(engine)
    assert written["patients"] == 3
    assert written["infusions"] == 3
    assert written["audit"] == 3


def test_a_batch_failing_after_validation_rolls_back_everything(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime
) -> None:
    """The transaction is the unit: an error after the inserts leaves nothing behind."""
    with write_session(engine) as session:
        add_rome(session)

    class Boom(Exception):
        pass

    written_inside: list[int] = []

    def enrol_then_fail() -> None:
        with write_session(engine) as session:
            enroll(session, [enrolment()], registry=registry, now=now, actor="test")
            written_inside.append(count(session, Assessment))
            raise Boom

    with pytest.raises(Boom):
        enrol_then_fail()
    assert written_inside[0] > 0  # written inside the transaction...
    assert _written(engine) == NOTHING  # ...and gone with it


def test_assessment_keys_name_patient_infusion_rule_and_occurrence() -> None:
    assert assessment_key("ROM-101", 1, "rcl_test", 2) == "ROM-101:1:rcl_test:2"
