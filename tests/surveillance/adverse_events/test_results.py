"""A result the protocol declares a safety event opens a serious case when it is recorded;
recording through the patients package alone opens none."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import Engine, select
from support.factories import ACTOR, add_sites, assessment_row, enroll_committed, record

import rules
from surveillance.errors import InvalidInput
from surveillance.kit.db import read_session, write_session
from surveillance.patients.outcomes import record_outcome_without_safety_case
from surveillance.records.adverse_events import AdverseEventCase, AdverseEventVersion

KEY = "ROM-101:1:rcl_test:1"


@pytest.fixture
def patient(engine: Engine, registry: rules.ProtocolRegistry, now: datetime) -> int:
    add_sites(engine)
    return enroll_committed(engine, registry, now)


def _cases(engine: Engine) -> list[tuple[AdverseEventCase, AdverseEventVersion]]:
    with read_session(engine) as session:
        return [
            (case, version)
            for case, version in session.execute(
                select(AdverseEventCase, AdverseEventVersion).join(
                    AdverseEventVersion,
                    AdverseEventVersion.case_id == AdverseEventCase.case_id,  # type: ignore[arg-type]
                )
            ).all()
        ]


def test_a_positive_rcl_result_opens_the_case_the_protocol_declares(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    with write_session(engine) as session:
        record(session, registry, now, KEY, result=" Positive ")
        on = assessment_row(session, "ROM-101", "rcl_test", 1).performed_on
    [(case, version)] = _cases(engine)
    assert case.serious is True
    facts = (
        version.term, version.category, version.serious, version.seriousness_criteria,
        version.relatedness, version.expected, version.outcome, version.onset_date,
        version.awareness_date, version.reporter_qualification, version.source,
        version.recorded_by,
    )  # fmt: skip
    assert facts == (
        "Replication-competent lentivirus (RCL) detected", "other", True,
        "other_medically_important", "related", False, "unknown", on, on,
        "other_health_professional", f"assessment {KEY}", ACTOR,
    )  # fmt: skip
    assert version.narrative == (
        f"Positive RCL result recorded for {KEY}, sample of {on}. Recorded automatically as a "
        "serious safety event; confirmation by culture assay and intensified testing are "
        "scheduled by the protocol. Add a follow-up version with the clinical details."
    )


@pytest.mark.parametrize(
    ("key", "result"),
    [
        (KEY, "negative"),
        ("ROM-101:1:tanner_staging:1", "5"),  # a rule that declares no safety case
    ],
)
def test_other_results_open_no_case(
    engine: Engine,
    registry: rules.ProtocolRegistry,
    now: datetime,
    patient: int,
    key: str,
    result: str,
) -> None:
    with write_session(engine) as session:
        record(session, registry, now, key, result=result)
    assert _cases(engine) == []


def test_the_patients_level_recording_opens_no_case(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    with write_session(engine) as session:
        row = assessment_row(session, "ROM-101", "rcl_test", 1)
        recorded = record_outcome_without_safety_case(
            session,
            key=KEY,
            outcome="completed",
            on=row.due_on,
            result="positive",
            actor=ACTOR,
            registry=registry,
            now=now,
        )
        assert recorded.assessment.status == "completed"
    assert _cases(engine) == []


def test_a_result_its_assessment_cannot_produce_is_refused_and_nothing_is_stored(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    """'Positive by qPCR' used to be stored and start nothing; now it is refused."""
    with write_session(engine) as session:
        with pytest.raises(InvalidInput, match="is not one of the coded values: negative"):
            record(session, registry, now, KEY, result="Positive by qPCR")
    with read_session(engine) as session:
        row = assessment_row(session, "ROM-101", "rcl_test", 1)
        assert (row.status, row.result) == ("pending", None)
    assert _cases(engine) == []


def test_a_typed_result_is_stored_as_its_code_and_opens_the_case(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    with write_session(engine) as session:
        recorded = record(session, registry, now, KEY, result=" POSITIVE ")
        assert recorded.assessment.result == "positive"
    assert len(_cases(engine)) == 1
