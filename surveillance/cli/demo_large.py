"""``surveillance demo --patients-per-site N``: a larger synthetic cohort, loaded fast.

N pseudonymous children per site (``ROM-0001`` ...), infused on days spread over the
past ``years`` years, with their history up to today: outcomes recorded in date order
(a few missed, a few recent ones left overdue), some adverse events (CRS, ICANS, a few
recent serious infections) and some patients withdrawn or deceased.

Everything goes through the services (``enroll``, ``create_case``, ``change_status``,
``record_outcome``) except the bulk of the history: an outcome that cannot change the
patient's calendar (no result, or a result that fires none of the rule's branches and
opens no safety case; checked by re-running the engine in memory where a branch could
fire) is written in a batch per patient with exactly the rows ``record_outcome`` writes
(the outcome, the assessment's new state and version, the audit row with the same old
and new values). Anything else goes through ``record_outcome`` itself.
``load_large_demo(..., bulk=False)`` records every outcome through the service; a test
checks the two give the same database, down to the audit chain's last hash.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import bindparam, select, update
from sqlmodel import Session, col

import rules
from surveillance.adverse_events.cases import create_case
from surveillance.adverse_events.facts import CaseFacts
from surveillance.adverse_events.results import record_outcome
from surveillance.calendar.sync import StoredAssessment
from surveillance.kit import audit
from surveillance.kit.bulk import insert_rows
from surveillance.kit.clock import local_date
from surveillance.kit.sqltypes import table_of
from surveillance.patients.changes import change_status
from surveillance.patients.enrolment import Enrolment, enroll
from surveillance.patients.outcomes import outcome_values
from surveillance.protocols.registry import get_protocol
from surveillance.records.adverse_event_vocabulary import (
    CaseOutcome,
    Category,
    GradeScale,
    Relatedness,
    ReporterQualification,
    Seriousness,
)
from surveillance.records.patients import (
    Assessment,
    AssessmentStatus,
    OutcomeRecord,
)
from surveillance.records.queries import get_patient
from surveillance.records.sites import add_site

# The same protocol, sites and actor as the small demo (``surveillance.cli.demo``).
PROTOCOL = "cd19-car-t-pediatric-autoimmune"
ACTOR = "demo"
SITES = (
    ("Rome", "ROM", "Rome paediatric rheumatology (synthetic)", "Europe/Rome", "IT"),
    ("Erlangen", "ERL", "Erlangen paediatric immunology (synthetic)", "Europe/Berlin", "DE"),
)
DIAGNOSES = ("sle", "sle", "sle", "jdm", "jdm", "ssc")  # drawn uniformly: half SLE
FEMALE_SHARE = {"sle": 0.85, "jdm": 0.6, "ssc": 0.7}
YEARS = 15
MISSED_SHARE = 0.04
LEFT_UNDONE_SHARE = 0.03  # of the last 120 days' work: still overdue today
RECENT = timedelta(days=120)
WITHDRAWN_SHARE = 0.03
DECEASED_SHARE = 0.01
CRS_SHARE = 0.10
ICANS_SHARE = 0.02
INFECTION_SHARE = 0.005  # a serious infection in the last 3 weeks
EARLY_CASES_END = 9  # days after the infusion: CRS by day 3 + 4, ICANS by day 7 + 2
ENROL_BATCH = 500
PENDING = AssessmentStatus.pending.value


@dataclass(frozen=True)
class LargeDemoSummary:
    patients: int
    completed: int
    missed: int
    overdue_left: int
    adverse_events: int
    withdrawn: int
    deceased: int
    through_service: int  # outcomes recorded through ``record_outcome`` itself


@dataclass(frozen=True)
class Child:
    enrolment: Enrolment
    ended: tuple[str, date, str] | None  # (status, on, reason)
    events: tuple[str, ...]  # "crs", "icans", "infection"


def cohort(
    patients_per_site: int, *, today_by_site: dict[str, date], seed: int, years: int = YEARS
) -> list[Child]:
    """The synthetic children, the same for the same size, seed and dates."""
    rng = random.Random(seed)  # noqa: S311 — reproducible synthetic data, not a secret
    width = max(4, len(str(patients_per_site)))
    children = []
    for site_id, prefix, _name, _timezone, _country in SITES:
        today = today_by_site[site_id]
        for number in range(1, patients_per_site + 1):
            study_id = f"{prefix}-{number:0{width}d}"
            children.append(draw_child(study_id, site_id, today, rng, years))
    return children


def draw_child(
    study_id: str, site_id: str, today: date, rng: random.Random, years: int = YEARS
) -> Child:
    """One child of the cohort: facts, how follow-up ended (if it did) and the early
    adverse events, drawn from ``rng`` (the registry loader draws its patients so too)."""
    days_ago = rng.randrange(years * 365)
    infused = today - timedelta(days=days_ago)
    diagnosis = rng.choice(DIAGNOSES)
    sex = "F" if rng.random() < FEMALE_SHARE[diagnosis] else "M"
    age = rng.randint(5, 17)
    birth = infused - relativedelta(years=age, days=rng.randint(0, 360))
    enrolment = Enrolment(study_id, site_id, birth, sex, diagnosis, PROTOCOL, infused)
    draw = rng.random()
    ended: tuple[str, date, str] | None = None
    if days_ago > 90 and draw < DECEASED_SHARE + WITHDRAWN_SHARE:
        on = infused + timedelta(days=rng.randint(60, days_ago - 1))
        ended = (
            ("deceased", on, "death from disease progression (synthetic)")
            if draw < DECEASED_SHARE
            else ("withdrawn", on, "family withdrew consent (synthetic)")
        )
    events = []
    # A CRS or ICANS case ends by day 9: none for a patient infused since then (its
    # dates would be in the future, which ``create_case`` refuses).
    if rng.random() < CRS_SHARE and days_ago > EARLY_CASES_END:
        events.append("crs")
    if rng.random() < ICANS_SHARE and days_ago > EARLY_CASES_END:
        events.append("icans")
    if ended is None and days_ago > 60 and rng.random() < INFECTION_SHARE:
        events.append("infection")
    return Child(enrolment, ended, tuple(events))


@dataclass
class _Counts:
    completed: int = 0
    missed: int = 0
    left: int = 0
    cases: int = 0
    through_service: int = 0


def load_large_demo(
    session: Session,
    *,
    registry: rules.ProtocolRegistry,
    now: datetime,
    patients_per_site: int,
    seed: int = 2026,
    years: int = YEARS,
    bulk: bool = True,
) -> LargeDemoSummary:
    """Create the two sites and ``patients_per_site`` children at each, with their history."""
    for site_id, _prefix, name, timezone, country in SITES:
        add_site(session, site_id=site_id, name=name, timezone=timezone, country=country)
    today_by_site = {site[0]: local_date(now, site[3]) for site in SITES}
    children = cohort(patients_per_site, today_by_site=today_by_site, seed=seed, years=years)
    for start in range(0, len(children), ENROL_BATCH):
        batch = [c.enrolment for c in children[start : start + ENROL_BATCH]]
        enroll(session, batch, registry=registry, now=now, actor=ACTOR)
    rng = random.Random(seed + 1)  # noqa: S311 — reproducible synthetic data
    counts = _Counts()
    for child in children:
        today = today_by_site[child.enrolment.site_id]
        for kind in child.events:
            _adverse_event(session, child.enrolment, kind, today, rng, registry, now)
            counts.cases += 1
        before = child.ended[1] if child.ended else today
        walk = _History(session, child.enrolment, registry, now, rng, counts)
        walk.run(before=before, today=today, leave_undone=child.ended is None, bulk=bulk)
        if child.ended is not None:
            status, on, reason = child.ended
            change_status(
                session, study_id=child.enrolment.study_id, status=status, on=on,
                reason=reason, actor=ACTOR, registry=registry, now=now,
            )  # fmt: skip
    return LargeDemoSummary(
        patients=len(children),
        completed=counts.completed,
        missed=counts.missed,
        overdue_left=counts.left,
        adverse_events=counts.cases,
        withdrawn=sum(1 for c in children if c.ended and c.ended[0] == "withdrawn"),
        deceased=sum(1 for c in children if c.ended and c.ended[0] == "deceased"),
        through_service=counts.through_service,
    )


# -- history --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    stored: StoredAssessment
    performed_on: date | None
    result: str | None
    untouched: bool  # no note, status reason, free-text result or deviation: as enrolled


@dataclass
class _Batch:
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    audit_rows: list[audit.AuditFact] = field(default_factory=list)


class _History:
    """One patient's past, walked in date order (as ``oldest_closed_pending`` would)."""

    def __init__(
        self,
        session: Session,
        enrolment: Enrolment,
        registry: rules.ProtocolRegistry,
        now: datetime,
        rng: random.Random,
        counts: _Counts,
    ) -> None:
        self.session, self.enrolment, self.registry = session, enrolment, registry
        self.now, self.rng, self.counts = now, rng, counts
        patient = get_patient(session, enrolment.study_id)
        assert patient.id is not None
        self.patient_id = patient.id
        self.protocol = get_protocol(registry, patient.protocol_id, patient.protocol_version)
        self.batch = _Batch()
        self.rows: list[_Row] = []

    def run(self, *, before: date, today: date, leave_undone: bool, bulk: bool) -> None:
        skipped: set[int] = set()
        self._load()
        index = 0
        while index < len(self.rows):
            row = self.rows[index]
            index += 1
            s = row.stored
            if s.status != PENDING or s.window_end >= before or s.id in skipped:
                continue
            key = f"{self.enrolment.study_id}:{s.infusion_number}:{s.assessment}:{s.occurrence}"
            drawn = draw_outcome(s, self.enrolment.birth_date, today, leave_undone, self.rng)
            if drawn is None:
                skipped.add(s.id)  # recent enough to be chased: left overdue
                self.counts.left += 1
                continue
            outcome, on, result, reason = drawn
            if outcome == "missed":
                self.counts.missed += 1
            else:
                self.counts.completed += 1
            typed = read_result_once(self.protocol, s.assessment, result) if result else None
            if bulk and row.untouched and not self._changes_calendar(index - 1, typed):
                self._queue(index - 1, key, outcome, on, typed, reason)
                continue
            self._flush()
            self.session.expire_all()
            record_outcome(
                self.session, key=key, outcome=outcome, on=on, result=result, reason=reason,
                actor=ACTOR, registry=self.registry, now=self.now,
            )  # fmt: skip
            self.counts.through_service += 1
            self._load()  # the calendar may have changed: start again from the oldest
            index = 0
        self._flush()

    def _load(self) -> None:
        """The stored calendar in the order ``oldest_closed_pending`` reads it."""
        a = Assessment
        columns = [getattr(a, name) for name in StoredAssessment.__dataclass_fields__]
        statement = (
            select(
                *columns,
                col(a.performed_on),
                col(a.result),
                col(a.note),
                col(a.status_reason),
                col(a.result_as_entered),
                col(a.protocol_deviation),
            )
            .where(col(a.patient_id) == self.patient_id)
            .order_by(col(a.due_on), col(a.id))
        )
        width = len(StoredAssessment.__dataclass_fields__)
        self.rows = []
        for values in self.session.execute(statement):
            note, status_reason, as_entered, deviation = values[width + 2 :]
            untouched = (note, status_reason, as_entered, deviation) == (None, None, None, False)
            self.rows.append(
                _Row(StoredAssessment(*values[:width]), values[width], values[width + 1], untouched)
            )

    def _changes_calendar(self, index: int, typed: str | None) -> bool:
        if typed is None:
            return False  # the engine reads results only: no list to build
        return changes_calendar(self.protocol, [r.stored for r in self.rows], index, typed)

    def _queue(
        self, index: int, key: str, outcome: str, on: date, result: str | None, reason: str | None
    ) -> None:
        """What ``record_outcome`` writes for an untouched pending row (``_write``)."""
        row = self.rows[index]
        s = row.stored
        outcome_row, new_values, fact = outcome_writes(
            s, key=key, patient_id=self.patient_id, outcome=outcome, on=on, result=result,
            reason=reason, now=self.now,
        )  # fmt: skip
        self.batch.outcomes.append(outcome_row)
        self.batch.updates.append(
            {
                "row_id": s.id,
                "new_status": outcome,
                "new_performed_on": on,
                "new_result": result,
                "new_reason": reason,
                "new_deviation": new_values["protocol_deviation"],
            }
        )
        self.batch.audit_rows.append(fact)
        self.rows[index] = _Row(replace(s, status=outcome), on, result, row.untouched)

    def _flush(self) -> None:
        batch = self.batch
        if not batch.updates:
            return
        insert_rows(self.session, table_of(OutcomeRecord), batch.outcomes)
        table = table_of(Assessment)
        self.session.connection().execute(
            update(table)
            .where(table.c.id == bindparam("row_id"))
            .values(
                status=bindparam("new_status"),
                performed_on=bindparam("new_performed_on"),
                result=bindparam("new_result"),
                note=None,
                result_as_entered=None,
                status_reason=bindparam("new_reason"),
                protocol_deviation=bindparam("new_deviation"),
                updated_at=self.now,
                version=table.c.version + 1,
            ),
            batch.updates,
        )
        audit.record_many(self.session, batch.audit_rows, self.now)
        self.batch = _Batch()


def draw_outcome(
    s: StoredAssessment, birth: date, today: date, leave_undone: bool, rng: random.Random
) -> tuple[str, date, str | None, str | None] | None:
    """What happened to a closed pending assessment: (outcome, on, result, reason), or None
    when it is left overdue (recent enough to be chased)."""
    draw = rng.random()
    if leave_undone and s.window_end > today - RECENT and draw < LEFT_UNDONE_SHARE:
        return None
    if draw > 1 - MISSED_SHARE:
        return "missed", s.window_end, None, "patient did not attend"
    span = (s.window_end - s.window_start).days
    on = s.due_on
    if span:
        on = s.window_start + timedelta(days=rng.randint(0, span))
    return "completed", on, synthetic_result(s.assessment, birth, on, rng), None


def changes_calendar(
    protocol: rules.Protocol, rows: list[StoredAssessment], index: int, typed: str | None
) -> bool:
    """Whether recording ``typed`` on ``rows[index]`` could change the calendar (a branch of
    the rule could fire) or opens a safety case: then it goes through ``record_outcome``."""
    if typed is None:
        return False  # the engine reads results only
    s = rows[index]
    if protocol.safety_case(s.assessment, typed) is not None:
        return True
    for branch in protocol.branches(s.assessment):
        if branch.when is not None and branch.when.matches(typed):
            return True
        if branch.when_all is not None and branch.when_all.matches(typed):
            # Fires only once every planned point has a matching result: not while
            # another planned (pending) point of the rule has none.
            if not any(
                i != index
                and r.status == PENDING
                and (r.infusion_number, r.assessment) == (s.infusion_number, s.assessment)
                and not rules.is_triggered_occurrence(r.occurrence)
                for i, r in enumerate(rows)
            ):
                return True
    return False


def outcome_writes(
    s: StoredAssessment,
    *,
    key: str,
    patient_id: int,
    outcome: str,
    on: date,
    result: str | None,
    reason: str | None,
    now: datetime,
) -> tuple[dict[str, Any], dict[str, Any], audit.AuditFact]:
    """What ``record_outcome`` writes for an untouched pending row (``_write``): the outcome
    row, the assessment's new values and the audit row."""
    deviation = outcome == "completed" and not s.window_start <= on <= s.window_end
    outcome_row = {
        "assessment_id": s.id, "outcome": outcome, "performed_on": on, "result": result,
        "note": None, "reason": reason, "protocol_deviation": deviation,
        "recorded_by": ACTOR, "recorded_at": now,
    }  # fmt: skip
    new_values: dict[str, Any] = {
        "status": outcome,
        "performed_on": on,
        "result": result,
        "note": None,
        "result_as_entered": None,
        "status_reason": reason,
        "protocol_deviation": deviation,
    }
    fact = audit.AuditFact(
        actor=ACTOR,
        action="record_outcome",
        entity="assessment",
        entity_key=key,
        patient_id=patient_id,
        reason=reason,
        old=outcome_values(s.status),  # untouched: nothing recorded
        new=outcome_values(**new_values),
    )
    return outcome_row, new_values, fact


_READ: dict[tuple[str, str, str, str], str] = {}


def read_result_once(protocol: rules.Protocol, rule_id: str, text: str) -> str:
    """``Protocol.read_result`` (units parsed by pint: slow), once per distinct text. The
    registry loader reads its results with this very function."""
    key = (protocol.id, protocol.version, rule_id, text)
    if key not in _READ:
        _READ[key] = protocol.read_result(rule_id, text)
    return _READ[key]


def synthetic_result(assessment: str, birth: date, on: date, rng: random.Random) -> str | None:
    """Plausible synthetic results for the assessments whose results drive branches."""
    if assessment in ("rcl_test", "rcl_yearly_test", "rcl_intensified"):
        return "negative"
    if assessment == "tanner_staging":
        age = relativedelta(on, birth).years
        return str(min(5, max(1, age - 9)))
    if assessment == "immunoglobulins":
        return f"{rng.randint(450, 1100)} mg/dL"  # IgG, above the IVIG threshold
    if assessment == "car_persistence":
        return f"{rng.uniform(0.0, 0.4):.2f}"  # % vector-positive cells
    return None


# -- adverse events ---------------------------------------------------------------------------


def _adverse_event(
    session: Session,
    enrolment: Enrolment,
    kind: str,
    today: date,
    rng: random.Random,
    registry: rules.ProtocolRegistry,
    now: datetime,
) -> None:
    facts = case_facts(kind, enrolment.infusion_date, today, rng)
    create_case(
        session, study_id=enrolment.study_id, facts=facts, actor=ACTOR, registry=registry,
        now=now,
    )  # fmt: skip


def case_facts(kind: str, infused: date, today: date, rng: random.Random) -> CaseFacts:
    """The synthetic case of ``kind`` ("crs", "icans", "infection") as first reported."""
    if kind == "crs":
        onset = infused + timedelta(days=rng.randint(1, 3))
        end = onset + timedelta(days=rng.randint(2, 4))
        facts = CaseFacts(
            onset_date=onset, end_date=end, awareness_date=onset,
            term="Cytokine release syndrome", meddra_code="10052015", meddra_version="27.1",
            category=Category.crs, grade=rng.choice((1, 1, 1, 2)), grade_scale=GradeScale.astct,
            serious=False, relatedness=Relatedness.related, expected=True,
            outcome=CaseOutcome.recovered, narrative="Fever; paracetamol; no tocilizumab.",
            reporter_qualification=ReporterQualification.physician, last_info_date=end,
        )  # fmt: skip
    elif kind == "icans":
        onset = infused + timedelta(days=rng.randint(4, 7))
        end = onset + timedelta(days=2)
        facts = CaseFacts(
            onset_date=onset, end_date=end, awareness_date=onset,
            term="Immune effector cell-associated neurotoxicity syndrome",
            meddra_code="10083075", meddra_version="27.1", category=Category.icans, grade=2,
            grade_scale=GradeScale.astct, serious=False, relatedness=Relatedness.related,
            expected=True, outcome=CaseOutcome.recovered,
            narrative="ICE score 7; dexamethasone for 48 hours; ICE 10 two days later.",
            reporter_qualification=ReporterQualification.physician, last_info_date=end,
        )  # fmt: skip
    else:
        onset = today - timedelta(days=rng.randint(2, 20))
        facts = CaseFacts(
            onset_date=onset, awareness_date=onset + timedelta(days=1), term="Pneumonia",
            meddra_code="10035664", meddra_version="27.1", category=Category.infection,
            grade=3, grade_scale=GradeScale.ctcae_v5, serious=True,
            seriousness_criteria=(Seriousness.hospitalization,),
            relatedness=Relatedness.possibly_related, expected=False,
            outcome=CaseOutcome.recovering,
            narrative="Fever and cough; admitted for intravenous antibiotics and IVIG.",
            reporter_qualification=ReporterQualification.physician,
        )  # fmt: skip
    return facts
