"""Webhook endpoints (admins): register, list, enable/disable, rotate the secret, replay.

The signing secret is in the answer to the registration and to a rotation only; it is
never listed. Receivers are described under "Webhooks" in the OpenAPI document.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from fastapi import APIRouter
from starlette import status

from surveillance.accounts.auth import Principal
from surveillance.accounts.models import Role
from surveillance.alerting import endpoints
from surveillance.http.api.alert_schemas import (
    ReplayRequest,
    ReplayResult,
    WebhookCreate,
    WebhookPublic,
    WebhookWithSecret,
)
from surveillance.http.app_settings import AppSettings
from surveillance.http.deps import CurrentUser, State
from surveillance.records.outbox import WebhookEndpoint

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


@router.get("", response_model=list[WebhookPublic])
def list_webhooks(state: State, user: CurrentUser) -> list[dict[str, Any]]:
    """Every endpoint, oldest first, with its state (secrets are never listed)."""
    _admin(user)
    with state.read() as session:
        return [endpoint_dict(e) for e in endpoints.list_endpoints(session)]


@router.post("", response_model=WebhookWithSecret, status_code=status.HTTP_201_CREATED)
def add_webhook(
    body: WebhookCreate, state: State, user: CurrentUser, settings: AppSettings
) -> dict[str, Any]:
    """Register an endpoint; the answer carries its ``whsec_`` secret, shown this once.

    http(s) only; private, loopback and link-local addresses are refused (422) unless
    ``SURVEILLANCE_WEBHOOK_ALLOW_PRIVATE=true``.
    """
    _admin(user)
    # Checked (and the host resolved) before the write transaction, so no lock is held
    # during a DNS lookup; add_endpoint then checks the rest without resolving again.
    endpoints.check_url(body.url, allow_private=settings.webhook_allow_private)
    with state.write() as session:
        created = endpoints.add_endpoint(
            session,
            url=body.url,
            events=list(body.events),
            site_id=body.site,
            allow_private=True,  # the addresses were checked above
            actor=user.email,
            now=state.now(),
        )
        return {**endpoint_dict(created.endpoint), "secret": created.secret}


@router.get("/{endpoint_id}", response_model=WebhookPublic)
def read_webhook(endpoint_id: str, state: State, user: CurrentUser) -> dict[str, Any]:
    _admin(user)
    with state.read() as session:
        return endpoint_dict(endpoints.get_endpoint(session, endpoint_id))


@router.post("/{endpoint_id}/enable", response_model=WebhookPublic)
def enable_webhook(endpoint_id: str, state: State, user: CurrentUser) -> dict[str, Any]:
    """Deliver again; alerts held meanwhile are sent after a replay."""
    return _toggle(endpoint_id, True, state, user)


@router.post("/{endpoint_id}/disable", response_model=WebhookPublic)
def disable_webhook(endpoint_id: str, state: State, user: CurrentUser) -> dict[str, Any]:
    """Stop delivering; its alerts are held (kept) for a replay."""
    return _toggle(endpoint_id, False, state, user)


@router.post("/{endpoint_id}/rotate-secret", response_model=WebhookWithSecret)
def rotate_webhook_secret(endpoint_id: str, state: State, user: CurrentUser) -> dict[str, Any]:
    """A new secret, shown this once; the old one also signs for 24 hours."""
    _admin(user)
    with state.write() as session:
        rotated = endpoints.rotate_secret(session, endpoint_id, actor=user.email, now=state.now())
        return {**endpoint_dict(rotated.endpoint), "secret": rotated.secret}


@router.post("/{endpoint_id}/replay", response_model=ReplayResult)
def replay_webhook(
    endpoint_id: str, body: ReplayRequest, state: State, user: CurrentUser
) -> dict[str, Any]:
    """Queue again (same ids) the endpoint's sent, failed and held alerts created since."""
    _admin(user)
    since = body.since if body.since.tzinfo else body.since.replace(tzinfo=UTC)
    with state.write() as session:
        count = endpoints.replay(
            session, endpoint_id, since=since, actor=user.email, now=state.now()
        )
    return {"endpoint": endpoint_id, "queued": count}


def endpoint_dict(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "events": endpoint.event_types.split(","),
        "site": endpoint.site_id,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "failing_since": endpoint.failing_since,
        "previous_secret_valid_until": endpoint.previous_secret_expires_at,
        "created_at": endpoint.created_at,
    }


def _toggle(endpoint_id: str, enabled: bool, state: State, user: Principal) -> dict[str, Any]:
    _admin(user)
    with state.write() as session:
        endpoint = endpoints.set_enabled(
            session, endpoint_id, enabled=enabled, actor=user.email, now=state.now()
        )
        return endpoint_dict(endpoint)


def _admin(user: Principal) -> None:
    user.require_role(Role.admin, to="manage webhook endpoints")
