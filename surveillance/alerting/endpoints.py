"""Webhook endpoints: register (URL checked), list, enable/disable, rotate the secret."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm.attributes import flag_modified
from sqlmodel import Session, col

import notifications
from surveillance.alerting.kinds import WEBHOOK_EVENTS
from surveillance.errors import InvalidInput, NotFound
from surveillance.kit import audit
from surveillance.kit.text import single_line
from surveillance.records.outbox import Alert, AlertStatus, WebhookEndpoint
from surveillance.records.sites import get_site

ROTATION_OVERLAP = timedelta(hours=24)


@dataclass(frozen=True)
class NewEndpoint:
    endpoint: WebhookEndpoint
    secret: str  # shown once


def check_url(url: str, *, allow_private: bool) -> None:
    """Refuse a URL (``InvalidInput`` saying why) before any write transaction: the host is
    resolved here, so no lock is held during a DNS lookup. The API and the admin page both
    call this, then ``add_endpoint`` with ``allow_private=True``."""
    try:
        notifications.validate_webhook_url(url, allow_private=allow_private)
    except notifications.InvalidWebhookUrl as exc:
        raise InvalidInput(
            str(exc), field="url", template=exc.template, values=exc.values
        ) from None


def add_endpoint(
    session: Session,
    *,
    url: str,
    events: list[str],
    site_id: str | None,
    allow_private: bool,
    actor: str,
    now: datetime,
) -> NewEndpoint:
    unknown = sorted(set(events) - set(WEBHOOK_EVENTS))
    if not events or unknown:
        raise InvalidInput(
            f"unknown event types {unknown or '(none given)'}; "
            f"use any of {', '.join(WEBHOOK_EVENTS)}",
            field="events",
        )
    single_line(url, "url")
    check_url(url, allow_private=allow_private)
    if site_id is not None:
        try:
            get_site(session, site_id)
        except NotFound as exc:  # a refused entry, not a missing page
            raise InvalidInput(exc.message, field="site") from None
    secret = notifications.new_webhook_secret()
    endpoint = WebhookEndpoint(
        id=f"wh_{secrets.token_hex(8)}",
        url=url,
        event_types=",".join(sorted(set(events))),
        site_id=site_id,
        secret=secret,
        created_at=now,
    )
    session.add(endpoint)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="add_webhook",
        entity="webhook",
        entity_key=endpoint.id,
        new={"url": url, "events": endpoint.event_types, "site": site_id},
        at=now,
    )
    return NewEndpoint(endpoint, secret)


def get_endpoint(session: Session, endpoint_id: str) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise NotFound(f"no webhook endpoint {endpoint_id!r}")
    return endpoint


def list_endpoints(session: Session) -> list[WebhookEndpoint]:
    return list(
        session.execute(select(WebhookEndpoint).order_by(col(WebhookEndpoint.created_at))).scalars()
    )


def set_enabled(
    session: Session, endpoint_id: str, *, enabled: bool, actor: str, now: datetime
) -> WebhookEndpoint:
    endpoint = get_endpoint(session, endpoint_id)
    old = {"enabled": endpoint.enabled, "disabled_reason": endpoint.disabled_reason}
    endpoint.enabled = enabled
    endpoint.disabled_reason = None if enabled else f"disabled by {actor}"
    if enabled:
        endpoint.failing_since = None
    session.add(endpoint)
    audit.record(
        session,
        actor=actor,
        action="enable_webhook" if enabled else "disable_webhook",
        entity="webhook",
        entity_key=endpoint.id,
        old=old,
        new={"enabled": enabled},
        at=now,
    )
    return endpoint


def rotate_secret(session: Session, endpoint_id: str, *, actor: str, now: datetime) -> NewEndpoint:
    """A new secret; the old one stays valid (both signatures sent) for 24 hours."""
    endpoint = get_endpoint(session, endpoint_id)
    endpoint.previous_secret, endpoint.previous_secret_expires_at = (
        endpoint.secret,
        now + ROTATION_OVERLAP,
    )
    endpoint.secret = notifications.new_webhook_secret()
    session.add(endpoint)
    audit.record(
        session,
        actor=actor,
        action="rotate_webhook_secret",
        entity="webhook",
        entity_key=endpoint.id,
        at=now,
    )
    return NewEndpoint(endpoint, endpoint.secret)


def replay(
    session: Session, endpoint_id: str, *, since: datetime, actor: str, now: datetime
) -> int:
    """Queue again every alert for this endpoint created since ``since`` (same ids)."""
    get_endpoint(session, endpoint_id)
    count = session.execute(
        update(Alert)
        .where(
            col(Alert.recipient) == endpoint_id,
            col(Alert.channel) == "webhook",
            col(Alert.created_at) >= since,
            col(Alert.status).in_(
                (AlertStatus.sent.value, AlertStatus.failed.value, AlertStatus.held.value)
            ),  # type: ignore[attr-defined]
        )
        .values(
            status=AlertStatus.pending.value, next_attempt_at=now, claimed_until=None, attempts=0
        )
    ).rowcount
    audit.record(
        session,
        actor=actor,
        action="replay_webhook",
        entity="webhook",
        entity_key=endpoint_id,
        new={"since": since.isoformat(), "alerts": count},
        at=now,
    )
    return int(count)


def reencrypt_secrets(session: Session) -> int:
    """Encrypt every stored signing secret again with the first key (after a new key was
    put first in SURVEILLANCE_ENCRYPTION_KEYS or encryption.key); the count of endpoints.
    Afterwards the old key can be removed."""
    endpoints = list_endpoints(session)
    for endpoint in endpoints:
        flag_modified(endpoint, "secret")  # the same plain value, written with the new key
        if endpoint.previous_secret is not None:
            flag_modified(endpoint, "previous_secret")
        session.add(endpoint)
    session.flush()
    return len(endpoints)
