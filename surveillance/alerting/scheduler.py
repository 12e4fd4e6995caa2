"""APScheduler 3 wiring: the scan, the digests and the dispatcher as interval/cron jobs.

The rows are the schedule; the jobs only look at them. Each job has an explicit id,
``coalesce=True``, ``max_instances=1`` and a generous misfire grace, and takes a database
lease when it runs, so several processes can run schedulers without doubling work.
"""

from __future__ import annotations

from datetime import UTC

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from surveillance.alerting.audit_digest import DIGEST_HOUR_UTC
from surveillance.alerting.jobs import AlertJobs
from surveillance.alerting.policy import parse_overrides, policy_for
from surveillance.kit.clock import system_clock
from surveillance.kit.db import read_session
from surveillance.records.sites import list_sites

_COMMON = {"coalesce": True, "max_instances": 1, "replace_existing": True}


def build_scheduler(jobs: AlertJobs) -> BackgroundScheduler:
    settings = jobs.settings
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.add_job(
        jobs.run_scan,
        IntervalTrigger(minutes=settings.scan_interval_minutes),
        id="alerts.scan",
        next_run_time=system_clock(),  # APScheduler runs on the machine's time: scan at start
        misfire_grace_time=3600,
        **_COMMON,
    )
    scheduler.add_job(
        jobs.run_dispatch,
        IntervalTrigger(seconds=settings.dispatch_interval_seconds),
        id="alerts.dispatch",
        misfire_grace_time=60,
        **_COMMON,
    )
    scheduler.add_job(
        jobs.run_admin_digest,
        CronTrigger(hour=DIGEST_HOUR_UTC, minute=0, timezone=UTC),
        id="alerts.digest.admins",
        next_run_time=system_clock(),  # made at start if today's is due and missing
        misfire_grace_time=6 * 3600,
        **_COMMON,
    )
    overrides = parse_overrides(settings.alert_policy)
    with read_session(jobs.engine) as session:
        sites = list_sites(session)
    for site in sites:
        hour = policy_for(overrides, site=site.id, protocol="").digest_hour
        scheduler.add_job(
            jobs.run_digests,
            CronTrigger(hour=hour, minute=0, timezone=site.timezone),
            args=[site.id],
            id=f"alerts.digest.{site.id}",
            misfire_grace_time=6 * 3600,
            **_COMMON,
        )
    return scheduler
