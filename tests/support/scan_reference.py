"""The alert scan's queries as they were before their tuning for PostgreSQL (issue 15,
10^5 patients): the patient joined to every row read, the pair of latest yearly contacts
found by a self-join. Kept as the reference the tuned queries must equal, row for row
(``tests/surveillance/alerting/test_scan_query_shapes.py``). What the tuning left as it
was (the incremental parts, the thresholds) is the application's own."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import String, and_, case, cast, exists, func, literal, or_, select
from sqlalchemy.sql import ColumnElement, Select
from sqlmodel import col

from surveillance.alerting.models import Acknowledgement
from surveillance.alerting.scan_queries import (
    RECENT_CONTACTS,
    Rows,
    Scope,
    _at_risk_candidates,
    _earliest,
    _since_or_changed,
)
from surveillance.records.patients import (
    FOLLOWED_STATUSES,
    Assessment,
    AssessmentStatus,
    Patient,
)


def _overdue_rows(scope: Scope, round_number: Any = None) -> Select[Any]:
    label = (literal("0") if round_number is None else round_number).label("round")
    return (
        select(col(Assessment.id), col(Assessment.patient_id), label)
        .join(Patient, col(Patient.id) == col(Assessment.patient_id))
        .where(
            col(Assessment.site_id) == scope.site_id,
            col(Assessment.status) == AssessmentStatus.pending.value,
            col(Assessment.window_end) < scope.as_of,
            col(Patient.protocol_id) == scope.protocol_id,
            or_(col(Patient.status).in_(FOLLOWED_STATUSES), scope.reporting),
        )
    )


def overdue(scope: Scope, level: int) -> Rows:
    since = scope.since
    return _since_or_changed(
        scope, _overdue_rows(scope), lambda: col(Assessment.window_end) >= since
    )


def escalated(scope: Scope, level: int) -> Rows:
    policy = scope.policy
    days_over = scope.days_over
    usual = policy.escalate_after_days if level == 1 else policy.sponsor_after_days
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
        col(Assessment.window_end) <= scope.as_of - timedelta(days=_earliest(policy, level)),
    )
    if level == 1:
        rows = rows.where(
            days_over < policy.sponsor_after_days,
            col(Assessment.window_end) > scope.as_of - timedelta(days=policy.sponsor_after_days),
        )

    def crossed() -> ColumnElement[bool]:
        then = scope.days_over_then
        return or_(
            then < start,
            (then - start) // policy.remind_every_days
            != (days_over - start) // policy.remind_every_days,
        )

    return _since_or_changed(scope, rows, crossed)


def at_risk(scope: Scope, level: int) -> Select[Any]:
    missed = (AssessmentStatus.missed.value, AssessmentStatus.pending.value)
    closed = (
        select(
            col(Assessment.id),
            col(Assessment.patient_id),
            col(Assessment.status),
            func.row_number()
            .over(
                partition_by=col(Assessment.patient_id),
                order_by=(col(Assessment.due_on).desc(), col(Assessment.id).desc()),
            )
            .label("recent"),
        )
        .join(Patient, col(Patient.id) == col(Assessment.patient_id))
        .where(
            col(Assessment.site_id) == scope.site_id,
            col(Patient.protocol_id) == scope.protocol_id,
            col(Patient.status).in_(FOLLOWED_STATUSES),
            col(Assessment.assessment).in_(scope.yearly_contacts),
            col(Assessment.due_on) >= scope.as_of - RECENT_CONTACTS,
            col(Assessment.window_end) < scope.as_of,
            col(Assessment.status) != AssessmentStatus.cancelled.value,
        )
    )
    if scope.since is not None:
        closed = closed.where(col(Assessment.patient_id).in_(_at_risk_candidates(scope, missed)))
    closed_rows = closed.cte("yearly_contacts")
    last, before = closed_rows.alias("last"), closed_rows.alias("before")
    return (
        select(last.c.id, last.c.patient_id, literal("0").label("round"))
        .join(before, and_(before.c.patient_id == last.c.patient_id, before.c.recent == 2))
        .where(last.c.recent == 1, last.c.status.in_(missed), before.c.status.in_(missed))
    )
