"""The outgoing webhooks, documented in the OpenAPI ``webhooks`` section (one per event type).

Each event type, its summary, its description and its ``data`` schema come from the
registry of alert kinds (``alerting.kinds``). What a receiver gets is what the kind's
event data builder produces, wrapped as Standard Webhooks ``{"type", "timestamp",
"data"}`` and signed (see ``notifications``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Header
from pydantic import BaseModel, Field, create_model

from surveillance.alerting.kinds import KINDS, WEBHOOK_EVENTS, Kind


class _Event(BaseModel):
    timestamp: datetime = Field(description="When the alert was created (UTC); same on retries.")


def _body_model(kind: Kind) -> type[BaseModel]:
    """The body of one event type: its ``data`` schema, and ``type`` a constant."""
    assert kind.webhook is not None
    hook = kind.webhook
    return create_model(
        hook.schema,
        __base__=_Event,
        __doc__=hook.note,
        data=(hook.data, ...),
        type=(Literal[kind.name.value], ...),  # type: ignore[arg-type]
    )


_HEADERS = (
    "Headers (Standard Webhooks): `webhook-id` is the alert id, the same on every retry "
    "(de-duplicate by it); `webhook-timestamp` is Unix seconds; `webhook-signature` is "
    "`v1,<base64 HMAC-SHA256 of id.timestamp.body>` with the endpoint's `whsec_` secret "
    "(two signatures, space-separated, for 24 hours after a rotation). Answer 2xx to "
    "acknowledge; 5xx, 429 (Retry-After honoured) and timeouts (15 s) are retried; other "
    "4xx fail; 410 Gone disables the endpoint. Redirects are not followed."
)

WebhookId = Annotated[str, Header(alias="webhook-id")]
WebhookTimestamp = Annotated[str, Header(alias="webhook-timestamp")]
WebhookSignature = Annotated[str, Header(alias="webhook-signature")]


_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Received (any 2xx)."},
    410: {"description": "Gone: the endpoint is disabled; no more deliveries."},
}


_BODIES = {event: _body_model(KINDS[event]) for event in WEBHOOK_EVENTS}


def document(app: FastAPI) -> None:
    """Add one entry per event type to ``app.webhooks`` (shown under Webhooks in /docs)."""
    for event, body_model in _BODIES.items():
        _document_event(app, KINDS[event], body_model)


def _document_event(app: FastAPI, kind: Kind, body_model: type[BaseModel]) -> None:
    assert kind.webhook is not None

    def receive(
        body: BaseModel,
        webhook_id: WebhookId,
        webhook_timestamp: WebhookTimestamp,
        webhook_signature: WebhookSignature,
    ) -> None: ...

    # Annotations are strings here (postponed evaluation): give FastAPI the class itself.
    receive.__annotations__ = {**receive.__annotations__, "body": body_model}
    event = kind.name.value
    app.webhooks.post(
        event,
        operation_id=f"webhook_{event.replace('.', '_')}",
        summary=kind.webhook.summary,
        description=f"{kind.when}\n\n{_HEADERS}",
        responses=_RESPONSES,
    )(receive)
