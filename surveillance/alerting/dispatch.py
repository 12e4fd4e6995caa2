"""The outbox dispatcher: claim, re-check, send, record every attempt.

Delivery is at least once: a process killed after sending but before recording sends
again after its claim expires, with the same alert id (receivers de-duplicate by it).
Nothing is swallowed: every attempt is a row, and failures end as ``failed`` alerts
shown to admins (and mailed to them).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import Engine, and_, or_, select, update
from sqlmodel import Session, col

import notifications
import rules
from surveillance.alerting import messages, recipients
from surveillance.alerting.kinds import KINDS, kind_of
from surveillance.alerting.models import OutgoingMail
from surveillance.kit.bulk import insert_rows
from surveillance.kit.db import write_session
from surveillance.kit.sql import chunked
from surveillance.kit.sqltypes import table_of
from surveillance.records.outbox import (
    Alert,
    AlertKind,
    AlertStatus,
    Channel,
    DeliveryAttempt,
    WebhookEndpoint,
)
from surveillance.records.patients import Assessment, Patient

log = logging.getLogger("surveillance.alerts")
CLAIM_LEASE = timedelta(minutes=5)
ENDPOINT_GIVE_UP_AFTER = timedelta(days=5)
# Never told to the admins when they fail: they are the telling.
_ABOUT_DELIVERY = frozenset(name.value for name, kind in KINDS.items() if kind.about_delivery)


@dataclass(frozen=True)
class DispatchConfig:
    registry: rules.ProtocolRegistry
    base_url: str
    smtp: notifications.SmtpConfig | None  # None: write to the log and the outgoing-mail page
    workers: int = 8
    webhook_timeout: float = 15.0  # seconds; no redirects are followed
    # Checked again at every delivery, against the address the connection then uses.
    webhook_allow_private: bool = False


@dataclass
class DispatchReport:
    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    cancelled: int = 0
    held: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Job:
    alert_id: str
    channel: str
    # One message per language of its recipients (each reads it in their own).
    emails: tuple[notifications.EmailMessage, ...] = ()
    webhook: notifications.WebhookMessage | None = None
    endpoint_id: str | None = None


def dispatch(
    engine: Engine, *, now: Callable[[], datetime], config: DispatchConfig, limit: int = 200
) -> DispatchReport:
    """Deliver what is due now; returns what happened (one batch of at most ``limit``)."""
    report = DispatchReport()
    with write_session(engine) as session:
        ids = claim(session, now=now(), limit=limit)
    report.claimed = len(ids)
    jobs = [
        job
        for chunk in chunked(ids, CHUNK)
        for job in _prepare_chunk(engine, chunk, now, config, report)
    ]
    if not jobs:
        return report
    local = threading.local()

    def send(job: _Job) -> tuple[_Job, notifications.DeliveryResult | notifications.DeliveryError]:
        try:
            return job, _send(job, config, local)
        except notifications.DeliveryError as exc:
            return job, exc
        except Exception as exc:  # a bug must not lose the alert: record it and retry
            log.exception("unexpected error delivering %s", job.alert_id)
            return job, notifications.TransientDeliveryError(f"internal error: {exc!r}")

    with ThreadPoolExecutor(max_workers=max(1, min(config.workers, len(jobs)))) as pool:
        outcomes = list(pool.map(send, jobs))
    for client in getattr(local, "all_clients", []):
        client.close()
    for chunk in chunked(outcomes, CHUNK):
        _record_chunk(engine, chunk, now(), config, report)
    return report


# Alerts prepared, or recorded, per transaction: one commit for many (a commit per alert
# was most of the dispatcher's time), yet short enough that a SQLite writer (a nurse
# recording a visit) never waits long behind the dispatcher.
CHUNK = 50


def _prepare_chunk(
    engine: Engine,
    alert_ids: Sequence[str],
    now: Callable[[], datetime],
    config: DispatchConfig,
    report: DispatchReport,
) -> list[_Job]:
    """``_prepare`` each alert in one transaction, each in its own savepoint: one alert's
    unexpected error (a bad payload, a template bug) is recorded as an attempt and retried
    on schedule instead of stopping the batch."""
    jobs: list[_Job] = []
    with write_session(engine) as session:
        # The chunk's alerts and their endpoints in two statements, not two per alert:
        # ``session.get`` then finds them in the session (which holds them only weakly,
        # hence the list kept until the chunk is done).
        loaded: list[object] = list(
            session.execute(select(Alert).where(col(Alert.id).in_(alert_ids))).scalars()
        )
        endpoint_ids = {
            a.recipient
            for a in loaded
            if isinstance(a, Alert) and a.channel == Channel.webhook.value
        }
        if endpoint_ids:
            loaded += session.execute(
                select(WebhookEndpoint).where(col(WebhookEndpoint.id).in_(endpoint_ids))
            ).scalars()
        loaded += _causes(session, [a for a in loaded if isinstance(a, Alert)])
        recipients_by_group: dict[str, dict[str, list[str]]] = {}  # a chunk shares a few groups
        for alert_id in alert_ids:
            try:
                with session.begin_nested():
                    job = _prepare(session, alert_id, now(), config, report, recipients_by_group)
            except Exception as exc:
                log.exception("unexpected error preparing %s", alert_id)
                error = notifications.TransientDeliveryError(f"internal error: {exc!r}")
                _record_safely(session, _Job(alert_id, "unknown"), error, now(), config, report)
                continue
            if job is not None:
                jobs.append(job)
    return jobs


def _record_chunk(
    engine: Engine,
    outcomes: Sequence[tuple[_Job, notifications.DeliveryResult | notifications.DeliveryError]],
    now: datetime,
    config: DispatchConfig,
    report: DispatchReport,
) -> None:
    # The common case, a delivery that succeeded and writes nothing else (no outgoing-mail
    # copy), is recorded set-based: one INSERT of attempts and one UPDATE of alerts.
    plain: list[tuple[_Job, notifications.DeliveryResult]] = []
    others: list[tuple[_Job, notifications.DeliveryResult | notifications.DeliveryError]] = []
    for job, outcome in outcomes:
        if isinstance(outcome, notifications.DeliveryResult) and not (
            config.smtp is None and job.emails
        ):
            plain.append((job, outcome))
        else:
            others.append((job, outcome))
    with write_session(engine) as session:
        if plain:
            _record_sent(session, plain, now)
            report.sent += len(plain)
        for job, outcome in others:
            _record_safely(session, job, outcome, now, config, report)


def _record_sent(
    session: Session,
    delivered: Sequence[tuple[_Job, notifications.DeliveryResult]],
    now: datetime,
) -> None:
    """What ``_record`` writes for a delivery that succeeded, for many alerts at once."""
    insert_rows(
        session,
        table_of(DeliveryAttempt),
        [
            {
                "alert_id": job.alert_id,
                "attempted_at": now,
                "outcome": "sent",
                "status_code": result.status_code,
                "detail": result.detail[:2048],
            }
            for job, result in delivered
        ],
    )
    session.execute(
        update(Alert)
        .where(col(Alert.id).in_([job.alert_id for job, _ in delivered]))
        .values(
            status=AlertStatus.sent.value,
            claimed_until=None,
            sent_at=now,
            attempts=col(Alert.attempts) + 1,
        )
    )
    endpoints = {job.endpoint_id for job, _ in delivered if job.endpoint_id is not None}
    if endpoints:  # a success ends a run of failures
        session.execute(
            update(WebhookEndpoint)
            .where(
                col(WebhookEndpoint.id).in_(endpoints),
                col(WebhookEndpoint.failing_since).is_not(None),
            )
            .values(failing_since=None)
        )


def _record_safely(
    session: Session,
    job: _Job,
    outcome: notifications.DeliveryResult | notifications.DeliveryError,
    now: datetime,
    config: DispatchConfig,
    report: DispatchReport,
) -> None:
    """``_record`` in a savepoint: if recording one alert fails, the others of the chunk
    are still recorded; that one stays claimed and is sent again when its claim expires
    (at least once, with the same id)."""
    try:
        with session.begin_nested():
            _record(session, job, outcome, now, config, report)
    except Exception:
        log.exception("could not record the delivery of %s; it is retried", job.alert_id)


def claim(session: Session, *, now: datetime, limit: int) -> list[str]:
    """Take up to ``limit`` alerts due now (or whose previous claim expired)."""
    due = or_(
        and_(col(Alert.status) == AlertStatus.pending.value, col(Alert.next_attempt_at) <= now),
        and_(col(Alert.status) == AlertStatus.sending.value, col(Alert.claimed_until) < now),
    )
    statement = select(col(Alert.id)).where(
        col(Alert.status).in_((AlertStatus.pending.value, AlertStatus.sending.value)), due
    )
    statement = statement.order_by(col(Alert.next_attempt_at)).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        statement = statement.with_for_update(skip_locked=True)
    ids = list(session.execute(statement).scalars())
    if ids:
        session.execute(
            update(Alert)
            .where(col(Alert.id).in_(ids))
            .values(status=AlertStatus.sending.value, claimed_until=now + CLAIM_LEASE)
        )
    return ids


def _causes(session: Session, alerts: list[Alert]) -> list[object]:
    """The chunk's assessments and patients, for the re-checks' ``session.get``: two
    statements, not two per alert."""
    assessment_ids = {a.assessment_id for a in alerts if a.assessment_id is not None}
    patient_ids = {a.patient_id for a in alerts if a.patient_id is not None}
    found: list[object] = []
    if assessment_ids:
        found += session.execute(
            select(Assessment).where(col(Assessment.id).in_(assessment_ids))
        ).scalars()
    if patient_ids:
        found += session.execute(select(Patient).where(col(Patient.id).in_(patient_ids))).scalars()
    return found


def _prepare(
    session: Session,
    alert_id: str,
    now: datetime,
    config: DispatchConfig,
    report: DispatchReport,
    recipients_by_group: dict[str, dict[str, list[str]]],
) -> _Job | None:
    """Re-check the cause, freeze the payload and build the message."""
    alert = session.get(Alert, alert_id)
    assert alert is not None
    gone = cause_gone(session, alert, config.registry)
    if gone is not None:
        _finish(session, alert, AlertStatus.cancelled, now, cancel_reason=gone)
        session.add(
            DeliveryAttempt(alert_id=alert.id, attempted_at=now, outcome="cancelled", detail=gone)
        )
        report.cancelled += 1
        return None
    if alert.payload is None:
        alert.payload = json.dumps(
            messages.event_data(session, alert, registry=config.registry, base_url=config.base_url),
            default=str,
        )
        session.add(alert)
    data = json.loads(alert.payload)
    if alert.channel == Channel.email.value:
        group = alert.recipient
        if group not in recipients_by_group:
            recipients_by_group[group] = recipients.resolve_by_locale(session, group)
        emails = _emails(alert, data, config, recipients_by_group[group])
        return _Job(alert.id, alert.channel, emails=emails)
    endpoint = session.get(WebhookEndpoint, alert.recipient)
    if endpoint is None or not endpoint.enabled:
        _finish(
            session,
            alert,
            AlertStatus.held,
            now,
            cancel_reason="webhook endpoint disabled: replay after re-enabling",
        )
        report.held += 1
        return None
    secrets = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and _aware(expires) > now:
        secrets.append(endpoint.previous_secret)
    webhook = notifications.WebhookMessage(
        url=endpoint.url,
        message_id=alert.id,
        event_type=alert.kind,
        timestamp=_aware(alert.created_at),
        data=data,
        secrets=tuple(secrets),
    )
    return _Job(alert.id, alert.channel, webhook=webhook, endpoint_id=endpoint.id)


def _emails(
    alert: Alert,
    data: dict[str, object],
    config: DispatchConfig,
    by_locale: dict[str, list[str]],
) -> tuple[notifications.EmailMessage, ...]:
    """The alert's email in each of its recipients' languages (``by_locale``). Every one
    carries the alert's id as Message-ID: each recipient gets one of them, and
    de-duplicates by it."""
    by_locale = by_locale or {"en": []}
    terms = config.registry.name_translations()
    emails = []
    for locale, to in by_locale.items():
        subject, text, html = messages.render_email(alert, data, locale=locale, terms=terms)
        emails.append(
            notifications.EmailMessage(
                to=tuple(to), subject=subject, text=text, html=html, message_id=alert.id
            )
        )
    return tuple(emails)


def cause_gone(session: Session, alert: Alert, registry: rules.ProtocolRegistry) -> str | None:
    """Why an alert should no longer be sent, or None if its cause still holds."""
    return kind_of(alert.kind).recheck(session, alert, registry)


def _send(
    job: _Job, config: DispatchConfig, local: threading.local
) -> notifications.DeliveryResult:
    if job.emails:
        if not any(email.to for email in job.emails):
            raise notifications.PermanentDeliveryError(
                "no active user to send it to (check the site's staff)"
            )
        if config.smtp is None:
            return notifications.DeliveryResult(
                None, "written to the outgoing-mail page (no SMTP configured)"
            )
        # A failure part-way sends the earlier languages again on retry: at least once.
        results = [notifications.send_email(config.smtp, email) for email in job.emails]
        return results[-1]
    assert job.webhook is not None
    client = getattr(local, "client", None)
    if client is None:  # one client per worker thread: a shared pool serialises here
        client = local.client = httpx.Client()
        local.__dict__.setdefault("all_clients", []).append(client)
    return notifications.send_webhook(
        client,
        job.webhook,
        allow_private=config.webhook_allow_private,
        timeout=httpx.Timeout(config.webhook_timeout),
    )


def _record(
    session: Session,
    job: _Job,
    outcome: notifications.DeliveryResult | notifications.DeliveryError,
    now: datetime,
    config: DispatchConfig,
    report: DispatchReport,
) -> None:
    if isinstance(outcome, notifications.DeliveryResult):
        _record_sent(session, [(job, outcome)], now)
        if config.smtp is None:  # the copy the outgoing-mail page shows
            for email in job.emails:
                _write_outgoing(session, job.alert_id, email, now)
        report.sent += 1
        return
    alert = session.get(Alert, job.alert_id)
    assert alert is not None
    alert.attempts += 1
    endpoint = session.get(WebhookEndpoint, job.endpoint_id) if job.endpoint_id else None
    session.add(
        DeliveryAttempt(
            alert_id=alert.id,
            attempted_at=now,
            outcome=_kind(outcome),
            status_code=outcome.status_code,
            detail=outcome.detail,
        )
    )
    alert.last_error = outcome.detail
    log.warning("delivery of %s failed (%s): %s", alert.id, _kind(outcome), outcome.detail)
    if endpoint is not None:
        _endpoint_health(session, endpoint, outcome, now)
    delay = None
    if isinstance(outcome, notifications.TransientDeliveryError):
        delay = notifications.next_retry_delay(alert.attempts, outcome.retry_after)
    if delay is not None:
        alert.status, alert.next_attempt_at, alert.claimed_until = (
            AlertStatus.pending.value,
            now + delay,
            None,
        )
        session.add(alert)
        report.retrying += 1
        return
    _finish(session, alert, AlertStatus.failed, now)
    report.failed += 1
    report.errors.append(f"{alert.id}: {outcome.detail}")
    _tell_admins(
        session,
        AlertKind.alert_failed,
        alert,
        now,
        what=f"An alert could not be delivered after {alert.attempts} attempt(s).",
        key=alert.id,
    )


def _endpoint_health(
    session: Session, endpoint: WebhookEndpoint, error: notifications.DeliveryError, now: datetime
) -> None:
    endpoint.failing_since = endpoint.failing_since or now
    reason = None
    if isinstance(error, notifications.PermanentDeliveryError) and error.gone:
        reason = "the receiver answered 410 Gone"
    elif now - _aware(endpoint.failing_since) >= ENDPOINT_GIVE_UP_AFTER:
        reason = f"failing continuously since {endpoint.failing_since:%Y-%m-%d %H:%M} UTC"
    if reason is not None and endpoint.enabled:
        endpoint.enabled, endpoint.disabled_reason = False, reason
        _tell_admins(
            session,
            AlertKind.webhook_disabled,
            None,
            now,
            what=(
                f"Webhook endpoint {endpoint.id} ({endpoint.url}) was disabled: {reason}. "
                "Its alerts are held; replay them after re-enabling."
            ),
            key=f"{endpoint.id}:{now:%Y%m%d}",  # once a day: it may be re-enabled and fail again
            endpoint_id=endpoint.id,
        )
    session.add(endpoint)


def _tell_admins(
    session: Session,
    kind: AlertKind,
    failed: Alert | None,
    now: datetime,
    *,
    what: str,
    key: str,
    endpoint_id: str | None = None,
) -> None:
    """An email to the admins about a delivery problem (never about its own failures);
    ``key`` makes its id, so the same problem is told once."""
    if failed is not None and failed.kind in _ABOUT_DELIVERY:
        return
    alert_id = f"{kind.value}:{key}"
    if session.get(Alert, alert_id) is not None:
        return
    payload = {
        "what": what,
        "failed_alert": failed.id if failed else None,
        "channel": failed.channel if failed else "webhook",
        "recipient": failed.recipient if failed else endpoint_id,
        "attempts": failed.attempts if failed else None,
        "error": failed.last_error if failed else None,
    }
    session.add(
        Alert(
            id=alert_id,
            kind=kind.value,
            level=0,
            channel=Channel.email.value,
            recipient="admins",
            site_id=failed.site_id if failed else None,
            as_of=now.date(),
            payload=json.dumps(payload),
            next_attempt_at=now,
            created_at=now,
        )
    )


def _write_outgoing(
    session: Session, alert_id: str, email: notifications.EmailMessage, now: datetime
) -> None:
    log.info("email (no SMTP configured) to %s: %s", ", ".join(email.to) or "nobody", email.subject)
    session.add(
        OutgoingMail(
            alert_id=alert_id,
            to=", ".join(email.to),
            subject=email.subject,
            text_body=email.text,
            html_body=email.html,
            written_at=now,
        )
    )


def _finish(
    session: Session,
    alert: Alert,
    status: AlertStatus,
    now: datetime,
    *,
    cancel_reason: str | None = None,
) -> None:
    alert.status, alert.claimed_until = status.value, None
    if status is AlertStatus.sent:
        alert.sent_at = now
    if cancel_reason is not None:
        alert.cancel_reason = cancel_reason
    session.add(alert)


def _kind(error: notifications.DeliveryError) -> str:
    return "transient" if isinstance(error, notifications.TransientDeliveryError) else "permanent"


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
