"""Request and response bodies of the alerting API: acknowledgements, alerts, webhooks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from surveillance.alerting.kinds import WEBHOOK_EVENTS
from surveillance.http.api.timestamps import UtcDatetime
from surveillance.http.inputs import MultiLine, SingleLine
from surveillance.records.outbox import AlertStatus

if TYPE_CHECKING:
    EventType = str
else:
    # The event types an endpoint may subscribe to, from the registry of alert kinds (a
    # Literal built at run time, so the schema lists them and pydantic checks them).
    EventType = Literal[tuple(kind.value for kind in WEBHOOK_EVENTS)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AcknowledgementCreate(_Body):
    level: Literal[1, 2] = Field(description="1: the investigators' escalation; 2: the sponsor's.")
    note: MultiLine = Field(
        min_length=1, max_length=2000, examples=["Patient called, visit booked."]
    )


class AcknowledgementPublic(BaseModel):
    key: str
    level: int
    note: str
    by: str
    at: UtcDatetime


class AlertPublic(BaseModel):
    id: str = Field(description="Stable: every retry (and the webhook-id header) carries it.")
    kind: str
    level: int
    channel: Literal["email", "webhook"]
    recipient: str = Field(description="Email: a recipient group; webhook: the endpoint id.")
    site: str | None
    status: AlertStatus
    attempts: int = Field(description="Attempts since it was last queued (drives the retries).")
    attempts_recorded: int = Field(description="Every delivery attempt ever recorded.")
    last_error: str | None
    cancel_reason: str | None = Field(description="Why it was cancelled or held.")
    next_attempt_at: UtcDatetime
    created_at: UtcDatetime
    sent_at: UtcDatetime | None


class AttemptPublic(BaseModel):
    attempted_at: UtcDatetime
    outcome: Literal["sent", "transient", "permanent", "cancelled"]
    status_code: int | None
    detail: str | None


class AlertDetail(AlertPublic):
    attempt_log: list[AttemptPublic]


class WebhookCreate(_Body):
    url: SingleLine = Field(max_length=2000, examples=["https://receiver.example.org/ltfu"])
    events: list[EventType] = Field(min_length=1)
    site: SingleLine | None = Field(
        default=None, description="Only this site's alerts (default: all)."
    )


class WebhookPublic(BaseModel):
    id: str
    url: str
    events: list[str]
    site: str | None
    enabled: bool
    disabled_reason: str | None
    failing_since: UtcDatetime | None
    previous_secret_valid_until: UtcDatetime | None = Field(
        description="After a rotation the old secret also signs until then."
    )
    created_at: UtcDatetime


class WebhookWithSecret(WebhookPublic):
    secret: str = Field(description="whsec_…: shown this once; store it now.")


class ReplayRequest(_Body):
    since: UtcDatetime = Field(description="Alerts created since then (UTC if no offset).")


class ReplayResult(BaseModel):
    endpoint: str
    queued: int
