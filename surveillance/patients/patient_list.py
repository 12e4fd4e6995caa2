"""A site's patients, searched and filtered, with what each has overdue and due: one query.

The counts are worked out in the same statement as the list (pending rows whose window has
opened, from the partial index on pending rows), so a page costs one round trip however
many patients it shows. Pages follow the study id (a keyset), never OFFSET.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Integer, and_, case, false, func, select
from sqlmodel import Session, col

from surveillance.records.patients import (
    FOLLOWED_STATUSES,
    Assessment,
    AssessmentStatus,
    Patient,
)

PAGE_SIZE = 50


@dataclass(frozen=True)
class PatientFilter:
    """What the list is narrowed to; empty strings mean "any"."""

    search: str = ""  # part of the study id, any case
    status: str = ""
    protocol: str = ""
    overdue_only: bool = False


@dataclass(frozen=True)
class PatientRow:
    study_id: str
    status: str
    status_on: date | None
    protocol_id: str
    protocol_version: str
    overdue: int
    due: int


@dataclass(frozen=True)
class PatientPage:
    rows: list[PatientRow]
    total: int  # every patient the filter matches, on all pages
    next_after: str | None  # the study id the next page starts after; None: last page


def patient_page(
    session: Session,
    *,
    site_id: str,
    on: date,
    reporting: frozenset[str],
    wanted: PatientFilter,
    after: str | None = None,
    limit: int = PAGE_SIZE,
) -> PatientPage:
    """One page of ``site_id``'s patients matching ``wanted``, by study id, with their
    overdue and due counts on ``on`` (counted as the due list counts them: a patient no
    longer followed keeps only its reporting clocks)."""
    inner = _matching(site_id, on, reporting, wanted).subquery()
    statement = select(inner).order_by(inner.c.study_id).limit(limit + 1)
    if after:
        statement = statement.where(inner.c.study_id > after)
    rows = session.connection().execute(statement).all()
    total = rows[0].total if rows else (0 if not after else _total(session, inner))
    shown = [_row(r) for r in rows[:limit]]
    next_after = shown[-1].study_id if len(rows) > limit else None
    return PatientPage(shown, total, next_after)


def _matching(site_id: str, on: date, reporting: frozenset[str], wanted: PatientFilter) -> Any:
    """Patients with their counts and, in every row, how many match (a window count:
    the total comes with the page instead of a second query)."""
    counts = _counts(site_id, on, reporting)
    followed = col(Patient.status).in_(FOLLOWED_STATUSES)
    overdue = func.coalesce(
        case((followed, counts.c.overdue), else_=counts.c.overdue_reporting), 0
    ).cast(Integer)
    due = func.coalesce(case((followed, counts.c.due), else_=counts.c.due_reporting), 0)
    statement = (
        select(
            col(Patient.study_id),
            col(Patient.status),
            col(Patient.status_on),
            col(Patient.protocol_id),
            col(Patient.protocol_version),
            overdue.label("overdue"),
            due.cast(Integer).label("due"),
            func.count().over().label("total"),
        )
        .select_from(Patient)
        .outerjoin(counts, counts.c.patient_id == col(Patient.id))
        .where(col(Patient.site_id) == site_id)
    )
    if wanted.search.strip():
        # Study ids are upper case (see enrolment.STUDY_ID): a search in any case finds them.
        needle = wanted.search.strip().upper().replace("\\", "\\\\")
        needle = needle.replace("%", "\\%").replace("_", "\\_")
        statement = statement.where(col(Patient.study_id).like(f"%{needle}%", escape="\\"))
    if wanted.status:
        statement = statement.where(col(Patient.status) == wanted.status)
    if wanted.protocol:
        statement = statement.where(col(Patient.protocol_id) == wanted.protocol)
    if wanted.overdue_only:
        statement = statement.where(overdue > 0)
    return statement


def _counts(site_id: str, on: date, reporting: frozenset[str]) -> Any:
    """Per patient, the site's pending rows whose window has opened, split by state and by
    whether they are reporting clocks: one pass over the partial index on pending rows
    (a patient no longer followed keeps only its reporting clocks on the due list)."""
    window_end = col(Assessment.window_end)
    clock = col(Assessment.category).in_(sorted(reporting)) if reporting else false()

    def total(*when: Any) -> Any:
        return func.sum(case((and_(*when), 1), else_=0))

    return (
        select(
            col(Assessment.patient_id).label("patient_id"),
            total(window_end < on).label("overdue"),
            total(window_end < on, clock).label("overdue_reporting"),
            total(window_end >= on).label("due"),
            total(window_end >= on, clock).label("due_reporting"),
        )
        .where(
            col(Assessment.site_id) == site_id,
            col(Assessment.status) == AssessmentStatus.pending.value,
            col(Assessment.window_start) <= on,  # opened: only these can be due or overdue
        )
        .group_by(col(Assessment.patient_id))
        .subquery()
    )


def _total(session: Session, inner: Any) -> int:
    """A page past the last match has no row to carry the total: count it alone."""
    return int(session.connection().execute(select(func.count()).select_from(inner)).scalar_one())


def _row(r: Any) -> PatientRow:
    return PatientRow(
        r.study_id,
        r.status,
        r.status_on,
        r.protocol_id,
        r.protocol_version,
        int(r.overdue),
        int(r.due),
    )
