"""How well a site keeps its follow-up: the investigator dashboard's figures.

Each figure is one set-based query over the sites asked for (grouped, or ranked with a
window function); nothing loops over patients. ``on`` is the day the figures are for:
a window that ended before it is closed, a pending assessment past it is overdue.

- on-time completion rate: completed inside the window / (completed + missed + overdue),
  over assessments whose window has closed (``not_done`` and ``cancelled`` do not count),
  since a given day (the dashboard: the last 12 months) or over the whole follow-up;
- overdue by age: 0-14, 15-60 and more than 60 days after the window closed;
- at risk of loss to follow-up: an active patient whose last two yearly contacts with a
  closed window (``YEARLY_CONTACTS``, cancelled ones skipped) were both missed or are
  overdue;
- the oldest overdue items of each site.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, String, and_, case, func, literal_column, select, true
from sqlmodel import Session, col

import rules
from surveillance.protocols.registry import assessment_name
from surveillance.records.patients import (
    FOLLOWED_STATUSES,
    Assessment,
    AssessmentStatus,
    Patient,
    PatientStatus,
    assessment_key,
)

# The rules that are the yearly contact with the patient, across the bundled protocols.
YEARLY_CONTACTS = frozenset({"ltfu_exam", "ltfu_exam_pediatric", "ltfu_contact", "aav_ltfu_exam"})
# Patients whose pending work still counts as overdue (the due list's rule).
RECENT_OVERDUE_DAYS = 14
LONG_OVERDUE_DAYS = 60

_PENDING = AssessmentStatus.pending.value
_COMPLETED = AssessmentStatus.completed.value
_MISSED = AssessmentStatus.missed.value
_PENDING_SQL = literal_column(f"'{_PENDING}'", String)


@dataclass(frozen=True)
class SiteCompliance:
    site_id: str
    completed_on_time: int = 0
    completed: int = 0
    missed: int = 0
    overdue: int = 0
    overdue_0_14: int = 0
    overdue_15_60: int = 0
    overdue_over_60: int = 0
    # The rate's overdue rows: those whose window closed in the period (all when no period).
    rate_overdue: int = 0
    since: date | None = None  # the rate counts windows that closed on or after this day

    @property
    def closed(self) -> int:
        """Assessments whose window closed (in the period) and that count for the rate."""
        return self.completed + self.missed + self.rate_overdue

    @property
    def on_time_rate(self) -> float | None:
        """Share completed inside the window; ``None`` while no window has closed."""
        return self.completed_on_time / self.closed if self.closed else None


@dataclass(frozen=True)
class AtRiskPatient:
    study_id: str
    site_id: str
    earlier_window_end: date  # the older of the two missed or overdue contacts
    latest_window_end: date


@dataclass(frozen=True)
class OverdueItem:
    key: str
    study_id: str
    site_id: str
    name: str
    category: str
    due_on: date
    window_start: date
    window_end: date
    days_overdue: int


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


# Typed column handles (SQLModel attributes are plain Python types to a type checker).
_SITE = col(Assessment.site_id)
_STATUS = col(Assessment.status)
_WINDOW_START = col(Assessment.window_start)
_WINDOW_END = col(Assessment.window_end)
_PATIENT = col(Assessment.patient_id)
_JOIN_PATIENT = col(Patient.id) == _PATIENT
_FOLLOWED_PATIENT = col(Patient.status).in_(FOLLOWED_STATUSES)


def site_compliance(
    session: Session, *, site_ids: Collection[str], on: date, since: date | None = None
) -> list[SiteCompliance]:
    """Rate and overdue ages per site, in ``site_ids`` order (sites with nothing closed: zeros).

    The rate counts the windows that closed before ``on`` and, given ``since``, on or after
    it (the dashboard: the last 12 months, a count that does not grow with the years of
    follow-up); the overdue ages always count every overdue row.

    Two queries, each on an index: the completed and missed rows from
    ``ix_assessments_site_status_window`` alone (no table row, no patient read), and the
    overdue rows (pending, of a followed patient) from the pending rows' partial index.
    """
    ids = list(site_ids)
    completed = _STATUS == _COMPLETED
    performed = col(Assessment.performed_on)
    on_time = and_(completed, performed >= _WINDOW_START, performed <= _WINDOW_END)
    in_period = _WINDOW_END >= since if since is not None else true()
    done = (
        select(_SITE, _count(on_time), _count(completed), _count(_STATUS == _MISSED))
        .where(_SITE.in_(ids), _STATUS.in_((_COMPLETED, _MISSED)), _WINDOW_END < on, in_period)
        .group_by(_SITE)
    )
    recent = on - timedelta(days=RECENT_OVERDUE_DAYS)
    old = on - timedelta(days=LONG_OVERDUE_DAYS)
    overdue = (
        select(
            _SITE,
            func.count(),
            _count(_WINDOW_END >= recent),
            _count(and_(_WINDOW_END < recent, _WINDOW_END >= old)),
            _count(_WINDOW_END < old),
            _count(in_period),
        )
        .join(Patient, _JOIN_PATIENT)
        # Written as text so that SQLite matches the partial index's ``status = 'pending'``.
        .where(_SITE.in_(ids), _STATUS == _PENDING_SQL, _WINDOW_END < on, _FOLLOWED_PATIENT)
        .group_by(_SITE)
    )
    counts: dict[str, list[int]] = {site_id: [0] * 8 for site_id in ids}
    for site_id, *values in session.execute(done):
        counts[site_id][0:3] = [int(v) for v in values]
    for site_id, *values in session.execute(overdue):
        counts[site_id][3:8] = [int(v) for v in values]
    return [_figures(site_id, counts[site_id], since) for site_id in ids]


def _figures(site_id: str, counts: list[int], since: date | None) -> SiteCompliance:
    on_time, completed, missed, overdue, recent, middle, long, rate_overdue = counts
    return SiteCompliance(
        site_id, on_time, completed, missed, overdue, recent, middle, long, rate_overdue, since
    )


def at_risk_of_loss(
    session: Session, *, site_ids: Collection[str], on: date
) -> list[AtRiskPatient]:
    """Active patients whose last two closed yearly contacts were both missed or are overdue."""
    recency = func.row_number().over(
        partition_by=_PATIENT, order_by=(_WINDOW_END.desc(), col(Assessment.id).desc())
    )
    ranked = (
        select(_PATIENT, _STATUS, _WINDOW_END, recency.label("recency"))
        .where(
            _SITE.in_(site_ids),
            col(Assessment.assessment).in_(YEARLY_CONTACTS),
            _WINDOW_END < on,
            _STATUS.not_in((AssessmentStatus.cancelled.value, AssessmentStatus.not_required.value)),
        )
        .subquery()
    )
    lapsed = ranked.c.status.in_((_MISSED, _PENDING))
    study_id, site_id = col(Patient.study_id), col(Patient.site_id)
    statement = (
        select(study_id, site_id, func.min(ranked.c.window_end), func.max(ranked.c.window_end))
        .join(Patient, col(Patient.id) == ranked.c.patient_id)
        .where(ranked.c.recency <= 2, col(Patient.status) == PatientStatus.active.value)
        .group_by(study_id, site_id)
        .having(func.count() == 2, _count(lapsed) == 2)
        .order_by(site_id, study_id)
    )
    return [AtRiskPatient(*row) for row in session.execute(statement)]


def oldest_overdue(
    session: Session,
    *,
    site_ids: Collection[str],
    on: date,
    registry: rules.ProtocolRegistry,
    per_site: int = 5,
) -> list[OverdueItem]:
    """The ``per_site`` longest-overdue assessments of each site, oldest first."""
    rank = func.row_number().over(partition_by=_SITE, order_by=(_WINDOW_END, col(Assessment.id)))
    ranked = (
        select(
            col(Patient.study_id),
            _SITE,
            col(Assessment.infusion_number),
            col(Assessment.assessment),
            col(Assessment.occurrence),
            col(Assessment.category),
            col(Assessment.due_on),
            _WINDOW_START,
            _WINDOW_END,
            col(Assessment.protocol_id),
            col(Assessment.protocol_version),
            rank.label("rank"),
        )
        .join(Patient, _JOIN_PATIENT)
        .where(_SITE.in_(site_ids), _STATUS == _PENDING_SQL, _WINDOW_END < on, _FOLLOWED_PATIENT)
        .subquery()
    )
    statement = (
        select(ranked).where(ranked.c.rank <= per_site).order_by(ranked.c.site_id, ranked.c.rank)
    )
    return [_overdue_item(row, on, registry) for row in session.execute(statement)]


def _overdue_item(row: Any, on: date, registry: rules.ProtocolRegistry) -> OverdueItem:
    return OverdueItem(
        key=assessment_key(row.study_id, row.infusion_number, row.assessment, row.occurrence),
        study_id=row.study_id,
        site_id=row.site_id,
        name=assessment_name(registry, row.protocol_id, row.protocol_version, row.assessment),
        category=row.category,
        due_on=row.due_on,
        window_start=row.window_start,
        window_end=row.window_end,
        days_overdue=(on - row.window_end).days,
    )
