"""Acknowledgements from safety systems, and who has not yet taken a serious case.

The registered safety systems are the active users with the pharmacovigilance role; each
acknowledges what it ingested with an E2B-style code (AA, AE, AR). A serious case whose
latest version is not accepted (AA or AE) by every one of them in time raises an alert.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session, col

from surveillance.accounts.models import Role, User
from surveillance.adverse_events import outbox
from surveillance.adverse_events.cases import version_of
from surveillance.errors import InvalidInput
from surveillance.kit.bounds import check_id
from surveillance.kit.text import optional_multi_line, single_line
from surveillance.records.adverse_event_vocabulary import ACCEPTED, AckStatus, CaseStatus
from surveillance.records.adverse_events import (
    AdverseEventCase,
    AdverseEventVersion,
    FeedAcknowledgement,
)


def record_ack(
    session: Session,
    *,
    consumer: str,
    case_id: str,
    version: int,
    status: str,
    message: str | None,
    now: datetime,
) -> FeedAcknowledgement:
    try:
        code = AckStatus(status)
    except ValueError as exc:
        raise InvalidInput(
            f"status {status!r}: use AA (accepted), AE (accepted with errors) or AR (rejected)"
        ) from exc
    single_line(case_id, "case_id")
    optional_multi_line(message, "message")
    check_id(version, "version")
    if code is not AckStatus.AA and not (message and message.strip()):
        raise InvalidInput(f"status {code.value} needs a message saying what was wrong")
    version_of(session, case_id, version)  # NotFound if there is no such version
    ack = FeedAcknowledgement(
        case_id=case_id,
        version=version,
        consumer=consumer,
        status=code.value,
        message=message,
        received_at=now,
    )
    session.add(ack)
    session.flush()
    return ack


def safety_systems(session: Session) -> list[str]:
    return list(
        session.execute(
            select(col(User.email))
            .where(col(User.role) == Role.pharmacovigilance.value, col(User.active).is_(True))
            .order_by(col(User.email))
        ).scalars()
    )


@dataclass(frozen=True)
class SystemAck:
    consumer: str
    status: str | None  # the latest answer to the latest version; None: no answer yet
    message: str | None
    at: datetime | None

    @property
    def accepted(self) -> bool:
        return self.status is not None and AckStatus(self.status) in ACCEPTED


@dataclass(frozen=True)
class SeriousCaseAcks:
    case: AdverseEventCase
    version: AdverseEventVersion  # the latest: what the safety systems must accept
    systems: list[SystemAck]

    @property
    def recorded_at(self) -> datetime:
        """When the latest version was written: the acknowledgement clock starts here."""
        return _aware(self.version.recorded_at)

    def overdue(self, now: datetime, within: timedelta) -> bool:
        late = now - self.recorded_at >= within
        return late and not all(s.accepted for s in self.systems)


def serious_case_acks(
    session: Session, *, site_ids: set[str] | None = None, limit: int = 200
) -> list[SeriousCaseAcks]:
    """Open serious cases, newest first, with each safety system's answer to the latest
    (three statements, whatever the number of cases)."""
    serious = [
        col(AdverseEventCase.serious).is_(True),
        col(AdverseEventCase.status) == CaseStatus.open.value,
    ]
    if site_ids is not None:
        serious.append(col(AdverseEventCase.site_id).in_(site_ids))
    latest = (col(AdverseEventVersion.case_id) == col(AdverseEventCase.case_id)) & (
        col(AdverseEventVersion.version) == col(AdverseEventCase.version)
    )
    cases = session.execute(
        select(AdverseEventCase, AdverseEventVersion)
        .join(AdverseEventVersion, latest)
        .where(*serious)
        .order_by(col(AdverseEventCase.updated_at).desc())
        .limit(limit)
    ).all()
    answered = session.execute(
        select(FeedAcknowledgement)
        .join(
            AdverseEventCase,
            (col(AdverseEventCase.case_id) == col(FeedAcknowledgement.case_id))
            & (col(AdverseEventCase.version) == col(FeedAcknowledgement.version)),
        )
        .where(*serious)
        .order_by(col(FeedAcknowledgement.id))  # the latest answer of each system wins
    ).scalars()
    answers: dict[str, dict[str, tuple[str, str | None, datetime]]] = {}
    for ack in answered:
        answers.setdefault(ack.case_id, {})[ack.consumer] = (
            ack.status,
            ack.message,
            ack.received_at,
        )
    systems = safety_systems(session)
    return [
        SeriousCaseAcks(
            case,
            version,
            [
                SystemAck(s, *answers.get(case.case_id, {}).get(s, (None, None, None)))
                for s in systems
            ],
        )
        for case, version in cases
    ]


def latest_answers(
    session: Session, case_id: str, version: int
) -> dict[str, tuple[str, str | None, datetime]]:
    """consumer -> (status, message, at) of its latest answer to that version."""
    rows = session.execute(
        select(FeedAcknowledgement)
        .where(
            col(FeedAcknowledgement.case_id) == case_id,
            col(FeedAcknowledgement.version) == version,
        )
        .order_by(col(FeedAcknowledgement.id))
    ).scalars()
    return {a.consumer: (a.status, a.message, a.received_at) for a in rows}


def alert_unacknowledged(
    session: Session, *, now: datetime, within: Callable[[str], timedelta]
) -> int:
    """Queue a reminder for every serious case not accepted by all safety systems in time
    (``within``: the allowance at a site)."""
    created = 0
    for item in serious_case_acks(session, limit=10_000):
        if item.systems and item.overdue(now, within(item.case.site_id)):
            created += outbox.queue_unacknowledged(session, item.case, item.version, now)
    return created


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def reminder_gone(session: Session, case_id: str, version: int) -> str | None:
    """Why an "unacknowledged" reminder need not be sent any more, or None."""
    case = session.get(AdverseEventCase, case_id)
    if case is None or case.status == CaseStatus.nullified.value:
        return f"case {case_id} was nullified"
    if case.version != version:
        return f"case {case_id} has a newer version ({case.version}); its own clock runs"
    answers = latest_answers(session, case_id, version)
    systems = safety_systems(session)
    accepted = all(s in answers and AckStatus(answers[s][0]) in ACCEPTED for s in systems)
    return "accepted by every safety system meanwhile" if accepted else None
