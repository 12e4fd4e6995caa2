"""The alert scan: a few set-based INSERT ... SELECT statements, never a loop over patients.

Every alert id is deterministic, and inserts skip ids already present, so scanning twice,
or on two machines at once, creates each alert once. Which kinds are scanned, what each
looks for and whom it tells are declared in the registry (``kinds``).

A scan is incremental by default: each (site, protocol) group keeps a mark (the day it
was last scanned "as of", and a fingerprint of the policy, protocols and webhook
endpoints that decided its alerts), and the next scan reads only the windows that closed
or the thresholds crossed since that day, plus the patients written since (listed by
database triggers, see migration 0012). A group scans in full when it has no mark, when
its fingerprint changed, when it is scanned as of an earlier day than its mark, when too
many patients changed, or when asked (``full=True``: the daily safety net in ``jobs``).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, String, cast, delete, literal, or_, select, text, true, union
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import ColumnElement, Select
from sqlmodel import Session, col

import rules
from surveillance.alerting.kinds import SCANNED, Kind, ScanAll, ScanEach
from surveillance.alerting.models import ScanChange, ScanMark
from surveillance.alerting.policy import policy_for
from surveillance.alerting.scan_queries import Scope
from surveillance.kit.sql import chunked
from surveillance.kit.sqltypes import UtcDateTime
from surveillance.records.outbox import Alert, AlertStatus, Channel, WebhookEndpoint
from surveillance.records.patients import Assessment, Patient
from surveillance.records.sites import list_sites

_COLUMNS = (
    "id", "kind", "level", "channel", "recipient", "site_id", "patient_id", "assessment_id",
    "as_of", "status", "attempts", "next_attempt_at", "created_at",
)  # fmt: skip


# Part of every group's fingerprint: a release that changes what a scan query selects
# bumps it, so the first scan after the upgrade is a full one.
SCAN_VERSION = "1"
# More patients written since the last scan than this: scan in full (a long IN list
# costs more than reading the groups, e.g. after a bulk enrolment or an amendment).
MAX_CHANGED = 2000


@dataclass
class ScanReport:
    as_of: dict[str, date] = field(default_factory=dict)
    created: dict[str, int] = field(default_factory=dict)
    # (site, protocol) groups scanned in full, and incrementally (with the day since).
    full_groups: list[tuple[str, str]] = field(default_factory=list)
    incremental_groups: list[tuple[str, str]] = field(default_factory=list)
    changed_patients: int = 0
    seconds: dict[str, float] = field(default_factory=dict)  # per kind, for the logs

    def timed(self, kind: str, started: float) -> None:
        self.seconds[kind] = self.seconds.get(kind, 0.0) + time.perf_counter() - started

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
    full: bool = False,
) -> ScanReport:
    """Create every alert due as of ``on`` (default: today at each site).

    Incremental unless ``full`` (see the module's docstring); both create the same alerts.
    """
    report = ScanReport()
    sites = {site.id: site for site in list_sites(session)}
    changed = _take_changes(session)
    report.changed_patients = len(changed)
    full = full or len(changed) > MAX_CHANGED
    changed_in = {} if full else _changed_by_group(session, changed)
    endpoints = _endpoints(session)
    marks = {(m.site_id, m.protocol_id): m for m in session.execute(select(ScanMark)).scalars()}
    groups = session.execute(select(col(Patient.site_id), col(Patient.protocol_id)).distinct())
    for site_id, protocol_id in groups.all():
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
        fingerprint = _fingerprint(scope, endpoints)
        mark = marks.get((site_id, protocol_id))
        if full or mark is None or mark.fingerprint != fingerprint or mark.as_of > as_of:
            report.full_groups.append((site_id, protocol_id))
        else:
            scope = replace(
                scope, since=mark.as_of, changed=changed_in.get((site_id, protocol_id), ())
            )
            report.incremental_groups.append((site_id, protocol_id))
        writer = _Writer(session, scope, now)
        for kind in SCANNED:
            if isinstance(kind.scan, ScanEach):
                started = time.perf_counter()
                for level in kind.scan.levels:
                    report.add(kind.name.value, writer.emit(kind, kind.scan, level))
                report.timed(kind.name.value, started)
        _set_mark(session, marks.get((site_id, protocol_id)), scope, fingerprint, now)
    for kind in SCANNED:
        if isinstance(kind.scan, ScanAll):
            started = time.perf_counter()
            report.add(kind.name.value, kind.scan.run(session, now=now, overrides=overrides))
            report.timed(kind.name.value, started)
    return report


def _take_changes(session: Session) -> tuple[int, ...]:
    """The patients written since the last scan, taken: the rows read are deleted in this
    transaction (exactly those: a row another transaction commits meanwhile stays for the
    next scan). If the scan fails, the rollback puts them back."""
    table = ScanChange.__table__  # type: ignore[attr-defined]
    taken = session.execute(delete(table).returning(table.c.patient_id)).scalars()
    return tuple(sorted(set(taken)))


def _changed_by_group(
    session: Session, changed: tuple[int, ...]
) -> dict[tuple[str, str], tuple[int, ...]]:
    """The changed patients by the (site, protocol) groups whose scan can see their rows:
    each group's queries then read only its own (50 sites given all 500 changed patients
    read 50 times what changed; ~8 s at 10^5 patients). A patient's rows may carry
    another site than the patient's own (its calendar before a transfer): by the rows'
    sites and by the patient's own."""
    by_group: dict[tuple[str, str], set[int]] = {}
    for chunk in chunked(changed):
        by_rows = (
            select(col(Assessment.site_id), col(Patient.protocol_id), col(Patient.id))
            .join(Patient, col(Patient.id) == col(Assessment.patient_id))
            .where(col(Assessment.patient_id).in_(chunk))
            .distinct()
        )
        own = select(col(Patient.site_id), col(Patient.protocol_id), col(Patient.id)).where(
            col(Patient.id).in_(chunk)
        )
        for site_id, protocol_id, patient_id in session.execute(union(by_rows, own)):
            by_group.setdefault((site_id, protocol_id), set()).add(patient_id)
    return {group: tuple(sorted(ids)) for group, ids in by_group.items()}


def _endpoints(session: Session) -> list[tuple[Any, ...]]:
    """What of the webhook endpoints decides which webhook alerts a scan writes."""
    e = WebhookEndpoint.__table__.c  # type: ignore[attr-defined]
    rows = session.execute(select(e.id, e.enabled, e.site_id, e.event_types).order_by(e.id))
    return [tuple(row) for row in rows]


def _fingerprint(scope: Scope, endpoints: list[tuple[Any, ...]]) -> str:
    """Everything besides the data and the date that decides a group's alerts."""
    decided_by = {
        "version": SCAN_VERSION,
        "policy": asdict(scope.policy),
        "reporting": scope.reporting_categories,
        "yearly": scope.yearly_contacts,
        "endpoints": endpoints,
        "kinds": [(k.name.value, getattr(k.scan, "levels", ())) for k in SCANNED],
    }
    text_ = json.dumps(decided_by, sort_keys=True, default=str)
    return hashlib.sha256(text_.encode()).hexdigest()


def _set_mark(
    session: Session, mark: ScanMark | None, scope: Scope, fingerprint: str, now: datetime
) -> None:
    """The group's alerts as of ``scope.as_of`` exist now (also after a scan as of an
    earlier day: the patients written since were read as of that day only)."""
    if mark is None:
        mark = ScanMark(
            site_id=scope.site_id,
            protocol_id=scope.protocol_id,
            as_of=scope.as_of,
            fingerprint=fingerprint,
            scanned_at=now,
        )
    mark.as_of, mark.fingerprint, mark.scanned_at = scope.as_of, fingerprint, now
    session.add(mark)


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
