"""The alert scan: a few set-based INSERT ... SELECT statements, never a loop over patients.

Every alert id is deterministic, and inserts skip ids already present, so scanning twice,
or on two machines at once, creates each alert once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, String, and_, case, cast, exists, func, literal, or_, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import ColumnElement, Select
from sqlmodel import Session, col

import rules
from surveillance.adverse_events.acks import alert_unacknowledged
from surveillance.adverse_events.outbox import UNACKNOWLEDGED
from surveillance.alerting.models import Acknowledgement
from surveillance.alerting.policy import AlertPolicy, policy_for
from surveillance.kit.clock import local_date
from surveillance.kit.sql import days_between
from surveillance.kit.sqltypes import UtcDateTime
from surveillance.records.outbox import Alert, AlertStatus, Channel, WebhookEndpoint
from surveillance.records.patients import (
    Assessment,
    AssessmentStatus,
    Patient,
    PatientStatus,
    Site,
)

RECENT_CONTACTS = timedelta(days=2 * 366 + 180)
FOLLOWED = (PatientStatus.active.value, PatientStatus.lost_to_follow_up.value)
_COLUMNS = (
    "id", "kind", "level", "channel", "recipient", "site_id", "patient_id", "assessment_id",
    "as_of", "status", "attempts", "next_attempt_at", "created_at",
)  # fmt: skip


@dataclass
class ScanReport:
    as_of: dict[str, date] = field(default_factory=dict)
    created: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, count: int) -> None:
        self.created[kind] = self.created.get(kind, 0) + max(count, 0)

    @property
    def total(self) -> int:
        return sum(self.created.values())


def scan(
    session: Session,
    *,
    now: datetime,
    overrides: dict[str, dict[str, Any]],
    registry: rules.ProtocolRegistry,
    on: date | None = None,
) -> ScanReport:
    """Create every alert due as of ``on`` (default: today at each site)."""
    report = ScanReport()
    groups = session.execute(
        select(col(Patient.site_id), col(Patient.protocol_id), col(Site.timezone))
        .join(Site)
        .distinct()
    )
    for site_id, protocol_id, timezone in groups:
        as_of = on or local_date(now, timezone)
        report.as_of[site_id] = as_of
        scope = _Scope(
            session,
            site_id,
            protocol_id,
            as_of,
            now,
            policy_for(overrides, site=site_id, protocol=protocol_id),
            registry,
        )
        report.add("assessment.overdue", scope.overdue())
        report.add("assessment.escalated", scope.escalated(level=1))
        report.add("assessment.escalated", scope.escalated(level=2))
        report.add("patient.follow_up_at_risk", scope.at_risk())

    def within(site_id: str) -> timedelta:  # a site may agree a shorter time with its sponsor
        hours = policy_for(overrides, site=site_id, protocol="").acknowledge_within_hours
        return timedelta(hours=hours)

    report.add(UNACKNOWLEDGED, alert_unacknowledged(session, now=now, within=within))
    return report


class _Scope:
    """One (site, protocol) group: its policy and its local date."""

    def __init__(
        self,
        session: Session,
        site_id: str,
        protocol_id: str,
        as_of: date,
        now: datetime,
        policy: AlertPolicy,
        registry: rules.ProtocolRegistry,
    ) -> None:
        self.session, self.site_id, self.protocol_id = session, site_id, protocol_id
        self.as_of, self.now, self.policy = as_of, now, policy
        # What the protocols declare: reporting clocks, and this protocol's yearly contacts.
        self.reporting = col(Assessment.category).in_(sorted(registry.reporting_categories()))
        self.yearly_contacts = policy.yearly_contact_rules(registry, protocol_id)
        self.days_over = days_between(literal(as_of, Date), col(Assessment.window_end))

    def _overdue_rows(self, round_number: Any = None) -> Select[Any]:
        label = (literal("0") if round_number is None else round_number).label("round")
        return (
            select(col(Assessment.id), col(Assessment.patient_id), label)
            .join(Patient, col(Patient.id) == col(Assessment.patient_id))
            .where(
                col(Assessment.site_id) == self.site_id,
                col(Assessment.status) == AssessmentStatus.pending.value,
                col(Assessment.window_end) < self.as_of,
                col(Patient.protocol_id) == self.protocol_id,
                # A reporting clock is owed whatever the patient's status (a death).
                or_(col(Patient.status).in_(FOLLOWED), self.reporting),
            )
        )

    def overdue(self) -> int:
        kind = "assessment.overdue"
        return self._emit(self._overdue_rows(), kind, 0, f"site:{self.site_id}:nurse")

    def escalated(self, level: int) -> int:
        policy = self.policy
        usual = policy.escalate_after_days if level == 1 else policy.sponsor_after_days
        # A reporting clock escalates a day after it ran out (level 2 as usual).
        start: Any = usual
        if level == 1:
            start = case((self.reporting, policy.reporting_escalate_after_days), else_=usual)
        round_number = cast((self.days_over - start) // policy.remind_every_days, String)
        rows = self._overdue_rows(round_number).where(
            self.days_over >= start,
            ~exists().where(
                col(Acknowledgement.assessment_id) == col(Assessment.id),
                col(Acknowledgement.level) == level,
            ),
        )
        if level == 1:
            rows = rows.where(self.days_over < policy.sponsor_after_days)
        recipient = f"site:{self.site_id}:investigator" if level == 1 else "admins"
        return self._emit(rows, "assessment.escalated", level, recipient)

    def at_risk(self) -> int:
        """Two consecutive yearly contacts missed (or still undone after their window)."""
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
                col(Assessment.site_id) == self.site_id,
                col(Patient.protocol_id) == self.protocol_id,
                col(Patient.status).in_(FOLLOWED),
                col(Assessment.assessment).in_(self.yearly_contacts),
                # The last two yearly contacts fall within about two years: reading only
                # those keeps this an index range scan (ix_assessments_site_rule_due).
                col(Assessment.due_on) >= self.as_of - RECENT_CONTACTS,
                col(Assessment.window_end) < self.as_of,
                col(Assessment.status) != AssessmentStatus.cancelled.value,
            )
            .cte("yearly_contacts")  # read once, used twice below
        )
        last, before = closed.alias("last"), closed.alias("before")
        missed = (AssessmentStatus.missed.value, AssessmentStatus.pending.value)
        rows = (
            select(last.c.id, last.c.patient_id, literal("0").label("round"))
            .join(before, and_(before.c.patient_id == last.c.patient_id, before.c.recent == 2))
            .where(last.c.recent == 1, last.c.status.in_(missed), before.c.status.in_(missed))
        )
        return self._emit(
            rows, "patient.follow_up_at_risk", 0, f"site:{self.site_id}:investigator", by="patient"
        )

    def _emit(
        self, rows: Select[Any], kind: str, level: int, recipient: str, by: str = "assessment"
    ) -> int:
        """Insert one email alert per row, and one webhook alert per subscribed endpoint.

        ``rows`` selects (id, patient_id, round): the subject and the reminder round.
        """
        source = rows.subquery()
        subject: ColumnElement[str] = cast(source.c.id, String)
        if by == "patient":  # per patient and per latest missed contact
            subject = cast(source.c.patient_id, String) + literal(".") + subject
        prefix = literal(f"{kind}:") + subject + literal(f":{level}:") + source.c["round"]
        common = (
            literal(kind), literal(level),
        )  # fmt: skip
        tail = (
            literal(self.site_id),
            source.c.patient_id,
            source.c.id,
            literal(self.as_of, Date),
            literal(AlertStatus.pending.value),
            literal(0),
            literal(self.now, UtcDateTime()),
            literal(self.now, UtcDateTime()),
        )
        email = (
            select(
                prefix + literal(f":email:{recipient}"),
                *common,
                literal(Channel.email.value),
                literal(recipient),
                *tail,
            )
            .select_from(source)
            .where(true())
        )  # SQLite needs a WHERE before ON CONFLICT
        endpoints = WebhookEndpoint.__table__  # type: ignore[attr-defined]
        endpoint = endpoints.c
        webhooks = (
            select(
                prefix + literal(":webhook:") + endpoint.id,
                *common,
                literal(Channel.webhook.value),
                endpoint.id,
                *tail,
            )
            .select_from(source)
            .join(endpoints, true())
            .where(
                endpoint.enabled.is_(True),
                or_(endpoint.site_id.is_(None), endpoint.site_id == self.site_id),
                (literal(",") + endpoint.event_types + literal(",")).like(f"%,{kind},%"),
            )
        )
        cte = by == "patient"  # the loss-to-follow-up rows come from a CTE
        return self._insert(email, starts_with_cte=cte) + self._insert(
            webhooks, starts_with_cte=cte
        )

    def _insert(self, rows: Select[Any], *, starts_with_cte: bool = False) -> int:
        table = Alert.__table__  # type: ignore[attr-defined]
        dialect = postgresql if self.session.get_bind().dialect.name == "postgresql" else sqlite
        statement = dialect.insert(table).from_select(list(_COLUMNS), rows).on_conflict_do_nothing()
        # Python's sqlite3 reports -1 for a statement starting WITH: count the rows instead.
        counted = starts_with_cte and dialect is sqlite
        before = self._count() if counted else 0
        # SQLAlchemy memoizes an INSERT's rowcount only when asked (psycopg gives -1 otherwise).
        result = self.session.execute(statement.execution_options(preserve_rowcount=True))
        if counted:
            return self._count() - before
        return int(getattr(result, "rowcount", 0) or 0)

    def _count(self) -> int:
        statement = (
            select(func.count()).select_from(Alert).where(col(Alert.site_id) == self.site_id)
        )
        return int(self.session.execute(statement).scalar_one())


def create_digests(
    session: Session,
    *,
    now: datetime,
    overrides: dict[str, dict[str, Any]],
    site_id: str | None = None,
) -> int:
    """Today's digest email for each site whose local digest hour has come (once a day)."""
    created = 0
    sites = session.execute(select(Site)).scalars()
    for site in sites:
        if site_id is not None and site.id != site_id:
            continue
        local = now.astimezone(ZoneInfo(site.timezone))
        policy = policy_for(overrides, site=site.id, protocol="")
        if local.hour < policy.digest_hour:
            continue
        day = local.date()
        alert_id = f"digest:{site.id}:{day.isoformat()}:email:site:{site.id}:nurse"
        if session.get(Alert, alert_id) is not None:
            continue
        session.add(
            Alert(
                id=alert_id,
                kind="digest",
                level=0,
                channel=Channel.email.value,
                recipient=f"site:{site.id}:nurse",
                site_id=site.id,
                as_of=day,
                next_attempt_at=now,
                created_at=now,
            )
        )
        created += 1
    session.flush()
    return created
