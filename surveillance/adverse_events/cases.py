"""Recording adverse events: a new case, a follow-up version, a nullification.

Each change, in one transaction: a new immutable version (a feed entry), the case's
latest state, an audit row with the old and new values, the alerts in the outbox, and
the calendar re-planned through the rules engine (tumour testing after a malignancy,
reporting clocks for a serious case; a fatal case marks the patient deceased).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

import rules
from surveillance.adverse_events import outbox
from surveillance.adverse_events.facts import CaseFacts, check, is_pre_existing
from surveillance.adverse_events.feed import number_at_commit
from surveillance.adverse_events.views import case_content, criteria_of
from surveillance.calendar.sync import CalendarChange, rematerialize
from surveillance.errors import Conflict, InvalidInput, NotFound
from surveillance.kit import audit
from surveillance.kit.concurrency import check_version
from surveillance.kit.text import single_line
from surveillance.patients.changes import change_status
from surveillance.protocols.registry import get_protocol
from surveillance.records.adverse_event_vocabulary import (
    CaseOutcome,
    CaseStatus,
    Category,
    Change,
    GradeScale,
    Relatedness,
    ReporterQualification,
    Seriousness,
)
from surveillance.records.adverse_events import AdverseEventCase, AdverseEventVersion
from surveillance.records.patients import FOLLOWED_STATUSES, Patient, PatientStatus
from surveillance.records.queries import get_patient, infusion_dates
from surveillance.records.sites import get_site, today_at


@dataclass(frozen=True)
class CaseChange:
    case: AdverseEventCase
    version: AdverseEventVersion
    calendar: CalendarChange
    deceased: bool = False  # the patient was marked deceased by this change


def create_case(
    session: Session,
    *,
    study_id: str,
    facts: CaseFacts,
    actor: str,
    registry: rules.ProtocolRegistry,
    now: datetime,
    source: str | None = None,
) -> CaseChange:
    """A new case for a patient: version 1."""
    patient = get_patient(session, study_id, for_update=True)
    facts, pre_existing = _checked(session, patient, facts, now)
    assert patient.id is not None
    number = 1 + int(
        session.execute(
            select(func.count()).where(col(AdverseEventCase.patient_id) == patient.id)
        ).scalar_one()
    )
    case = AdverseEventCase(
        case_id=f"{study_id}-AE{number:02d}",
        patient_id=patient.id,
        number=number,
        site_id=patient.site_id,
        version=0,
        status=CaseStatus.open.value,
        term=facts.term,
        category=facts.category.value,
        serious=facts.serious,
        onset_date=facts.onset_date,
        awareness_date=facts.awareness_date,
        outcome=facts.outcome.value,
        created_at=now,
        updated_at=now,
    )
    session.add(case)
    session.flush()
    return _store(
        session,
        patient,
        case,
        None,
        facts,
        Change.created,
        pre_existing=pre_existing,
        source=source,
        actor=actor,
        registry=registry,
        now=now,
    )


def add_follow_up(
    session: Session,
    *,
    case_id: str,
    facts: CaseFacts,
    actor: str,
    registry: rules.ProtocolRegistry,
    now: datetime,
    expected_version: int | None = None,
) -> CaseChange:
    """New information on a case: the next version, the earlier ones kept as they were."""
    case, patient, previous = _open_case(session, case_id, expected_version)
    facts, pre_existing = _checked(session, patient, facts, now)
    assert facts.last_info_date is not None
    if facts.last_info_date < previous.last_info_date:
        raise InvalidInput(
            f"last_info_date: {facts.last_info_date} is before the previous version's "
            f"{previous.last_info_date}"
        )
    return _store(
        session,
        patient,
        case,
        previous,
        facts,
        Change.updated,
        pre_existing=pre_existing,
        source=previous.source,
        actor=actor,
        registry=registry,
        now=now,
    )


def nullify_case(
    session: Session,
    *,
    case_id: str,
    reason: str,
    actor: str,
    registry: rules.ProtocolRegistry,
    now: datetime,
    expected_version: int | None = None,
) -> CaseChange:
    """A case entered in error: a last version says so; nothing is deleted."""
    single_line(reason, "reason")
    if not reason or not reason.strip():
        raise InvalidInput(
            "reason: say why the case is nullified (e.g. 'entered for the wrong patient')"
        )
    case, patient, previous = _open_case(session, case_id, expected_version)
    facts = facts_of(previous)
    today = today_at(session, patient.site_id, now)
    facts = replace(facts, last_info_date=max(today, previous.last_info_date))
    return _store(
        session,
        patient,
        case,
        previous,
        facts,
        Change.nullified,
        pre_existing=previous.pre_existing,
        source=previous.source,
        actor=actor,
        registry=registry,
        now=now,
        nullify_reason=reason.strip(),
    )


def get_case(session: Session, case_id: str, *, for_update: bool = False) -> AdverseEventCase:
    statement = select(AdverseEventCase).where(col(AdverseEventCase.case_id) == case_id)
    if for_update:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    case: AdverseEventCase | None = session.execute(statement).scalar_one_or_none()
    if case is None:
        raise NotFound(f"no adverse event case {case_id!r}")
    return case


def versions_of(session: Session, case_id: str) -> list[AdverseEventVersion]:
    return list(
        session.execute(
            select(AdverseEventVersion)
            .where(col(AdverseEventVersion.case_id) == case_id)
            .order_by(col(AdverseEventVersion.version))
        ).scalars()
    )


def version_of(session: Session, case_id: str, version: int) -> AdverseEventVersion:
    """One version of a case (``NotFound`` if there is no such version)."""
    found: AdverseEventVersion | None = session.execute(
        select(AdverseEventVersion).where(
            col(AdverseEventVersion.case_id) == case_id,
            col(AdverseEventVersion.version) == version,
        )
    ).scalar_one_or_none()
    if found is None:
        raise NotFound(f"no version {version} of adverse event case {case_id!r}")
    return found


def content_of(
    session: Session,
    version: AdverseEventVersion,
    registry: rules.ProtocolRegistry,
    patient: Patient | None = None,
) -> dict[str, Any]:
    """One version as the API, the webhooks and the feed show it."""
    case = session.get(AdverseEventCase, version.case_id)
    assert case is not None
    patient = patient or session.get(Patient, case.patient_id)
    assert patient is not None
    site = get_site(session, case.site_id)
    return case_content(
        version,
        study_id=patient.study_id,
        site_id=case.site_id,
        country=site.country if site else None,
        sex=patient.sex,
        birth_date=patient.birth_date,
        protocol_id=patient.protocol_id,
        protocol_version=patient.protocol_version,
        registry=registry,
    )


def facts_of(version: AdverseEventVersion) -> CaseFacts:
    """A stored version's content as facts (the starting point of a follow-up form)."""
    return CaseFacts(
        onset_date=version.onset_date,
        awareness_date=version.awareness_date,
        term=version.term,
        category=Category(version.category),
        serious=version.serious,
        relatedness=Relatedness(version.relatedness),
        expected=version.expected,
        outcome=CaseOutcome(version.outcome),
        end_date=version.end_date,
        meddra_code=version.meddra_code,
        meddra_version=version.meddra_version,
        grade=version.grade,
        grade_scale=GradeScale(version.grade_scale) if version.grade_scale else None,
        seriousness_criteria=tuple(Seriousness(c) for c in criteria_of(version)),
        narrative=version.narrative,
        reporter_qualification=ReporterQualification(version.reporter_qualification),
        last_info_date=version.last_info_date,
    )


# -- the steps -------------------------------------------------------------------------


def _checked(
    session: Session, patient: Patient, facts: CaseFacts, now: datetime
) -> tuple[CaseFacts, bool]:
    facts = check(
        facts, birth_date=patient.birth_date, today=today_at(session, patient.site_id, now)
    )
    first_infusion = min(infusion_dates(session, patient.id).values())
    if facts.fatal and facts.death_date < first_infusion:
        raise InvalidInput(
            f"end_date: a death on {facts.death_date} would be before the infusion on "
            f"{first_infusion}"
        )
    return facts, is_pre_existing(facts, first_infusion)


def _open_case(
    session: Session, case_id: str, expected_version: int | None
) -> tuple[AdverseEventCase, Patient, AdverseEventVersion]:
    case = get_case(session, case_id)
    patient = session.get(Patient, case.patient_id)
    assert patient is not None
    # The patient first, then the case: the same lock order as a new case takes.
    patient = get_patient(session, patient.study_id, for_update=True)
    case = get_case(session, case_id, for_update=True)
    if case.status == CaseStatus.nullified.value:  # whatever version the caller had
        raise Conflict(f"{case_id} was nullified; record a new case instead")
    check_version(expected_version, case.version, case_id)
    previous = versions_of(session, case_id)[-1]
    return case, patient, previous


def _store(
    session: Session,
    patient: Patient,
    case: AdverseEventCase,
    previous: AdverseEventVersion | None,
    facts: CaseFacts,
    change: Change,
    *,
    pre_existing: bool,
    source: str | None,
    actor: str,
    registry: rules.ProtocolRegistry,
    now: datetime,
    nullify_reason: str | None = None,
) -> CaseChange:
    version = next_version_row(
        case,
        facts,
        change,
        pre_existing=pre_existing,
        source=source,
        nullify_reason=nullify_reason,
        actor=actor,
        now=now,
    )
    number_at_commit(session, version)
    session.add(version)
    mirror_latest_version(case, version, change, now)
    session.add(case)
    session.flush()
    content = content_of(session, version, registry, patient)
    old = content_of(session, previous, registry, patient) if previous else None
    audit.record(
        session,
        actor=actor,
        action=f"adverse_event_{change.value}",
        entity="adverse_event",
        entity_key=case.case_id,
        patient_id=patient.id,
        reason=nullify_reason,
        old=audited_content(old),
        new=audited_content(content),
        at=now,
    )
    outbox.case_changed(
        session,
        case=case,
        version=version,
        content=content,
        was_serious=bool(previous and previous.serious),
        now=now,
    )
    calendar = _replan(session, patient, case, change, registry, actor=actor, now=now)
    deceased = False
    if facts.fatal and change is not Change.nullified and patient.status in FOLLOWED_STATUSES:
        calendar = change_status(
            session,
            study_id=patient.study_id,
            status=PatientStatus.deceased.value,
            on=facts.death_date,
            reason=f"fatal adverse event {case.case_id}: {facts.term}",
            actor=actor,
            registry=registry,
            now=now,
        )
        deceased = True
    return CaseChange(case, version, calendar, deceased)


def next_version_row(
    case: AdverseEventCase,
    facts: CaseFacts,
    change: Change,
    *,
    pre_existing: bool,
    source: str | None,
    nullify_reason: str | None,
    actor: str,
    now: datetime,
) -> AdverseEventVersion:
    """The case's next version: the whole case as now known (versions are never edited).
    The registry loader writes its versions with this very function."""
    assert facts.last_info_date is not None
    return AdverseEventVersion(
        case_id=case.case_id,
        version=case.version + 1,
        sequence=0,  # numbered at commit: ``number_at_commit``
        change=change.value,
        onset_date=facts.onset_date,
        end_date=facts.end_date,
        awareness_date=facts.awareness_date,
        last_info_date=facts.last_info_date,
        term=facts.term,
        meddra_code=facts.meddra_code,
        meddra_version=facts.meddra_version,
        category=facts.category.value,
        grade=facts.grade,
        grade_scale=facts.grade_scale.value if facts.grade_scale else None,
        serious=facts.serious,
        seriousness_criteria=",".join(c.value for c in facts.seriousness_criteria),
        relatedness=facts.relatedness.value,
        expected=facts.expected,
        outcome=facts.outcome.value,
        narrative=facts.narrative,
        pre_existing=pre_existing,
        reporter_qualification=facts.reporter_qualification.value,
        source=source,
        nullify_reason=nullify_reason,
        recorded_by=actor,
        recorded_at=now,
    )


def mirror_latest_version(
    case: AdverseEventCase, version: AdverseEventVersion, change: Change, now: datetime
) -> None:
    """The case row mirrors its latest version (what lists and scans read). The registry
    loader updates its cases with this very function."""
    case.version = version.version
    case.status = (
        CaseStatus.nullified.value if change is Change.nullified else CaseStatus.open.value
    )
    case.term, case.category, case.grade = version.term, version.category, version.grade
    case.serious, case.outcome = version.serious, version.outcome
    case.onset_date, case.awareness_date = version.onset_date, version.awareness_date
    case.updated_at = now


def audited_content(content: dict[str, Any] | None) -> dict[str, Any] | None:
    """The clinical content (the patient's facts are audited elsewhere). The registry
    loader audits its cases with this very function."""
    if content is None:
        return None
    skip = {"product", "study_id", "site", "site_country", "sex", "age_at_onset_years"}
    return {k: v for k, v in content.items() if k not in skip}


def _replan(
    session: Session,
    patient: Patient,
    case: AdverseEventCase,
    change: Change,
    registry: rules.ProtocolRegistry,
    *,
    actor: str,
    now: datetime,
) -> CalendarChange:
    protocol = get_protocol(registry, patient.protocol_id, patient.protocol_version)
    cause = f"adverse event {case.case_id} {change.value}"
    return rematerialize(session, patient, protocol, cause=cause, actor=actor, now=now)
