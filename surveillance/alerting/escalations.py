"""Escalations people acknowledge: the level an overdue item has reached, the checked
acknowledgement (API and web page), and each site's escalated items for the dashboard.

The level follows the alert policy of the patient's site and protocol: 1 from
``escalate_after_days`` after the window closed (the investigators), 2 from
``sponsor_after_days`` (the sponsor contact). An escalation is acknowledged only once it
has been reached (acknowledging ahead would silence it before anyone was told).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, String, and_, case, func, join, literal_column, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

import rules
from surveillance.accounts.auth import Principal
from surveillance.accounts.models import Role
from surveillance.alerting.models import Acknowledgement
from surveillance.alerting.operations import acknowledge
from surveillance.alerting.policy import AlertPolicy, policy_for
from surveillance.errors import Conflict, InvalidInput, NotFound
from surveillance.kit.i18n import N_
from surveillance.kit.text import multi_line
from surveillance.protocols.registry import assessment_name
from surveillance.records.patients import (
    FOLLOWED_STATUSES,
    Assessment,
    AssessmentStatus,
    Patient,
    assessment_key,
)
from surveillance.records.queries import find_assessment
from surveillance.records.sites import get_site

LEVELS = (1, 2)


@dataclass(frozen=True)
class EscalatedItem:
    key: str
    study_id: str
    name: str
    category: str
    window_start: date
    window_end: date
    days_overdue: int
    level: int  # reached today: 1 investigators, 2 sponsor contact
    acknowledged: Acknowledgement | None  # of ``level``
    earlier: tuple[Acknowledgement, ...]  # of lower levels


@dataclass(frozen=True)
class SiteEscalations:
    site_id: str
    on: date
    total: int
    unacknowledged: int
    to_acknowledge: list[EscalatedItem]  # oldest first
    acknowledged: list[EscalatedItem]  # latest acknowledgement first


def reached_level(days_overdue: int, policy: AlertPolicy) -> int:
    """0 (not escalated), 1 or 2."""
    if days_overdue >= policy.sponsor_after_days:
        return 2
    return 1 if days_overdue >= policy.escalate_after_days else 0


def acknowledge_escalation(
    session: Session,
    *,
    key: str,
    level: int,
    note: str,
    user: Principal,
    overrides: dict[str, dict[str, Any]],
    now: datetime,
) -> Acknowledgement:
    """``operations.acknowledge``, for an escalation the item has actually reached.

    Another site's assessment is the same 404 as a missing one; nurse and
    pharmacovigilance get 403; a second acknowledgement of a level is 409.
    """
    user.require_role(Role.investigator, Role.admin, to=N_("acknowledge an escalation"))
    multi_line(note, "note")
    if level not in LEVELS:
        raise InvalidInput("escalation level is 1 (investigators) or 2 (sponsor contact)")
    try:
        patient, row = find_assessment(session, key)
    except NotFound:
        raise NotFound(f"no assessment {key!r}") from None
    if not user.works_at(patient.site_id):
        raise NotFound(f"no assessment {key!r}")
    site = get_site(session, patient.site_id)
    days = (site.today(now) - row.window_end).days
    policy = policy_for(overrides, site=patient.site_id, protocol=patient.protocol_id)
    if row.status != AssessmentStatus.pending.value or patient.status not in FOLLOWED_STATUSES:
        raise Conflict(f"{key} is not overdue ({row.status}, patient {patient.status})")
    reached = reached_level(days, policy)
    if level > reached:
        raise Conflict(
            f"{key} has not reached escalation {level}: {max(days, 0)} days overdue "
            f"(escalation 1 from {policy.escalate_after_days} days, "
            f"2 from {policy.sponsor_after_days})"
        )
    ack = acknowledge(session, key=key, level=level, note=note, user=user, now=now)
    try:
        session.flush()  # a concurrent acknowledgement of the same level: 409, not 500
    except IntegrityError:
        raise Conflict(f"escalation {level} of {key} is already acknowledged") from None
    return ack


def site_escalations(
    session: Session,
    *,
    site_id: str,
    on: date,
    registry: rules.ProtocolRegistry,
    overrides: dict[str, dict[str, Any]],
    limit: int = 10,
    recent: int = 5,
) -> SiteEscalations:
    """The site's escalations as of ``on``: counts, the oldest ``limit`` still to
    acknowledge, and the ``recent`` latest acknowledged (at the level reached)."""
    level = _level(site_id, on, overrides)
    ack = col(Acknowledgement.assessment_id)
    tables = join(Assessment, Patient, col(Patient.id) == col(Assessment.patient_id)).outerjoin(
        Acknowledgement, and_(ack == col(Assessment.id), col(Acknowledgement.level) == level)
    )
    where = (
        col(Assessment.site_id) == site_id,
        # As SQL text, so that SQLite matches the pending rows' partial index ...
        col(Assessment.status) == literal_column(f"'{AssessmentStatus.pending.value}'", String),
        # ... and a bound on the window implied by ``level >= 1``, so that it ranges on it.
        col(Assessment.window_end) <= _latest_escalated_window_end(site_id, on, overrides),
        col(Patient.status).in_(FOLLOWED_STATUSES),
        level >= 1,
    )
    counts = select(func.count(), func.count(ack)).select_from(tables).where(*where)
    total, acknowledged = session.execute(counts).one()
    escalated = (
        select(Assessment, col(Patient.study_id), level.label("level"))
        .select_from(tables)
        .where(*where)
    )
    open_rows = session.execute(
        escalated.where(ack.is_(None))
        .order_by(col(Assessment.window_end), col(Assessment.id))
        .limit(limit)
    ).all()
    done_rows = session.execute(
        escalated.where(ack.is_not(None))
        .order_by(col(Acknowledgement.at).desc(), col(Assessment.id))
        .limit(recent)
    ).all()
    acks = _acks_of(session, [row.Assessment.id for row in (*open_rows, *done_rows)])

    def items(rows: Sequence[Any]) -> list[EscalatedItem]:
        return [_item(r.Assessment, r.study_id, r.level, on, acks, registry) for r in rows]

    return SiteEscalations(
        site_id, on, int(total), int(total) - int(acknowledged), items(open_rows), items(done_rows)
    )


def _level(site_id: str, on: date, overrides: dict[str, dict[str, Any]]) -> ColumnElement[int]:
    """The level reached as of ``on``, as SQL (protocol overrides first, then the site's)."""
    window_end = col(Assessment.window_end)
    protocol = col(Patient.protocol_id)

    def closed(days: int) -> ColumnElement[bool]:
        return window_end <= on - timedelta(days=days)

    branches: list[tuple[ColumnElement[bool], int]] = []
    for scope in overrides:
        if scope.startswith("protocol:"):
            name = scope.removeprefix("protocol:")
            policy = policy_for(overrides, site=site_id, protocol=name)
            branches += [
                (and_(protocol == name, closed(policy.sponsor_after_days)), 2),
                (and_(protocol == name, closed(policy.escalate_after_days)), 1),
                (protocol == name, 0),
            ]
    policy = policy_for(overrides, site=site_id, protocol="")
    branches += [(closed(policy.sponsor_after_days), 2), (closed(policy.escalate_after_days), 1)]
    return case(*branches, else_=0)


def _latest_escalated_window_end(
    site_id: str, on: date, overrides: dict[str, dict[str, Any]]
) -> date:
    """No row whose window ended after this day has reached level 1 under any policy
    ``_level`` applies (the shortest delay of them all)."""
    policies = [policy_for(overrides, site=site_id, protocol="")] + [
        policy_for(overrides, site=site_id, protocol=scope.removeprefix("protocol:"))
        for scope in overrides
        if scope.startswith("protocol:")
    ]
    days = min(min(p.escalate_after_days, p.sponsor_after_days) for p in policies)
    return on - timedelta(days=days)


def _acks_of(session: Session, ids: Sequence[int | None]) -> dict[int, list[Acknowledgement]]:
    found: dict[int, list[Acknowledgement]] = {}
    if not ids:
        return found
    statement = (
        select(Acknowledgement)
        .where(col(Acknowledgement.assessment_id).in_([i for i in ids if i is not None]))
        .order_by(col(Acknowledgement.level))
    )
    for ack in session.execute(statement).scalars():
        found.setdefault(ack.assessment_id, []).append(ack)
    return found


def _item(
    row: Assessment,
    study_id: str,
    level: int,
    on: date,
    acks: dict[int, list[Acknowledgement]],
    registry: rules.ProtocolRegistry,
) -> EscalatedItem:
    mine = acks.get(row.id or 0, [])
    return EscalatedItem(
        key=assessment_key(study_id, row.infusion_number, row.assessment, row.occurrence),
        study_id=study_id,
        name=assessment_name(registry, row.protocol_id, row.protocol_version, row.assessment),
        category=row.category,
        window_start=row.window_start,
        window_end=row.window_end,
        days_overdue=(on - row.window_end).days,
        level=int(level),
        acknowledged=next((a for a in mine if a.level == level), None),
        earlier=tuple(a for a in mine if a.level < level),
    )
