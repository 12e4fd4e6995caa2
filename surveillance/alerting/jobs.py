"""The scheduled jobs, each run under a database lease; also used by the CLI."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Engine

import notifications
import rules
from surveillance.alerting import audit_digest
from surveillance.alerting.digests import create_digests
from surveillance.alerting.dispatch import DispatchConfig, DispatchReport, dispatch
from surveillance.alerting.policy import parse_overrides
from surveillance.alerting.scan import ScanReport, scan
from surveillance.config import Settings
from surveillance.kit.clock import Clock
from surveillance.kit.db import read_session, write_session
from surveillance.kit.leases import last_completed, leased

log = logging.getLogger("surveillance.alerts")
CATCH_UP_DAYS = 31  # after downtime, scan "as of" each missed day, at most this far back
SAFETY_NET = "alerts.scan.full"  # the lease of the daily full scan


@dataclass(frozen=True)
class AlertJobs:
    engine: Engine
    settings: Settings
    registry: rules.ProtocolRegistry
    clock: Clock

    def dispatch_config(self) -> DispatchConfig:
        s = self.settings
        smtp = None
        if s.smtp_host:
            smtp = notifications.SmtpConfig(
                host=s.smtp_host,
                port=s.smtp_port,
                from_address=s.smtp_from,
                username=s.smtp_username,
                password=s.smtp_password.get_secret_value() if s.smtp_password else None,
                starttls=s.smtp_starttls,
            )
        return DispatchConfig(
            registry=self.registry,
            base_url=s.base_url,
            smtp=smtp,
            webhook_allow_private=s.webhook_allow_private,
        )

    def scan_once(self, on: date | None = None, *, full: bool = False) -> ScanReport:
        with write_session(self.engine) as session:
            return scan(
                session,
                now=self.clock(),
                overrides=parse_overrides(self.settings.alert_policy),
                registry=self.registry,
                on=on,
                full=full,
            )

    def run_scan(self) -> list[ScanReport]:
        """The scheduled scan: catch up on each day missed since the last run, then today
        (incremental scans); then, once a UTC day, the full scan as a safety net (not in
        the reports: it logs what it found)."""
        now = self.clock()
        reports: list[ScanReport] = []
        with leased(self.engine, "alerts.scan", now=now, ttl=timedelta(minutes=10)) as mine:
            if not mine:
                return reports
            previous = last_completed(self.engine, "alerts.scan")
            for day in missed_days(previous, now):
                reports.append(self.scan_once(on=day))
            reports.append(self.scan_once())
        log.info(
            "alert scan: %s",
            ", ".join(f"{k}={v}" for r in reports for k, v in r.created.items() if v)
            or "nothing new",
        )
        # After the scan's lease (a full scan of a large registry may outlast it). The
        # first run after midnight UTC: a quiet hour at the European sites, which matters
        # on SQLite, where the full scan holds the write lock while it runs.
        if full_scan_due(last_completed(self.engine, SAFETY_NET), now):
            self._safety_net(now)
        return reports

    def _safety_net(self, now: datetime) -> ScanReport:
        """The full scan, right after an incremental one: it should find nothing more. What
        it does find is created all the same, and logged: a change written between the
        two scans, or one the incremental scan missed (a defect to report)."""
        with leased(self.engine, SAFETY_NET, now=now, ttl=timedelta(minutes=30)) as mine:
            report = self.scan_once(full=True) if mine else ScanReport()
        if report.total:
            log.warning(
                "alert scan: the daily full scan found %s alerts the incremental scan just "
                "before had not written (%s): written meanwhile, or missed (please report)",
                report.total,
                report.created,
            )
        return report

    def run_digests(self, site_id: str | None = None) -> int:
        now = self.clock()
        with leased(
            self.engine, f"alerts.digest.{site_id or 'all'}", now=now, ttl=timedelta(minutes=10)
        ) as mine:
            if not mine:
                return 0
            with write_session(self.engine) as session:
                return create_digests(
                    session,
                    now=now,
                    overrides=parse_overrides(self.settings.alert_policy),
                    site_id=site_id,
                )

    def run_admin_digest(self) -> int:
        """Today's digest to the admins (the audit chain's anchor and its check), once a
        day from the digest hour (UTC): 1 if made now."""
        now = self.clock()
        day = audit_digest.digest_day(now)
        if day is None:
            return 0
        with leased(self.engine, "alerts.digest.admins", now=now, ttl=timedelta(hours=1)) as mine:
            if not mine:
                return 0
            # Checked in a read transaction: a long trail never holds up the writers.
            with read_session(self.engine) as session:
                if audit_digest.already_made(session, day):
                    return 0
                policy = audit_digest.CheckPolicy(
                    whole_daily_up_to_rows=self.settings.audit_whole_check_rows
                )
                report = audit_digest.anchor_report(session, now=now, day=day, policy=policy)
            with write_session(self.engine) as session:
                return audit_digest.queue(session, day=day, now=now, report=report)

    def run_dispatch(self) -> DispatchReport:
        with leased(
            self.engine, "alerts.dispatch", now=self.clock(), ttl=timedelta(minutes=5)
        ) as mine:
            if not mine:
                return DispatchReport()
            return dispatch(self.engine, now=self.clock, config=self.dispatch_config())


def full_scan_due(previous: datetime | None, now: datetime) -> bool:
    """Once a UTC day (and on the first run)."""
    return previous is None or previous.date() < now.date()


def missed_days(previous: datetime | None, now: datetime) -> list[date]:
    """UTC days strictly between the last completed scan and today (bounded)."""
    if previous is None:
        return []
    first = max(previous.date() + timedelta(days=1), now.date() - timedelta(days=CATCH_UP_DAYS))
    return [first + timedelta(days=n) for n in range((now.date() - first).days)]
