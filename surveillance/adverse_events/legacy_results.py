"""Results stored as free text before results were typed, read into their declared types.

Before migration 0007 a result was whatever was typed: "Positive" on an RCL test matched
no ``equals: positive`` branch and opened no safety case. This reads every stored result
of a rule that now declares a type:

- text the type reads ("Positive" → ``positive``, "350 mg/dL" → ``350``) is corrected to
  that value through ``correct_outcome``: a new version, an audit row, a re-plan, and the
  safety case the value declares (a stored positive RCL now opens its case);
- text it cannot read ("Positive by qPCR") is flagged: kept in ``result_as_entered``, the
  result emptied, for an investigator to correct (the site's "results to review" list);
- text stored for a rule that records no result (``type: none``) becomes the note.

Undeclared results are free-text remarks and stay as they are. A value already in its
type's form is skipped, so a second run changes nothing. ``surveillance db upgrade`` runs
it when it passes revision 0007; ``surveillance results map`` runs it on demand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlmodel import Session, col

import rules
from surveillance.adverse_events.results import correct_outcome, open_case_never_opened
from surveillance.calendar.sync import rematerialize
from surveillance.errors import Conflict, InvalidInput, UnknownProtocol
from surveillance.kit import audit
from surveillance.protocols.registry import get_protocol
from surveillance.records.patients import (
    Assessment,
    AssessmentStatus,
    OutcomeRecord,
    Patient,
    PatientStatus,
    assessment_key,
)
from surveillance.records.queries import find_assessment

ACTOR = "system:result-mapping"
# The schema revision that typed results; passing it is what runs the mapping.
TYPED_RESULTS_REVISION = "0007"
FLAG_REASON = "stored free text matches no declared value: needs a typed result"
NOTE_REASON = "this assessment records no result: stored text kept as its note"


@dataclass
class MappingReport:
    """What one run did. ``checked``: stored results of rules that declare a type."""

    checked: int = 0
    already_typed: int = 0
    mapped: int = 0
    flagged: int = 0
    moved_to_note: int = 0
    flagged_keys: list[str] = field(default_factory=list)
    # Rows whose protocol version is not loaded: their type is unknown, so left as stored.
    unknown_protocol_keys: list[str] = field(default_factory=list)
    awaiting: int = 0  # after the run, in all (flagged by this run or an earlier one)

    def summary(self) -> str:
        text = (
            f"typed results: {self.checked} stored results checked, {self.mapped} mapped, "
            f"{self.flagged} need a typed value"
        )
        earlier = self.awaiting - self.flagged
        if earlier > 0:
            text += f"; {earlier} flagged earlier still await one"
        if self.awaiting:
            text += " (surveillance results review --site SITE)"
        if self.moved_to_note:
            text += f", {self.moved_to_note} moved to the note"
        if self.unknown_protocol_keys:
            text += f", {len(self.unknown_protocol_keys)} left: protocol not loaded"
        return text


def map_stored_results(
    session: Session,
    *,
    registry: rules.ProtocolRegistry,
    now: datetime,
    actor: str = ACTOR,
) -> MappingReport:
    """Read every completed assessment's stored result into its declared type (see the
    module's docstring), inside the caller's transaction."""
    report = MappingReport()
    for key, protocol_id, version, rule_id, stored in _stored_results(session):
        try:
            protocol = get_protocol(registry, protocol_id, version)
        except UnknownProtocol:
            report.unknown_protocol_keys.append(key)
            continue
        spec = protocol.result_type(rule_id)
        if spec is None:
            continue  # a free-text remark: the engine never branches on it
        if not _still_stored(session, key, stored):
            continue  # changed since it was listed (a nurse, or another run): theirs stands
        report.checked += 1
        if isinstance(spec, rules.NoResult):
            _move_to_note(session, key, registry=registry, actor=actor, now=now)
            report.moved_to_note += 1
        elif protocol.is_stored_result(rule_id, stored):
            report.already_typed += 1
        elif _correct(session, protocol, rule_id, key, stored, registry, actor=actor, now=now):
            report.mapped += 1
        else:
            _flag(session, key, registry=registry, actor=actor, now=now)
            report.flagged += 1
            report.flagged_keys.append(key)
    report.awaiting = _awaiting(session)
    return report


def _still_stored(session: Session, key: str, stored: str) -> bool:
    """Lock the row for the rest of the run and check it still holds ``stored``: the list
    was read without locks, and a correction saved since then must not be overwritten."""
    _, row = find_assessment(session, key, for_update=True)
    return row.status == AssessmentStatus.completed.value and row.result == stored


def _legacy_text(protocol: rules.Protocol, rule_id: str, stored: str) -> str | None:
    """The stored text in a form its type reads, or None. Before types, a quantity was a
    bare number in the rule's unit, and the engine branched on it ("350.0", " 350"): read
    it so, or the follow-up it started would be re-planned away."""
    try:
        protocol.read_result(rule_id, stored)
        return stored
    except rules.InvalidResult:
        pass
    spec = protocol.result_type(rule_id)
    if isinstance(spec, rules.QuantityResult):
        in_unit = f"{stored.strip()} {spec.unit}"
        try:
            protocol.read_result(rule_id, in_unit)
            return in_unit
        except rules.InvalidResult:
            return None
    return None


def _awaiting(session: Session) -> int:
    statement = select(func.count()).where(col(Assessment.result_as_entered).is_not(None))
    return int(session.execute(statement).scalar_one())


def _stored_results(session: Session) -> list[tuple[str, str, str, str, str]]:
    """(key, protocol, version, rule, stored text) of every completed row with a result."""
    rows = session.execute(
        select(
            col(Patient.study_id),
            col(Assessment.infusion_number),
            col(Assessment.assessment),
            col(Assessment.occurrence),
            col(Assessment.protocol_id),
            col(Assessment.protocol_version),
            col(Assessment.result),
        )
        .join(Patient, col(Patient.id) == col(Assessment.patient_id))
        .where(
            col(Assessment.status) == AssessmentStatus.completed.value,
            col(Assessment.result).is_not(None),
        )
        .order_by(col(Assessment.id))
    ).all()
    return [
        (assessment_key(study_id, infusion, rule_id, occurrence), protocol, version, rule_id, text)
        for study_id, infusion, rule_id, occurrence, protocol, version, text in rows
    ]


def _correct(
    session: Session,
    protocol: rules.Protocol,
    rule_id: str,
    key: str,
    stored: str,
    registry: rules.ProtocolRegistry,
    *,
    actor: str,
    now: datetime,
) -> bool:
    """Correct the stored text to the value its type reads; False if it reads none, or if
    the correction is refused (a legacy date the checks now refuse): then it is flagged."""
    text = _legacy_text(protocol, rule_id, stored)
    if text is None:
        return False
    typed = protocol.read_result(rule_id, text)
    _, row = find_assessment(session, key, for_update=True)
    reason = (
        f"stored free text {stored!r} read as its declared value {typed!r} "
        f"(typed results, migration {TYPED_RESULTS_REVISION})"
    )
    try:
        # A savepoint: a refused correction leaves nothing half-written behind.
        with session.begin_nested():
            correct_outcome(
                session,
                key=key,
                reason=reason,
                # As stored (with its unit if it was a bare number): the correction
                # reads it (a bare number is refused where several units are accepted).
                result=text,
                actor=actor,
                registry=registry,
                now=now,
                expected_version=row.version,
            )
            # The old text may have matched its declaration (matching ignores case) and
            # so kept the correction from opening the case: open it if it never was.
            open_case_never_opened(session, key=key, registry=registry, actor=actor, now=now)
    except (InvalidInput, Conflict):
        return False
    return True


def _flag(
    session: Session, key: str, *, registry: rules.ProtocolRegistry, actor: str, now: datetime
) -> None:
    """Keep the text as entered, empty the result: an investigator types the value."""
    _rewrite(
        session,
        key,
        action="flag_result",
        reason=FLAG_REASON,
        to_note=False,
        registry=registry,
        actor=actor,
        now=now,
    )


def _move_to_note(
    session: Session, key: str, *, registry: rules.ProtocolRegistry, actor: str, now: datetime
) -> None:
    _rewrite(
        session,
        key,
        action="result_to_note",
        reason=NOTE_REASON,
        to_note=True,
        registry=registry,
        actor=actor,
        now=now,
    )


def _rewrite(
    session: Session,
    key: str,
    *,
    action: str,
    reason: str,
    to_note: bool,
    registry: rules.ProtocolRegistry,
    actor: str,
    now: datetime,
) -> None:
    """Empty the stored result, keeping its text (in the note, or as entered): one more
    outcome version, an audit row with the old and new values, and a re-plan (the engine
    no longer sees the old text)."""
    patient, row = find_assessment(session, key, for_update=True)
    assert row.performed_on is not None
    assert row.result is not None
    text = row.result
    old = {"result": text, "note": row.note, "result_as_entered": row.result_as_entered}
    if to_note:
        row.note = f"{row.note}; {text}" if row.note else text
    else:
        row.result_as_entered = text
    row.result = None
    session.add(
        OutcomeRecord(
            assessment_id=row.id,  # type: ignore[arg-type]
            outcome=row.status,
            performed_on=row.performed_on,
            result=None,
            note=row.note,
            reason=reason,
            protocol_deviation=row.protocol_deviation,
            recorded_by=actor,
            recorded_at=now,
        )
    )
    row.version += 1
    row.updated_at = now
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=action,
        entity="assessment",
        entity_key=key,
        patient_id=patient.id,
        reason=reason,
        old=old,
        new={"result": None, "note": row.note, "result_as_entered": row.result_as_entered},
        at=now,
    )
    if patient.status == PatientStatus.active.value:
        protocol = get_protocol(registry, patient.protocol_id, patient.protocol_version)
        cause = f"stored result of {key} ({text!r}) " + (
            "moved to its note" if to_note else "needs a typed value"
        )
        rematerialize(session, patient, protocol, cause=cause, actor=actor, now=now)
