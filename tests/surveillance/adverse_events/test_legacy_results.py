"""Results stored as free text before results were typed: read into their declared types
(with a version, an audit row, a re-plan and the safety case the value opens), or flagged
for an investigator, never silently dropped; a second run changes nothing.

Legacy rows are made as the old version stored them: an outcome recorded, then its free
text written straight into ``assessments.result`` and ``outcomes.result``.
"""

from __future__ import annotations

import shutil
from datetime import date, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from support.factories import (
    CAR_T,
    add_sites,
    assessment_row,
    enroll_committed,
    replace_once,
    rows_of,
)
from support.legacy import store_free_text

import rules
from surveillance.adverse_events.legacy_results import (
    ACTOR,
    FLAG_REASON,
    MappingReport,
    map_stored_results,
)
from surveillance.adverse_events.results import correct_outcome
from surveillance.calendar.sync import rematerialize
from surveillance.kit.audit import AuditEntry
from surveillance.kit.db import read_session, write_session
from surveillance.patients.results_to_review import count_results_to_review, results_to_review
from surveillance.records.adverse_events import AdverseEventCase
from surveillance.records.patients import OutcomeRecord
from surveillance.records.queries import find_assessment

RCL = "ROM-101:1:rcl_test:1"
IGG = "ROM-101:1:immunoglobulins:1"


@pytest.fixture
def patient(engine: Engine, registry: rules.ProtocolRegistry, now: datetime) -> int:
    add_sites(engine)
    return enroll_committed(engine, registry, now)


def run_mapping(engine: Engine, registry: rules.ProtocolRegistry, now: datetime) -> MappingReport:
    with write_session(engine) as session:
        return map_stored_results(session, registry=registry, now=now)


def cases(engine: Engine) -> list[AdverseEventCase]:
    with read_session(engine) as session:
        return list(session.execute(select(AdverseEventCase)).scalars())


def audit_rows(engine: Engine, key: str) -> list[AuditEntry]:
    with read_session(engine) as session:
        statement = select(AuditEntry).where(AuditEntry.entity_key == key)  # type: ignore[arg-type]
        return list(session.execute(statement.order_by(AuditEntry.id)).scalars())  # type: ignore[arg-type]


def test_a_stored_positive_rcl_is_read_as_positive_and_now_opens_its_case(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    store_free_text(engine, registry, now, RCL, "Positive")
    with read_session(engine) as session:
        assert rows_of(session, "ROM-101", "rcl_confirm") == []  # the old text started nothing
    assert cases(engine) == []

    report = run_mapping(engine, registry, now)

    assert (report.checked, report.mapped, report.flagged) == (1, 1, 0)
    with read_session(engine) as session:
        _, row = find_assessment(session, RCL)
        assert (row.result, row.result_as_entered, row.version) == ("positive", None, 3)
        versions = session.execute(
            select(OutcomeRecord.result, OutcomeRecord.recorded_by)
            .where(OutcomeRecord.assessment_id == row.id)  # type: ignore[arg-type]
            .order_by(OutcomeRecord.id)  # type: ignore[arg-type]
        ).all()
        assert [tuple(v) for v in versions] == [("Positive", "test"), ("positive", ACTOR)]
        # What a positive starts is planned now: confirmation by culture, intensified testing.
        assert [r.status for r in rows_of(session, "ROM-101", "rcl_confirm")] == ["pending"]
    [case] = cases(engine)
    assert case.serious is True
    correction = audit_rows(engine, RCL)[-1]
    assert (correction.action, correction.actor) == ("correct_outcome", ACTOR)
    assert correction.reason == (
        "stored free text 'Positive' read as its declared value 'positive' "
        "(typed results, migration 0007)"
    )


def test_a_stored_quantity_is_converted_and_starts_what_its_value_starts(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    store_free_text(engine, registry, now, IGG, "350 mg/dL")
    with read_session(engine) as session:
        assert rows_of(session, "ROM-101", "ivig_course") == []

    report = run_mapping(engine, registry, now)

    assert (report.mapped, report.flagged) == (1, 0)
    with read_session(engine) as session:
        assert find_assessment(session, IGG)[1].result == "350"
        assert rows_of(session, "ROM-101", "ivig_course") != []  # IgG below 400 mg/dL: IVIG
    assert cases(engine) == []  # an IgG declares no safety case


@pytest.mark.parametrize("stored", ["350.0", " 350", "+350", "350.4"])
def test_a_legacy_bare_number_the_old_engine_branched_on_keeps_what_it_started(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int, stored: str
) -> None:
    """Before types, a quantity was a bare number in the rule's unit: read it so (rounded
    to the precision kept), not flagged, or the IVIG it started would be re-planned away."""
    store_free_text(engine, registry, now, IGG, stored)
    with write_session(engine) as session:  # the old engine had planned from it
        owner, _ = find_assessment(session, IGG)
        protocol = registry.get(owner.protocol_id, owner.protocol_version)
        rematerialize(session, owner, protocol, cause="old engine", actor="test", now=now)
    with read_session(engine) as session:
        before = [r.status for r in rows_of(session, "ROM-101", "ivig_course")]
    assert before
    assert set(before) == {"pending"}

    report = run_mapping(engine, registry, now)

    assert (report.mapped, report.flagged) == (1, 0)
    with read_session(engine) as session:
        assert find_assessment(session, IGG)[1].result == "350"
        assert [r.status for r in rows_of(session, "ROM-101", "ivig_course")] == before


def test_a_case_a_stored_result_opens_late_is_known_today(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    """Its reporting clocks start when the sponsor learns of it (the mapping's day), not
    on the sample's date years ago: they would all be overdue before anyone could act."""
    store_free_text(engine, registry, now, RCL, "Positive")
    run_mapping(engine, registry, now)
    [case] = cases(engine)
    with read_session(engine) as session:
        performed = find_assessment(session, RCL)[1].performed_on
    assert performed is not None
    assert (case.onset_date, case.awareness_date) == (performed, now.date())


def test_text_no_declared_value_matches_is_flagged_listed_then_corrected(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    store_free_text(engine, registry, now, RCL, "Positive by qPCR")

    report = run_mapping(engine, registry, now)

    assert (report.checked, report.mapped, report.flagged) == (1, 0, 1)
    assert report.flagged_keys == [RCL]
    with read_session(engine) as session:
        _, row = find_assessment(session, RCL)
        assert (row.status, row.result, row.result_as_entered) == (
            "completed",
            None,
            "Positive by qPCR",
        )
        [listed] = results_to_review(session, site_id="Rome", registry=registry)
        assert count_results_to_review(session, ["Rome", "Erlangen"]) == {"Rome": 1}
        assert results_to_review(session, site_id="Erlangen", registry=registry) == []
    assert (listed.key, listed.study_id, listed.as_entered, listed.version) == (
        RCL,
        "ROM-101",
        "Positive by qPCR",
        row.version,
    )
    assert listed.name.startswith("Replication-competent lentivirus (RCL) test")
    assert listed.expects == "one of negative, positive, indeterminate, sample_not_evaluable"
    assert listed.recorded_by == "test"  # who typed the text, not the mapping
    flag = audit_rows(engine, RCL)[-1]
    assert (flag.action, flag.actor, flag.reason) == ("flag_result", ACTOR, FLAG_REASON)
    assert '"result_as_entered": "Positive by qPCR"' in (flag.new_values or "")
    assert cases(engine) == []

    # The investigator reads the lab report and types the value, with a reason.
    with write_session(engine) as session:
        correct_outcome(
            session,
            key=RCL,
            result="positive",
            reason="qPCR positive per lab report",
            actor="investigator@rome.example",
            registry=registry,
            now=now,
            expected_version=row.version,
        )
    with read_session(engine) as session:
        _, row = find_assessment(session, RCL)
        assert (row.result, row.result_as_entered) == ("positive", None)
        assert results_to_review(session, site_id="Rome", registry=registry) == []
        assert count_results_to_review(session, ["Rome"]) == {}
    assert len(cases(engine)) == 1


def test_a_correction_the_checks_refuse_is_flagged_instead(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    """A legacy row dated before the infusion: the correction is refused, so it is flagged
    (and the refused attempt leaves nothing behind)."""
    store_free_text(engine, registry, now, RCL, "POSITIVE", on=date(2023, 1, 5))

    report = run_mapping(engine, registry, now)

    assert (report.mapped, report.flagged, report.flagged_keys) == (0, 1, [RCL])
    with read_session(engine) as session:
        _, row = find_assessment(session, RCL)
        assert (row.result, row.result_as_entered, row.version) == (None, "POSITIVE", 3)
    assert cases(engine) == []
    assert [a.action for a in audit_rows(engine, RCL)][-1] == "flag_result"


def test_a_second_run_changes_nothing(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    store_free_text(engine, registry, now, RCL, "Positive")
    store_free_text(engine, registry, now, IGG, "low")
    store_free_text(engine, registry, now, "ROM-101:1:tanner_staging:1", "4")
    first = run_mapping(engine, registry, now)
    assert (first.checked, first.already_typed, first.mapped, first.flagged) == (3, 1, 1, 1)
    with read_session(engine) as session:
        audit_count = session.execute(select(func.count()).select_from(AuditEntry)).scalar()
        outcome_count = session.execute(select(func.count()).select_from(OutcomeRecord)).scalar()

    second = run_mapping(engine, registry, now)

    assert (second.checked, second.already_typed, second.mapped, second.flagged) == (2, 2, 0, 0)
    with read_session(engine) as session:
        assert session.execute(select(func.count()).select_from(AuditEntry)).scalar() == (
            audit_count
        )
        assert session.execute(select(func.count()).select_from(OutcomeRecord)).scalar() == (
            outcome_count
        )
    assert len(cases(engine)) == 1


def test_an_undeclared_free_text_result_is_left_as_it_is(
    engine: Engine, registry: rules.ProtocolRegistry, now: datetime, patient: int
) -> None:
    key = "ROM-101:1:bcell_cd19:1"
    store_free_text(engine, registry, now, key, "CD19+ back, 12 cells/uL")
    before = audit_rows(engine, key)

    report = run_mapping(engine, registry, now)

    assert (report.checked, report.mapped, report.flagged) == (0, 0, 0)
    with read_session(engine) as session:
        _, row = find_assessment(session, key)
        assert (row.result, row.result_as_entered, row.version) == (
            "CD19+ back, 12 cells/uL",
            None,
            2,
        )
    assert audit_rows(engine, key) == before


def test_text_stored_for_an_assessment_without_a_result_becomes_its_note(
    engine: Engine, now: datetime, tmp_path: Path
) -> None:
    """A site's protocol declares ``type: none`` for lymphocyte subsets: text stored as
    their result is kept as the note."""
    shutil.copy(rules.BUNDLED_PROTOCOLS / f"{CAR_T}.yaml", tmp_path / f"{CAR_T}.yaml")
    path = tmp_path / f"{CAR_T}.yaml"
    path.write_text(
        replace_once(
            path.read_text(encoding="utf-8"),
            "    name: CD3/CD4/CD8/NK lymphocyte subsets\n",
            "    name: CD3/CD4/CD8/NK lymphocyte subsets\n    result: {type: none}\n",
        ),
        encoding="utf-8",
    )
    registry = rules.ProtocolRegistry.from_directory(tmp_path)
    add_sites(engine)
    enroll_committed(engine, registry, now)
    key = "ROM-101:1:cd4_subsets:1"
    store_free_text(engine, registry, now, key, "CD4 180/uL")

    report = run_mapping(engine, registry, now)

    assert (report.checked, report.moved_to_note, report.flagged) == (1, 1, 0)
    with read_session(engine) as session:
        _, row = find_assessment(session, key)
        assert (row.result, row.note, row.result_as_entered) == (None, "CD4 180/uL", None)
        assert assessment_row(session, "ROM-101", "cd4_subsets", 1).version == 3
    assert audit_rows(engine, key)[-1].action == "result_to_note"
    assert run_mapping(engine, registry, now).checked == 0
