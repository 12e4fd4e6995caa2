"""The alert scan: a few set-based INSERT ... SELECT statements, never a loop over patients.

Every alert id is deterministic, and inserts skip ids already present, so scanning twice,
or on two machines at once, creates each alert once. Which kinds are scanned, what each
looks for and whom it tells are declared in the registry (``kinds``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, String, cast, literal, or_, select, text, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import ColumnElement, Select
from sqlmodel import Session, col

import rules
from surveillance.alerting.kinds import SCANNED, Kind, ScanAll, ScanEach
from surveillance.alerting.policy import policy_for
from surveillance.alerting.scan_queries import Scope
from surveillance.kit.sqltypes import UtcDateTime
from surveillance.records.outbox import Alert, AlertStatus, Channel, WebhookEndpoint
from surveillance.records.patients import Patient
from surveillance.records.sites import list_sites

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
    sites = {site.id: site for site in list_sites(session)}
    groups = session.execute(select(col(Patient.site_id), col(Patient.protocol_id)).distinct())
    for site_id, protocol_id in groups:
        as_of = on or sites[site_id].today(now)
        report.as_of[site_id] = as_of
        policy = policy_for(overrides, site=site_id, protocol=protocol_id)
        scope = Scope(
            site_id,
            protocol_id,
            as_of,
            policy,
            reporting_categories=tuple(sorted(registry.reporting_categories())),
            yearly_contacts=policy.yearly_contact_rules(registry, protocol_id),
        )
        writer = _Writer(session, scope, now)
        for kind in SCANNED:
            if isinstance(kind.scan, ScanEach):
                for level in kind.scan.levels:
                    report.add(kind.name.value, writer.emit(kind, kind.scan, level))
    for kind in SCANNED:
        if isinstance(kind.scan, ScanAll):
            report.add(kind.name.value, kind.scan.run(session, now=now, overrides=overrides))
    return report


class _Writer:
    """Writes one group's alerts: set-based INSERT ... SELECT, skipping ids already there."""

    def __init__(self, session: Session, scope: Scope, now: datetime) -> None:
        self.session, self.scope, self.now = session, scope, now

    def emit(self, kind: Kind, scan: ScanEach, level: int) -> int:
        """Insert one email alert per row, and one webhook alert per subscribed endpoint.

        The rows select (id, patient_id, round): the subject and the reminder round.
        """
        name, site_id = kind.name.value, self.scope.site_id
        recipient = scan.recipient(site_id, level)
        source = scan.rows(self.scope, level).subquery()
        subject: ColumnElement[str] = cast(source.c.id, String)
        if scan.per_patient:  # per patient and per latest missed contact
            subject = cast(source.c.patient_id, String) + literal(".") + subject
        prefix = literal(f"{name}:") + subject + literal(f":{level}:") + source.c["round"]
        common = (
            literal(name), literal(level),
        )  # fmt: skip
        tail = (
            literal(site_id),
            source.c.patient_id,
            source.c.id,
            literal(self.scope.as_of, Date),
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
                or_(endpoint.site_id.is_(None), endpoint.site_id == site_id),
                (literal(",") + endpoint.event_types + literal(",")).like(f"%,{name},%"),
            )
        )
        return self._insert(email) + self._insert(webhooks)

    def _insert(self, rows: Select[Any]) -> int:
        table = Alert.__table__  # type: ignore[attr-defined]
        dialect = postgresql if self.session.get_bind().dialect.name == "postgresql" else sqlite
        statement = dialect.insert(table).from_select(list(_COLUMNS), rows).on_conflict_do_nothing()
        # SQLAlchemy memoizes an INSERT's rowcount only when asked (psycopg gives -1 otherwise).
        result = self.session.execute(statement.execution_options(preserve_rowcount=True))
        count = int(getattr(result, "rowcount", 0) or 0)
        if count < 0 and dialect is sqlite:
            # Python's sqlite3 reports -1 for a statement starting WITH (a query with a CTE):
            # SQLite itself still counts the rows the INSERT wrote.
            count = int(self.session.execute(text("SELECT changes()")).scalar_one())
        return count
