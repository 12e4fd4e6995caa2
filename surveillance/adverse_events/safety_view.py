"""What a safety system reads in the browser: the cases as the feed shows them, with the
acknowledgements of each safety system.

Pseudonymous exactly as the feed (``views.case_content``): study id, sex, age at onset in
whole years and the site's country; never a name, a birth date or an infusion date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlmodel import Session, col

from surveillance.adverse_events.acks import SystemAck, safety_systems
from surveillance.adverse_events.views import age_in_years
from surveillance.records.adverse_events import AdverseEventCase, FeedAcknowledgement
from surveillance.records.patients import Patient, Site


@dataclass(frozen=True)
class SafetyCase:
    """A case's latest state, pseudonymous, and every safety system's answer to it."""

    case_id: str
    version: int
    status: str
    study_id: str
    site_id: str
    country: str | None
    sex: str
    age_at_onset_years: int
    term: str
    category: str
    grade: int | None
    serious: bool
    outcome: str
    awareness_date: date
    updated_at: datetime
    answers: list[SystemAck]  # to the latest version, one per registered safety system

    @property
    def acknowledged(self) -> bool:
        """Accepted (AA or AE) by every registered safety system, and by at least one."""
        return bool(self.answers) and all(a.accepted for a in self.answers)


@dataclass(frozen=True)
class SafetyList:
    cases: list[SafetyCase]
    more: bool  # there are more matching cases than shown


def safety_cases(
    session: Session,
    *,
    serious_only: bool = False,
    unacknowledged_only: bool = False,
    limit: int = 200,
) -> SafetyList:
    """Latest change first (two statements, whatever the number of cases).

    "Not acknowledged" depends on the latest answer of each system, so that filter is
    applied after reading; the case rows are few and narrow (one per adverse event)."""
    statement = (
        select(
            AdverseEventCase,
            col(Patient.study_id),
            col(Patient.sex),
            col(Patient.birth_date),
            col(Site.country),
        )
        .join(Patient, col(Patient.id) == col(AdverseEventCase.patient_id))
        .join(Site, col(Site.id) == col(AdverseEventCase.site_id))
        .order_by(col(AdverseEventCase.updated_at).desc(), col(AdverseEventCase.case_id))
    )
    if serious_only:
        statement = statement.where(col(AdverseEventCase.serious).is_(True))
    if not unacknowledged_only:
        statement = statement.limit(limit + 1)
    rows = session.execute(statement).all()
    answers = _latest_answers(session, serious_only=serious_only)
    systems = safety_systems(session)
    cases = []
    for case, study_id, sex, birth_date, country in rows:
        given = answers.get(case.case_id, {})
        item = SafetyCase(
            case_id=case.case_id,
            version=case.version,
            status=case.status,
            study_id=study_id,
            site_id=case.site_id,
            country=country,
            sex=sex,
            age_at_onset_years=age_in_years(birth_date, case.onset_date),
            term=case.term,
            category=case.category,
            grade=case.grade,
            serious=case.serious,
            outcome=case.outcome,
            awareness_date=case.awareness_date,
            updated_at=case.updated_at,
            answers=[SystemAck(s, *given.get(s, (None, None, None))) for s in systems],
        )
        if not (unacknowledged_only and item.acknowledged):
            cases.append(item)
    return SafetyList(cases[:limit], more=len(cases) > limit)


def _latest_answers(
    session: Session, *, serious_only: bool
) -> dict[str, dict[str, tuple[str, str | None, datetime]]]:
    """case id -> consumer -> (status, message, at): each system's latest answer to the
    case's latest version (later answers replace earlier ones)."""
    latest = (col(AdverseEventCase.case_id) == col(FeedAcknowledgement.case_id)) & (
        col(AdverseEventCase.version) == col(FeedAcknowledgement.version)
    )
    statement = (
        select(FeedAcknowledgement)
        .join(AdverseEventCase, latest)
        .order_by(col(FeedAcknowledgement.id))
    )
    if serious_only:
        statement = statement.where(col(AdverseEventCase.serious).is_(True))
    found: dict[str, dict[str, tuple[str, str | None, datetime]]] = {}
    for ack in session.execute(statement).scalars():
        found.setdefault(ack.case_id, {})[ack.consumer] = (ack.status, ack.message, ack.received_at)
    return found


def acknowledgements_of(session: Session, case_id: str) -> list[FeedAcknowledgement]:
    """Every answer to every version of a case, newest version first, in arrival order."""
    return list(
        session.execute(
            select(FeedAcknowledgement)
            .where(col(FeedAcknowledgement.case_id) == case_id)
            .order_by(col(FeedAcknowledgement.version).desc(), col(FeedAcknowledgement.id))
        ).scalars()
    )
