"""One synthetic patient's rows, decided in memory the way the services would write them.

``PatientHistory.run`` replays, for one patient and without a database, what
``surveillance demo --patients-per-site N`` (``surveillance.cli.demo_large``) does through
the services: ``enroll`` (``check_enrolment``, ``plan_calendar``, ``assessment_rows``, the
enrol audit row), ``create_case`` for CRS / ICANS / a recent serious infection (the case,
its version, the audit row with the content ``case_content`` gives, the serious-case email
alert, the re-plan), the history walked in date order (``record_outcome``'s outcome row,
new assessment values and audit row, from ``demo_large.outcome_writes``; a result that
could change the calendar re-plans through the engine, as ``record_outcome`` does), and
``change_status`` for the withdrawn and deceased (the status, its audit row, the patient
event, the re-plan: future work cancelled, the death duties added, the rows left off the
due list's index unlisted). A re-plan is the real
``plan_calendar`` + ``compare`` on the in-memory rows, applied as ``apply_change`` applies
it, with its ``calendar_change`` audit row.

Where it is not the services' exact equivalent (said here so nobody relies on it):
* the draws use one random generator per patient (seeded by the seed and the patient's
  number) instead of the demo's one generator for the cohort, so slices can be computed
  in any order and in parallel; the shares are the demo's constants;
* ids are local to the patient (1, 2, ...) until the loader gives each chunk its id range;
  the feed sequence and the audit hashes are given then too, in chunk order;
* no webhook endpoint exists in a fresh registry, so the only alert a case queues is the
  serious-case email, as ``outbox.case_changed`` would; synthetic results never declare a
  safety case (RCL negative), which is checked: one that did would stop the load.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

import rules
from surveillance.adverse_events.cases import (
    audited_content,
    mirror_latest_version,
    next_version_row,
)
from surveillance.adverse_events.facts import check, is_pre_existing
from surveillance.adverse_events.views import case_content
from surveillance.calendar.case_events import events_for_versions
from surveillance.calendar.sync import (
    CalendarChange,
    StoredAssessment,
    assessment_rows,
    compare,
    plan_calendar,
)
from surveillance.cli.demo_large import (
    ACTOR,
    PROTOCOL,
    YEARS,
    case_facts,
    changes_calendar,
    draw_child,
    draw_outcome,
    outcome_writes,
    read_result_once,
)
from surveillance.kit import audit
from surveillance.patients.enrolment import Enrolment, check_enrolment
from surveillance.patients.outcomes import OUTCOME_COLUMNS, outcome_values
from surveillance.records.adverse_event_vocabulary import CaseStatus, Change
from surveillance.records.adverse_events import AdverseEventCase
from surveillance.records.outbox import Alert, AlertKind, AlertStatus, Channel
from surveillance.records.patients import (
    AssessmentStatus,
    Patient,
    PatientStatus,
    Site,
    assessment_key,
)

PENDING = AssessmentStatus.pending.value
COMPLETED = AssessmentStatus.completed.value
CANCELLED = AssessmentStatus.cancelled.value
_STATUS_EVENTS = {"deceased": "death", "withdrawn": "withdrawal"}


@dataclass
class AuditRow:
    """An audit row before its place in the chain: its columns and canonical content."""

    row: dict[str, Any]
    content: str


@dataclass
class PatientRows:
    """Everything written for one patient; assessment ids are local (1..n, creation order)."""

    patient: dict[str, Any]
    infusion: dict[str, Any]
    assessments: list[dict[str, Any]]
    outcomes: list[dict[str, Any]]  # assessment_id local
    events: list[dict[str, Any]]
    cases: list[dict[str, Any]]
    versions: list[dict[str, Any]]  # sequence given by the loader
    alerts: list[dict[str, Any]]
    audit: list[AuditRow]
    counts: dict[str, int] = field(default_factory=dict)


def _columns(model: Any) -> dict[str, Any]:
    """A model instance as its table's row."""
    return {c.name: getattr(model, c.name) for c in model.__table__.columns}


def audit_row(fact: audit.AuditFact, at: datetime) -> AuditRow:
    """The row ``audit.record`` / ``record_many`` defer, and the content its hash covers."""
    f = fact
    row = audit.unchained_row(
        at, f.actor, f.action, f.entity, f.entity_key, f.patient_id, f.reason, f.old, f.new
    )
    content = audit.hashed_content(
        row["at"], row["actor"], row["action"], row["entity"], row["entity_key"],
        row["patient_id"], row["reason"], row["old_values"], row["new_values"],
    )  # fmt: skip
    return AuditRow(row, content)


@dataclass(frozen=True)
class Draw:
    enrolment: Enrolment
    ended: tuple[str, date, str] | None
    kinds: tuple[str, ...]


def draw_patient(number: int, site: Site, today: date, rng: random.Random) -> Draw:
    """The demo's cohort draw (``demo_large.cohort``) for one patient."""
    child = draw_child(f"R{number + 1:07d}", site.id, today, rng, YEARS)
    return Draw(child.enrolment, child.ended, child.events)


class PatientHistory:
    """One patient from enrolment to today, in memory."""

    def __init__(
        self,
        number: int,
        *,
        site: Site,
        registry: rules.ProtocolRegistry,
        now: datetime,
        seed: int,
    ) -> None:
        self.registry, self.now, self.site = registry, now, site
        self.today = site.today(now)
        self.rng = random.Random(f"{seed}:{number}")
        self.draw = draw_patient(number, site, self.today, self.rng)
        self.patient_id = number + 1
        self.protocol = registry.get(PROTOCOL)
        e = self.draw.enrolment
        self.facts = rules.PatientFacts(e.birth_date, e.diagnosis, e.sex)
        self.rows: list[dict[str, Any]] = []
        self.outcomes: list[dict[str, Any]] = []
        self.audit: list[AuditRow] = []
        self.recorded_events: list[rules.RecordedEvent] = []
        self.case_events: list[rules.RecordedEvent] = []
        self.by_rule: dict[tuple[int, str], list[dict[str, Any]]] = {}  # set by ``_ordered``
        # Each row's ``StoredAssessment``, made once and dropped when the row changes: a
        # re-plan compares every row and each result looks at its rule's rows, so rebuilding
        # them each time was ~10 % of a patient's CPU.
        self.stored: dict[int, StoredAssessment] = {}
        self.counts = {"completed": 0, "missed": 0, "left": 0, "through_engine": 0}

    # -- the steps, in the demo's order ---------------------------------------------------

    def run(self) -> PatientRows:
        patient = self._enrol()
        cases, versions, alerts = [], [], []
        for kind in self.draw.kinds:
            case, version, alert = self._case(kind, len(cases) + 1)
            cases.append(case)
            versions.append(version)
            alerts += alert
        ended = self.draw.ended
        before = ended[1] if ended else self.today
        self._walk(before=before, leave_undone=ended is None)
        events = []
        if ended is not None:
            events.append(self._end(patient, *ended))
        e = self.draw.enrolment
        infusion = {
            "id": self.patient_id, "patient_id": self.patient_id, "number": 1,
            "infused_on": e.infusion_date, "protocol_version": self.protocol.version,
            "recorded_at": self.now,
        }  # fmt: skip
        self.counts["cases"] = len(cases)
        if ended is not None:
            self.counts[ended[0]] = 1
        return PatientRows(
            patient, infusion, self.rows, self.outcomes, events, cases, versions, alerts,
            self.audit, self.counts,
        )  # fmt: skip

    def _enrol(self) -> dict[str, Any]:
        e = self.draw.enrolment
        check_enrolment(e, self.site, self.now)  # what ``enroll`` refuses, refused here
        assert e.diagnosis in self.protocol.spec.diagnoses
        planned = plan_calendar(e.study_id, self.protocol, self.facts, [e.infusion_date])
        self._add(planned)
        self._audit(
            audit.AuditFact(
                actor=ACTOR, action="enroll", entity="patient", entity_key=e.study_id,
                patient_id=self.patient_id, reason=None,
                new={
                    "site": e.site_id, "birth_date": e.birth_date.isoformat(), "sex": e.sex,
                    "diagnosis": e.diagnosis,
                    "protocol": f"{e.protocol_id} {self.protocol.version}",
                    "infusion_date": e.infusion_date.isoformat(),
                    "assessments_planned": len(planned),
                },
            )
        )  # fmt: skip
        return _columns(
            Patient(
                id=self.patient_id, study_id=e.study_id, site_id=e.site_id,
                birth_date=e.birth_date, sex=e.sex, diagnosis=e.diagnosis,
                protocol_id=e.protocol_id, protocol_version=self.protocol.version,
                status=PatientStatus.active.value, enrolled_at=self.now, version=1,
            )
        )  # fmt: skip

    def _case(
        self, kind: str, number: int
    ) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
        """``create_case``: version 1, the case mirroring it, audit, alert, re-plan."""
        e = self.draw.enrolment
        facts = case_facts(kind, e.infusion_date, self.today, self.rng)
        facts = check(facts, birth_date=e.birth_date, today=self.today)
        case = AdverseEventCase(
            case_id=f"{e.study_id}-AE{number:02d}", patient_id=self.patient_id, number=number,
            site_id=e.site_id, version=0, status=CaseStatus.open.value, term=facts.term,
            category=facts.category.value, serious=facts.serious, onset_date=facts.onset_date,
            awareness_date=facts.awareness_date, outcome=facts.outcome.value,
            created_at=self.now, updated_at=self.now,
        )  # fmt: skip
        version = next_version_row(
            case, facts, Change.created,
            pre_existing=is_pre_existing(facts, e.infusion_date), source=None,
            nullify_reason=None, actor=ACTOR, now=self.now,
        )  # fmt: skip
        mirror_latest_version(case, version, Change.created, self.now)
        content = case_content(
            version, study_id=e.study_id, site_id=e.site_id, country=self.site.country,
            sex=e.sex, birth_date=e.birth_date, protocol_id=e.protocol_id,
            protocol_version=self.protocol.version, registry=self.registry,
        )  # fmt: skip
        self._audit(
            audit.AuditFact(
                actor=ACTOR, action=f"adverse_event_{Change.created.value}",
                entity="adverse_event", entity_key=case.case_id, patient_id=self.patient_id,
                reason=None, old=None, new=audited_content(content),
            )
        )  # fmt: skip
        alerts = []
        if version.serious:  # ``outbox.case_changed``: no endpoints, so the email only
            kind_, channel = AlertKind.adverse_event_serious, Channel.email
            recipient = f"site:{case.site_id}:investigator"
            alerts.append(
                _columns(
                    Alert(
                        id=f"{kind_.value}:{case.case_id}:0:0:{channel.value}:{recipient}",
                        kind=kind_.value, level=0, channel=channel.value, recipient=recipient,
                        site_id=case.site_id, patient_id=self.patient_id, case_id=case.case_id,
                        case_version=version.version, as_of=version.last_info_date,
                        status=AlertStatus.pending.value, next_attempt_at=self.now,
                        created_at=self.now,
                    )
                )
            )  # fmt: skip
        self.case_events += [
            event
            for event in events_for_versions([version], series=number - 1)
            if event.kind in self.protocol.events
        ]
        self._replan(f"adverse event {case.case_id} {Change.created.value}")
        return _columns(case), _columns(version), alerts

    def _walk(self, *, before: date, leave_undone: bool) -> None:
        """``demo_large._History.run``: closed pending work in date order."""
        e = self.draw.enrolment
        skipped: set[int] = set()
        order = self._ordered()
        index = 0
        while index < len(order):
            row = order[index]
            index += 1
            if row["status"] != PENDING or row["window_end"] >= before or row["id"] in skipped:
                continue
            s = self._stored(row)
            drawn = draw_outcome(s, e.birth_date, self.today, leave_undone, self.rng)
            if drawn is None:
                skipped.add(row["id"])
                self.counts["left"] += 1
                continue
            outcome, on, result, reason = drawn
            self.counts["missed" if outcome == "missed" else "completed"] += 1
            typed = read_result_once(self.protocol, s.assessment, result) if result else None
            untouched = (row["note"], row["status_reason"], row["result_as_entered"]) == (
                None, None, None
            ) and not row["protocol_deviation"]  # fmt: skip
            changes = typed is not None and self._changes_calendar(row, s, typed)
            key = assessment_key(e.study_id, s.infusion_number, s.assessment, s.occurrence)
            self._record(row, s, key, outcome, on, typed, reason, untouched)
            if untouched and not changes:
                continue
            # ``record_outcome``: the re-plan, and the safety case the result declares.
            if typed is not None and self.protocol.safety_case(s.assessment, typed):
                raise NotImplementedError(f"{key}: {typed!r} would open a safety case")
            cause = f"{outcome} recorded for {key}" + (f" with result {typed!r}" if typed else "")
            self.counts["through_engine"] += 1
            if not self._replan(cause).is_empty():
                order = self._ordered()  # the calendar changed: again from the oldest
                index = 0

    def _changes_calendar(self, row: dict[str, Any], s: StoredAssessment, typed: str) -> bool:
        """``demo_large.changes_calendar`` given only the rule's own rows (it looks at no
        other): the same answer without a stored copy of the whole calendar per result."""
        same = self.by_rule[(s.infusion_number, s.assessment)]
        index = next(i for i, r in enumerate(same) if r is row)
        return changes_calendar(self.protocol, [self._stored(r) for r in same], index, typed)

    def _record(
        self,
        row: dict[str, Any],
        s: StoredAssessment,
        key: str,
        outcome: str,
        on: date,
        result: str | None,
        reason: str | None,
        untouched: bool,
    ) -> None:
        """``outcomes._write``: the outcome row, the assessment's new values, the audit row."""
        outcome_row, new_values, fact = outcome_writes(
            s, key=key, patient_id=self.patient_id, outcome=outcome, on=on, result=result,
            reason=reason, now=self.now,
        )  # fmt: skip
        if not untouched:  # a re-planned row says why in its status reason: the old values
            old = outcome_values(**{name: row[name] for name in OUTCOME_COLUMNS})
            fact = replace(fact, old=old)
        self.outcomes.append(outcome_row)
        self.stored.pop(row["id"], None)
        row.update(new_values)
        row["updated_at"] = self.now
        row["version"] += 1
        self._audit(fact)

    def _end(self, patient: dict[str, Any], status: str, on: date, reason: str) -> dict[str, Any]:
        """``change_status`` to withdrawn or deceased: status, audit, event, re-plan."""
        e = self.draw.enrolment
        old = {"status": patient["status"], "status_on": str(patient["status_on"]),
               "site": e.site_id}  # fmt: skip
        patient.update(status=status, status_on=on, status_reason=reason)
        patient["version"] += 1
        self._audit(
            audit.AuditFact(
                actor=ACTOR, action="change_status", entity="patient", entity_key=e.study_id,
                patient_id=self.patient_id, reason=reason, old=old,
                new={"status": status, "status_on": on.isoformat(), "site": e.site_id},
            )
        )  # fmt: skip
        kind = _STATUS_EVENTS[status]
        self.recorded_events.append(rules.RecordedEvent(kind, on))
        self._replan(f"{status} on {on}: {reason}")
        # ``unlist_ended``: off the due list's index, the reporting duties aside.
        reporting = self.registry.reporting_categories()
        for row in self.rows:
            if row["status"] == PENDING and row["category"] not in reporting:
                row["listed"] = False
        return {
            "patient_id": self.patient_id, "kind": kind, "occurred_on": on, "note": reason,
            "recorded_by": ACTOR, "recorded_at": self.now,
        }  # fmt: skip

    # -- the calendar ---------------------------------------------------------------------

    def _add(self, planned: list[rules.PlannedAssessment]) -> None:
        start = len(self.rows)
        for offset, row in enumerate(
            assessment_rows(self.patient_id, self.site.id, planned, self.now)
        ):
            row["id"] = start + offset + 1
            self.rows.append(row)

    def _ordered(self) -> list[dict[str, Any]]:
        """As ``oldest_closed_pending`` reads them: by due date, then id."""
        order = sorted(self.rows, key=lambda r: (r["due_on"], r["id"]))
        self.by_rule = {}
        for row in order:
            self.by_rule.setdefault((row["infusion_number"], row["assessment"]), []).append(row)
        return order

    def _replan(self, cause: str) -> CalendarChange:
        """``rematerialize``: the engine on every recorded fact, the difference applied."""
        e = self.draw.enrolment
        results = [
            rules.RecordedResult(
                r["infusion_number"], r["assessment"], r["occurrence"], r["performed_on"],
                r["result"],
            )
            for r in self.rows
            if r["status"] == COMPLETED and r["result"] is not None
        ]  # fmt: skip
        planned = plan_calendar(
            e.study_id, self.protocol, self.facts, [e.infusion_date], results,
            [*self.recorded_events, *self.case_events],
        )  # fmt: skip
        change = compare([self._stored(r) for r in self.rows], planned)
        if not change.is_empty():
            self._apply(change, cause)
        return change

    def _apply(self, change: CalendarChange, cause: str) -> None:
        """``apply_change`` on the rows in memory, with its audit row."""
        self._add(change.added)
        by_id = {r["id"]: r for r in self.rows}
        for stored, plan in [*change.moved, *change.reinstated, *change.relabelled]:
            row = by_id[stored.id]
            self.stored.pop(stored.id, None)
            appointment = row["appointment_on"]
            keep = appointment is not None and plan.window_start <= appointment <= plan.window_end
            row.update(
                due_on=plan.due, window_start=plan.window_start, window_end=plan.window_end,
                reason=plan.reason, protocol_version=plan.protocol_version,
                appointment_on=appointment if keep else None, status=PENDING,
                status_reason=cause, updated_at=self.now,
            )  # fmt: skip
            row["version"] += 1
        for stored in change.cancelled:
            row = by_id[stored.id]
            self.stored.pop(stored.id, None)
            row.update(status=CANCELLED, status_reason=cause, appointment_on=None,
                       updated_at=self.now)  # fmt: skip
            row["version"] += 1
        study_id = self.draw.enrolment.study_id
        self._audit(
            audit.AuditFact(
                actor=ACTOR, action="calendar_change", entity="patient", entity_key=study_id,
                patient_id=self.patient_id, reason=cause,
                new={"summary": change.summary(), **change.as_dict(study_id)},
            )
        )  # fmt: skip

    def _stored(self, row: dict[str, Any]) -> StoredAssessment:
        """The row as ``compare`` and ``changes_calendar`` read it (made once per change)."""
        stored = self.stored.get(row["id"])
        if stored is None:
            stored = self.stored[row["id"]] = _stored(row)
        return stored

    def _audit(self, fact: audit.AuditFact) -> None:
        self.audit.append(audit_row(fact, self.now))


def _stored(row: dict[str, Any]) -> StoredAssessment:
    return StoredAssessment(
        row["id"], row["infusion_number"], row["assessment"], row["occurrence"], row["status"],
        row["due_on"], row["window_start"], row["window_end"], row["reason"],
        row["protocol_version"],
    )  # fmt: skip
