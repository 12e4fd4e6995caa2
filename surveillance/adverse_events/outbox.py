"""Alerts a case change puts in the outbox, in the same transaction as the change.

Every version: the ``adverse_event.created|updated|nullified`` webhook to each endpoint
that subscribed. A case that becomes serious: the ``adverse_event.serious`` webhook and
an email to the site's investigators, once per case. Ids are deterministic, so a
retried transaction or a second writer cannot queue the same alert twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlmodel import Session, col

from surveillance.records.adverse_event_vocabulary import Change
from surveillance.records.adverse_events import AdverseEventCase, AdverseEventVersion
from surveillance.records.outbox import Alert, AlertKind, AlertStatus, Channel, WebhookEndpoint

# The webhook every version sends, by the version's change.
CHANGE_KINDS = {
    Change.created.value: AlertKind.adverse_event_created,
    Change.updated.value: AlertKind.adverse_event_updated,
    Change.nullified.value: AlertKind.adverse_event_nullified,
}


def case_changed(
    session: Session,
    *,
    case: AdverseEventCase,
    version: AdverseEventVersion,
    content: dict[str, Any],
    was_serious: bool,
    now: datetime,
) -> None:
    kind = CHANGE_KINDS[version.change]
    for endpoint_id in subscribed_endpoints(session, kind, case.site_id):
        _queue(session, kind, case, version, Channel.webhook, endpoint_id, now)
    if version.serious and version.change != Change.nullified.value and not was_serious:
        serious, recipient = AlertKind.adverse_event_serious, f"site:{case.site_id}:investigator"
        _queue(session, serious, case, version, Channel.email, recipient, now, per_case=True)
        for endpoint_id in subscribed_endpoints(session, serious, case.site_id):
            _queue(session, serious, case, version, Channel.webhook, endpoint_id, now, True)


def subscribed_endpoints(session: Session, kind: AlertKind, site_id: str) -> list[str]:
    endpoints = session.execute(
        select(col(WebhookEndpoint.id), col(WebhookEndpoint.event_types)).where(
            col(WebhookEndpoint.enabled).is_(True),
            or_(col(WebhookEndpoint.site_id).is_(None), col(WebhookEndpoint.site_id) == site_id),
        )
    )
    return [i for i, types in endpoints if kind in types.split(",")]


def queue_unacknowledged(
    session: Session, case: AdverseEventCase, version: AdverseEventVersion, now: datetime
) -> int:
    """Remind the site's investigators and the admins: no safety system took this version."""
    kind, created = AlertKind.adverse_event_unacknowledged, 0
    for recipient in (f"site:{case.site_id}:investigator", "admins"):
        created += _queue(session, kind, case, version, Channel.email, recipient, now)
    return created


def _queue(
    session: Session,
    kind: AlertKind,
    case: AdverseEventCase,
    version: AdverseEventVersion,
    channel: Channel,
    recipient: str,
    now: datetime,
    per_case: bool = False,
) -> int:
    subject = case.case_id if per_case else f"{case.case_id}:{version.version}"
    alert_id = f"{kind.value}:{subject}:0:0:{channel.value}:{recipient}"
    if session.get(Alert, alert_id) is not None:
        return 0
    session.add(
        Alert(
            id=alert_id,
            kind=kind.value,
            level=0,
            channel=channel.value,
            recipient=recipient,
            site_id=case.site_id,
            patient_id=case.patient_id,
            case_id=case.case_id,
            case_version=version.version,
            as_of=version.last_info_date,
            status=AlertStatus.pending.value,
            next_attempt_at=now,
            created_at=now,
        )
    )
    session.flush()
    return 1
