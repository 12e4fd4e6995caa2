"""Small reads the pages need beside the services: each one indexed query."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, tuple_
from sqlmodel import Session, col

import rules
from surveillance.accounts.auth import Principal
from surveillance.kit.audit import AuditEntry
from surveillance.patients.due_list import DueItem
from surveillance.records.patients import Assessment, Patient, Site, assessment_key
from surveillance.records.sites import get_site


def visible_site(session: Session, principal: Principal, site_id: str) -> Site:
    """The site if the user works there; another site is reported missing, as is an unknown one."""
    principal.require_site(site_id)
    return get_site(session, site_id)


def visible_sites(session: Session, principal: Principal) -> list[Site]:
    statement = select(Site).order_by(col(Site.id))
    if not principal.is_admin:
        statement = statement.where(col(Site.id).in_(principal.sites))
    return list(session.execute(statement).scalars())


def versions_of(session: Session, items: Sequence[DueItem]) -> dict[str, int]:
    """Each listed assessment's row version: forms send it back, so a stale one is refused."""
    if not items:
        return {}
    identities = {tuple(item.key.rsplit(":", 3)) for item in items}
    wanted = [
        (study, int(infusion), rule, int(occurrence))
        for study, infusion, rule, occurrence in identities
    ]
    identity = (
        col(Patient.study_id),
        col(Assessment.infusion_number),
        col(Assessment.assessment),
        col(Assessment.occurrence),
    )
    rows = session.execute(
        select(*identity, col(Assessment.version))
        .join(Patient, col(Patient.id) == col(Assessment.patient_id))
        .where(tuple_(*identity).in_(wanted))
    )
    return {
        assessment_key(r.study_id, r.infusion_number, r.assessment, r.occurrence): r.version
        for r in rows
    }


def patient_audit(session: Session, patient_id: int, limit: int = 500) -> list[AuditEntry]:
    """The patient's audit trail, newest first."""
    statement = (
        select(AuditEntry)
        .where(col(AuditEntry.patient_id) == patient_id)
        .order_by(col(AuditEntry.id).desc())
        .limit(limit)
    )
    return list(session.execute(statement).scalars())


def categories(registry: rules.ProtocolRegistry) -> list[str]:
    """Every assessment category of the known protocols (the due list's filter)."""
    return sorted(
        {str(rule.spec.category) for protocol in registry.all() for rule in protocol.rules.values()}
    )
