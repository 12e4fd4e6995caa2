"""Recording a result, and the safety case the protocol says it opens.

This is the one way to record an outcome: the API, the web pages, the command line and
the demo all come here. A result the protocol declares a safety event in its own right
(``opens_safety_case``, e.g. a positive RCL test) opens a serious case in the same
transaction, which then alerts, starts reporting clocks and feeds like any other case.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlmodel import Session, col

import rules
from surveillance.adverse_events.cases import CaseChange, create_case
from surveillance.adverse_events.facts import CaseFacts
from surveillance.errors import Conflict, InvalidInput, PreconditionFailed, SurveillanceError
from surveillance.patients.outcomes import (
    RecordedOutcome,
    correct_outcome_without_safety_case,
    record_outcome_without_safety_case,
)
from surveillance.protocols.registry import get_protocol
from surveillance.records.adverse_event_vocabulary import (
    CaseOutcome,
    CaseStatus,
    Category,
    Relatedness,
    ReporterQualification,
    Seriousness,
)
from surveillance.records.adverse_events import AdverseEventCase, AdverseEventVersion
from surveillance.records.patients import Assessment, AssessmentStatus, Patient
from surveillance.records.queries import find_assessment
from surveillance.records.sites import get_site


@dataclass(frozen=True)
class RecordedResult(RecordedOutcome):
    """What recording did, with the safety case it opened (None: it opened none), so a
    caller can say so (``previews.effects_of``)."""

    case: CaseChange | None = None


def record_outcome(
    session: Session,
    *,
    key: str,
    outcome: str,
    on: date,
    result: str | None = None,
    reason: str | None = None,
    note: str | None = None,
    actor: str,
    registry: rules.ProtocolRegistry,
    now: datetime,
    expected_version: int | None = None,
) -> RecordedResult:
    """Record completed / missed / not_done for one pending assessment, re-plan, and open
    the safety case its protocol declares for this result."""
    recorded = record_outcome_without_safety_case(
        session,
        key=key,
        outcome=outcome,
        on=on,
        result=result,
        reason=reason,
        note=note,
        actor=actor,
        registry=registry,
        now=now,
        expected_version=expected_version,
    )
    case = _open_declared_case(session, recorded.assessment, key, registry, actor=actor, now=now)
    return RecordedResult(recorded.assessment, recorded.change, case)


@dataclass(frozen=True)
class OutcomeToRecord:
    """One assessment of a visit (or of a bulk "missed") as the nurse gave it."""

    key: str
    outcome: str
    on: date
    result: str | None = None
    reason: str | None = None
    note: str | None = None
    expected_version: int | None = None


class OutcomesRefused(InvalidInput):
    """Some of a visit's outcomes were refused, so none was recorded: ``errors`` says why,
    per assessment key (a 412 among them means someone changed a row meanwhile)."""

    def __init__(self, errors: dict[str, SurveillanceError]) -> None:
        super().__init__(f"{len(errors)} of the outcomes were refused; nothing was recorded")
        self.errors = errors

    @property
    def stale(self) -> bool:
        return any(isinstance(e, PreconditionFailed) for e in self.errors.values())


def record_outcomes(
    session: Session,
    entries: list[OutcomeToRecord],
    *,
    actor: str,
    registry: rules.ProtocolRegistry,
    now: datetime,
) -> list[RecordedResult]:
    """Record several outcomes (a visit; a bulk "missed") through ``record_outcome``, one
    by one in the caller's transaction: all or nothing. Every entry is tried, so that one
    refusal per row can be shown; if any was refused, ``OutcomesRefused`` is raised and
    the caller's transaction rolls back what the others wrote."""
    if not entries:
        raise InvalidInput("choose at least one assessment")
    done: list[RecordedResult] = []
    errors: dict[str, SurveillanceError] = {}
    for entry in entries:
        try:
            done.append(
                record_outcome(
                    session,
                    key=entry.key,
                    outcome=entry.outcome,
                    on=entry.on,
                    result=entry.result,
                    reason=entry.reason,
                    note=entry.note,
                    actor=actor,
                    registry=registry,
                    now=now,
                    expected_version=entry.expected_version,
                )
            )
        except (InvalidInput, Conflict, PreconditionFailed) as exc:
            errors[entry.key] = exc
    if errors:
        raise OutcomesRefused(errors)
    return done


def correct_outcome(
    session: Session,
    *,
    key: str,
    reason: str,
    actor: str,
    registry: rules.ProtocolRegistry,
    now: datetime,
    expected_version: int | None,
    outcome: str | None = None,
    on: date | None = None,
    result: str | None = None,
    note: str | None = None,
) -> RecordedResult:
    """Correct a recorded outcome (a new version, with a reason), re-plan, and open the
    safety case the corrected result declares if the old one did not (negative →
    positive opens it as a first positive would). A case already opened stays open: only
    a person can nullify it, with their reason; while it is open, a correction back to
    the result that opened it (positive → negative → positive) is that case's finding,
    not a second case."""
    before = _declares_case(session, key, registry) or _open_case_from(session, key)
    corrected = correct_outcome_without_safety_case(
        session,
        key=key,
        reason=reason,
        actor=actor,
        registry=registry,
        now=now,
        expected_version=expected_version,
        outcome=outcome,
        on=on,
        result=result,
        note=note,
    )
    case = None
    if not before:
        case = _open_declared_case(
            session, corrected.assessment, key, registry, actor=actor, now=now, late=True
        )
    return RecordedResult(corrected.assessment, corrected.change, case)


def open_case_never_opened(
    session: Session, *, key: str, registry: rules.ProtocolRegistry, actor: str, now: datetime
) -> bool:
    """Open the safety case the stored result declares unless a case was ever opened from
    this assessment (open or nullified: a person's decision stands). For results stored
    before they were typed and read into their type later: the old text may or may not
    have opened its case then."""
    _, row = find_assessment(session, key, for_update=True)  # one run at a time per row
    source = f"assessment {key}"
    opened = session.execute(
        select(col(AdverseEventVersion.id))
        .where(col(AdverseEventVersion.source) == source)
        .limit(1)
    ).first()
    if opened is not None:
        return False
    opened_now = _open_declared_case(session, row, key, registry, actor=actor, now=now, late=True)
    return opened_now is not None


def _open_case_from(session: Session, key: str) -> bool:
    """Whether a case opened from this assessment's result is still open (not nullified)."""
    opened = session.execute(
        select(col(AdverseEventCase.case_id))
        .join(
            AdverseEventVersion,
            col(AdverseEventVersion.case_id) == col(AdverseEventCase.case_id),
        )
        .where(
            col(AdverseEventVersion.source) == f"assessment {key}",
            col(AdverseEventCase.status) != CaseStatus.nullified.value,
        )
        .limit(1)
    ).first()
    return opened is not None


def _declares_case(session: Session, key: str, registry: rules.ProtocolRegistry) -> bool:
    """Whether the result as recorded now opened a case. Read under the row's lock (the
    correction takes the same one): two racing corrections cannot both see "no case yet"."""
    _, row = find_assessment(session, key, for_update=True)
    if row.status != AssessmentStatus.completed.value or row.result is None:
        return False
    protocol = get_protocol(registry, row.protocol_id, row.protocol_version)
    return protocol.safety_case(row.assessment, row.result) is not None


def _open_declared_case(
    session: Session,
    row: Assessment,
    key: str,
    registry: rules.ProtocolRegistry,
    *,
    actor: str,
    now: datetime,
    late: bool = False,
) -> CaseChange | None:
    """Open the case the row's result declares, if it declares one (None: it opens none).

    ``late``: the result is known only now (a correction, a stored text read later): the
    sponsor becomes aware today, and its reporting clocks start today, not on the day the
    sample was taken (they would all be overdue before anyone could act)."""
    if row.status != AssessmentStatus.completed.value or row.result is None:
        return None
    # The rule that planned this row says what its result means (read as stored: typed).
    protocol = get_protocol(registry, row.protocol_id, row.protocol_version)
    declared = protocol.safety_case(row.assessment, row.result)
    if declared is None:
        return None
    assert row.performed_on is not None
    patient = session.get(Patient, row.patient_id)
    assert patient is not None
    aware_on = get_site(session, patient.site_id).today(now) if late else row.performed_on
    return create_case(
        session,
        study_id=patient.study_id,
        facts=opened_case_facts(declared, key, row.performed_on, aware_on=aware_on),
        actor=actor,
        registry=registry,
        now=now,
        source=f"assessment {key}",
    )


def opened_case_facts(
    declared: rules.SafetyCase, key: str, on: date, *, aware_on: date | None = None
) -> CaseFacts:
    """The first version of a case a result opens.

    The protocol names the finding (term, narrative); the rest is what such a case is until
    a person adds a follow-up version: serious (medically important), related to the
    product (the finding is the vector's), unexpected, outcome unknown, known on the day of
    the result, reported by the system for the site's health professionals.
    """
    return CaseFacts(
        onset_date=on,
        awareness_date=max(on, aware_on or on),
        term=declared.term,
        category=Category.other,
        serious=True,
        seriousness_criteria=(Seriousness.other_medically_important,),
        relatedness=Relatedness.related,
        expected=False,
        outcome=CaseOutcome.unknown,
        narrative=declared.narrative_for(key, on),
        reporter_qualification=ReporterQualification.other_health_professional,
    )
