"""What the scan looks for, one query per scanned kind (the registry in ``kinds`` names them).

A per-group query selects ``(id, patient_id, round)`` for one (site, protocol) group and
one level: the assessment the alert is about, its patient, and the reminder round (part
of the alert id, so a weekly reminder is a new alert and a re-scan the same day is not).

Incremental scans (``Scope.since`` set): the group was scanned "as of" ``since`` with
the same policy, protocols and endpoints, and every alert that scan selected exists. A row
of a patient nobody wrote since (``Scope.changed`` lists those somebody did) can only
give a new alert if time made it cross a threshold in (since, as_of]: its window closed
(overdue, and a yearly contact that becomes the latest), or its days overdue reached an
escalation level or a new reminder round. Each query selects exactly those rows, plus
every row of the changed patients, each still under all of the full query's conditions,
so what it selects is what the full query selects minus alerts that already exist.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Date,
    String,
    and_,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    union,
)
from sqlalchemy.sql import ColumnElement, CompoundSelect, Select
from sqlmodel import Session, col

from surveillance.adverse_events.acks import alert_unacknowledged
from surveillance.alerting.models import Acknowledgement
from surveillance.alerting.policy import AlertPolicy, policy_for
from surveillance.kit.sql import among, days_between
from surveillance.records.patients import (
    FOLLOWED_STATUSES,
    Assessment,
    AssessmentStatus,
    Patient,
)

RECENT_CONTACTS = timedelta(days=2 * 366 + 180)


@dataclass(frozen=True)
class Scope:
    """One (site, protocol) group of a scan: its policy and its local date."""

    site_id: str
    protocol_id: str
    as_of: date
    policy: AlertPolicy
    # What the protocols declare: the reporting categories (owed whatever the patient's
    # status) and this protocol's yearly contacts (or the policy's own list).
    reporting_categories: tuple[str, ...]
    yearly_contacts: tuple[str, ...]
    # Incremental: the day this group's last scan was "as of", and the patients written
    # since (None: a full scan).
    since: date | None = None
    changed: tuple[int, ...] = ()

    @property
    def reporting(self) -> ColumnElement[bool]:
        """The assessment is a regulatory reporting duty."""
        return col(Assessment.category).in_(self.reporting_categories)

    @property
    def days_over(self) -> ColumnElement[int]:
        """Days from the assessment's window end to the scan's date."""
        return days_between(literal(self.as_of, Date), col(Assessment.window_end))

    @property
    def days_over_then(self) -> ColumnElement[int]:
        """Days from the assessment's window end to the last scan's date."""
        assert self.since is not None
        return days_between(literal(self.since, Date), col(Assessment.window_end))


Rows = Select[Any] | CompoundSelect[Any]


def _since_or_changed(
    scope: Scope, rows: Select[Any], crossed: Callable[[], ColumnElement[bool]]
) -> Rows:
    """All of ``rows`` (a full scan), or those that ``crossed`` a threshold since the last
    scan plus those of the patients written since (an incremental one). Scanned again the
    same day, nothing can have crossed a threshold: only the changed patients are read."""
    if scope.since is None:
        return rows
    parts = [rows.where(crossed())] if scope.since < scope.as_of else []
    if scope.changed:
        parts.append(rows.where(col(Assessment.patient_id).in_(scope.changed)))
    if not parts:
        return rows.where(false())
    # A UNION, not an OR: each half keeps its own index (window ends; patient ids).
    return parts[0] if len(parts) == 1 else union(*parts)


def _in_group(
    scope: Scope, patient_id: Any, *, or_else: ColumnElement[bool] | None = None
) -> ColumnElement[bool]:
    """The row's patient is of the group's protocol and still followed (or ``or_else`` holds).

    Looked up row by row (a scalar subquery on the patient's key), not joined. PostgreSQL
    estimates "pending, window closed before D" from the whole table (most rows closed
    long ago are done, most pending ones lie ahead: at 10^5 patients 132 679 estimated for
    449 read) and then hashed all the registry's patients for each group and statement,
    JIT-compiled (the escalations' 3.6 s). A row has one patient (a foreign key; none
    would give NULL here, no row, as the join gave none): what the join selected."""
    followed = col(Patient.status).in_(FOLLOWED_STATUSES)
    holds = and_(
        col(Patient.protocol_id) == scope.protocol_id,
        followed if or_else is None else or_(followed, or_else),
    )
    return select(holds).where(col(Patient.id) == patient_id).scalar_subquery()


def _overdue_rows(scope: Scope, round_number: Any = None) -> Select[Any]:
    label = (literal("0") if round_number is None else round_number).label("round")
    return select(col(Assessment.id), col(Assessment.patient_id), label).where(
        col(Assessment.site_id) == scope.site_id,
        col(Assessment.status) == AssessmentStatus.pending.value,
        col(Assessment.window_end) < scope.as_of,
        # A reporting clock is owed whatever the patient's status (a death).
        _in_group(scope, col(Assessment.patient_id), or_else=scope.reporting),
    )


def overdue(scope: Scope, level: int) -> Rows:
    """Pending assessments whose window closed before the scan's date."""
    since = scope.since
    return _since_or_changed(
        scope, _overdue_rows(scope), lambda: col(Assessment.window_end) >= since
    )


def escalated(scope: Scope, level: int) -> Rows:
    """Overdue long enough for ``level`` (1 investigators, 2 sponsor) and not acknowledged
    at that level; one round per ``remind_every_days``."""
    policy = scope.policy
    days_over = scope.days_over
    usual = policy.escalate_after_days if level == 1 else policy.sponsor_after_days
    # A reporting clock escalates a day after it ran out (level 2 as usual).
    start: Any = usual
    if level == 1:
        start = case((scope.reporting, policy.reporting_escalate_after_days), else_=usual)
    round_number = cast((days_over - start) // policy.remind_every_days, String)
    rows = _overdue_rows(scope, round_number).where(
        days_over >= start,
        ~exists().where(
            col(Acknowledgement.assessment_id) == col(Assessment.id),
            col(Acknowledgement.level) == level,
        ),
        # Implied by ``days_over >= start``, as a date: a range on the pending rows' index.
        col(Assessment.window_end) <= scope.as_of - timedelta(days=_earliest(policy, level)),
    )
    if level == 1:
        rows = rows.where(
            days_over < policy.sponsor_after_days,
            col(Assessment.window_end) > scope.as_of - timedelta(days=policy.sponsor_after_days),
        )

    def crossed() -> ColumnElement[bool]:
        """Not at that level on the last scan's date, or in another reminder round then."""
        then = scope.days_over_then
        return or_(
            then < start,
            (then - start) // policy.remind_every_days
            != (days_over - start) // policy.remind_every_days,
        )

    return _since_or_changed(scope, rows, crossed)


def _earliest(policy: AlertPolicy, level: int) -> int:
    """The fewest days overdue at which anything reaches ``level``."""
    if level == 1:
        return min(policy.escalate_after_days, policy.reporting_escalate_after_days)
    return policy.sponsor_after_days


def at_risk(scope: Scope, level: int) -> Select[Any]:
    """Two consecutive yearly contacts missed (or still undone after their window): the
    latest of the two.

    One pass over the group's recent closed yearly contacts, each patient's in order,
    newest first: the latest one, with the status of the one before it (``lead``). A
    self-join of the two latest was planned as a nested loop over all the contacts read
    (estimated one row on each side). Whether the patient is of the group's protocol and
    still followed holds for all of a patient's rows or none: it is asked of the latest
    ones only, not of every row read (a hash of every patient, for each group)."""
    missed = (AssessmentStatus.missed.value, AssessmentStatus.pending.value)
    patient = col(Assessment.patient_id)
    newest_first = (col(Assessment.due_on).desc(), col(Assessment.id).desc())
    closed = select(
        col(Assessment.id),
        patient,
        col(Assessment.status),
        func.row_number().over(partition_by=patient, order_by=newest_first).label("recent"),
        func.lead(col(Assessment.status))
        .over(partition_by=patient, order_by=newest_first)
        .label("before_status"),
    ).where(
        col(Assessment.site_id) == scope.site_id,
        col(Assessment.assessment).in_(scope.yearly_contacts),
        # The last two yearly contacts fall within about two years: reading only
        # those keeps this an index range scan (ix_assessments_site_rule_due).
        col(Assessment.due_on) >= scope.as_of - RECENT_CONTACTS,
        col(Assessment.window_end) < scope.as_of,
        col(Assessment.status) != AssessmentStatus.cancelled.value,
    )
    if scope.since is None:
        closed = closed.where(among(patient, _twice_missed(scope, missed)))
    else:  # fewer still: those whose pair may be new
        closed = closed.where(col(Assessment.patient_id).in_(_at_risk_candidates(scope, missed)))
    latest = closed.subquery("yearly_contacts")
    return select(latest.c.id, latest.c.patient_id, literal("0").label("round")).where(
        latest.c.recent == 1,
        latest.c.status.in_(missed),
        # No contact before the latest: NULL, not missed.
        latest.c.before_status.in_(missed),
        _in_group(scope, latest.c.patient_id),
    )


def _twice_missed(scope: Scope, missed: tuple[str, ...]) -> Select[Any]:
    """The patients with two yearly contacts at the site missed or undone after their
    window: only they can have a pair (both of its contacts are such). Read from an index
    alone (ix_assessments_site_rule_status_window), a few of the site's patients, whose
    rows are then read by patient: at 10^5 patients 146 of a site's 2 000, 483 table pages
    read instead of the 8 731 holding its recent yearly contacts."""
    return (
        select(col(Assessment.patient_id))
        .where(
            col(Assessment.site_id) == scope.site_id,
            col(Assessment.assessment).in_(scope.yearly_contacts),
            col(Assessment.status).in_(missed),
            col(Assessment.window_end) < scope.as_of,
        )
        .group_by(col(Assessment.patient_id))
        .having(func.count() >= 2)
    )


def _at_risk_candidates(scope: Scope, missed: tuple[str, ...]) -> Any:
    """The patients whose pair of latest yearly contacts may be new since the last scan:
    those written since, and those with a yearly contact missed or undone whose window
    closed since (it is then the latest, or the one before). A contact leaving the
    two-year range only ever removes a pair; one not missed never makes one."""
    assert scope.since is not None
    changed = select(col(Patient.id)).where(col(Patient.id).in_(scope.changed))
    if scope.since == scope.as_of:  # the same day: no window closed since
        return changed
    closed_since = select(col(Assessment.patient_id)).where(
        col(Assessment.site_id) == scope.site_id,
        col(Assessment.assessment).in_(scope.yearly_contacts),
        col(Assessment.status).in_(missed),
        col(Assessment.window_end) >= scope.since,
        col(Assessment.window_end) < scope.as_of,
    )
    return union(closed_since, changed) if scope.changed else closed_since


def unacknowledged(session: Session, *, now: datetime, overrides: dict[str, dict[str, Any]]) -> int:
    """Serious cases not accepted by every safety system in time (queued by the case
    package, which writes its own alerts)."""

    def within(site_id: str) -> timedelta:  # a site may agree a shorter time with its sponsor
        hours = policy_for(overrides, site=site_id, protocol="").acknowledge_within_hours
        return timedelta(hours=hours)

    return alert_unacknowledged(session, now=now, within=within)
