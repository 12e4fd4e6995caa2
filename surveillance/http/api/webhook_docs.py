"""The outgoing webhooks, documented in the OpenAPI ``webhooks`` section (one per event type).

What a receiver gets is what ``alerting.messages.event_data`` produces, wrapped as
Standard Webhooks ``{"type", "timestamp", "data"}`` and signed (see ``notifications``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Header
from pydantic import BaseModel, Field, create_model

from surveillance.alerting.policy import EVENT_TYPES


class AssessmentEventData(BaseModel):
    """Pseudonymous: a study id, never a name."""

    study_id: str = Field(examples=["ROM-101"])
    site: str = Field(examples=["Rome"])
    key: str = Field(
        examples=["ROM-101:1:rcl_test:2"], description="study id:infusion:rule:occurrence"
    )
    assessment: str = Field(examples=["rcl_test"], description="The protocol rule id.")
    name: str = Field(examples=["Replication-competent lentivirus test"])
    due: date
    window_start: date
    window_end: date
    days_overdue: int = Field(description="Days from the window's end to as_of.")
    level: int = Field(description="0, or for assessment.escalated 1 (investigators), 2 (sponsor).")
    as_of: date = Field(description="The day (at the site) the scan saw the condition.")
    patient_url: str = Field(examples=["https://ltfu.example.org/patients/ROM-101"])


class _Event(BaseModel):
    timestamp: datetime = Field(description="When the alert was created (UTC); same on retries.")
    data: AssessmentEventData


class AssessmentOverdueEvent(_Event):
    type: Literal["assessment.overdue"]


class AssessmentEscalatedEvent(_Event):
    type: Literal["assessment.escalated"]


class FollowUpAtRiskEvent(_Event):
    """``data`` describes the latest of the two yearly contacts missed (or still undone)."""

    type: Literal["patient.follow_up_at_risk"]


_HEADERS = (
    "Headers (Standard Webhooks): `webhook-id` is the alert id, the same on every retry "
    "(de-duplicate by it); `webhook-timestamp` is Unix seconds; `webhook-signature` is "
    "`v1,<base64 HMAC-SHA256 of id.timestamp.body>` with the endpoint's `whsec_` secret "
    "(two signatures, space-separated, for 24 hours after a rotation). Answer 2xx to "
    "acknowledge; 5xx, 429 (Retry-After honoured) and timeouts (15 s) are retried; other "
    "4xx fail; 410 Gone disables the endpoint. Redirects are not followed."
)
_WHEN = {
    "assessment.overdue": "The day after an assessment's window closed undone.",
    "assessment.escalated": (
        "Still undone 14 days after the window closed (level 1), and 60 days after (level 2); "
        "repeated weekly until acknowledged (defaults; see the alert policy)."
    ),
    "patient.follow_up_at_risk": "Two consecutive yearly contacts missed or still undone.",
    "adverse_event.created": "An adverse-event case was recorded (version 1).",
    "adverse_event.updated": "A follow-up version of a case was recorded.",
    "adverse_event.nullified": "A case entered in error was nullified (it stays readable).",
    "adverse_event.serious": (
        "A case is serious (when recorded, or when a follow-up makes it so); once per case. "
        "Also sent for a positive RCL test, which the system records as a serious case."
    ),
}


class AdverseEventEventData(BaseModel):
    """The case version the event is about, pseudonymous, as in the feed's ``case``."""

    change: Literal["created", "updated", "nullified"]
    case: dict[str, Any] = Field(
        description="As an entry of GET /api/v1/feeds/adverse-events: case_id, version, "
        "study_id, site, site_country, sex, age_at_onset_years, term, grade, serious, ..."
    )
    reporting_deadlines: list[dict[str, Any]] = Field(
        description="The reporting clocks the protocol planned for the case (key, name, due)."
    )
    case_url: str = Field(examples=["https://ltfu.example.org/adverse-events/ROM-101-AE01"])


class _CaseEvent(BaseModel):
    timestamp: datetime = Field(description="When the alert was created (UTC); same on retries.")
    data: AdverseEventEventData


def _case_event_model(event: str) -> type[_CaseEvent]:
    """One body model per event type, so ``type`` is a constant in each schema."""
    name = "".join(part.title() for part in event.replace(".", "_").split("_")) + "Event"
    return create_model(name, __base__=_CaseEvent, type=(Literal[event], ...))  # type: ignore[arg-type]


WebhookId = Annotated[str, Header(alias="webhook-id")]
WebhookTimestamp = Annotated[str, Header(alias="webhook-timestamp")]
WebhookSignature = Annotated[str, Header(alias="webhook-signature")]


_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Received (any 2xx)."},
    410: {"description": "Gone: the endpoint is disabled; no more deliveries."},
}


def _describe(event: str) -> str:
    return f"{_WHEN[event]}\n\n{_HEADERS}"


# Event type -> (summary, body model).
_EVENTS: dict[str, tuple[str, type[BaseModel]]] = {
    "assessment.overdue": ("An assessment is overdue", AssessmentOverdueEvent),
    "assessment.escalated": ("An overdue assessment is escalated", AssessmentEscalatedEvent),
    "patient.follow_up_at_risk": (
        "A patient is at risk of loss to follow-up",
        FollowUpAtRiskEvent,
    ),
    **{
        f"adverse_event.{change}": (summary, _case_event_model(f"adverse_event.{change}"))
        for change, summary in (
            ("created", "An adverse-event case was recorded"),
            ("updated", "A follow-up version of a case was recorded"),
            ("nullified", "A case was nullified"),
            ("serious", "A case is serious"),
        )
    },
}


def document(app: FastAPI) -> None:
    """Add one entry per event type to ``app.webhooks`` (shown under Webhooks in /docs)."""
    assert set(_WHEN) == set(EVENT_TYPES) == set(_EVENTS), "document every event type"
    for event, (summary, body_model) in _EVENTS.items():
        _document_event(app, event, summary, body_model)


def _document_event(app: FastAPI, event: str, summary: str, body_model: type[BaseModel]) -> None:
    def receive(
        body: BaseModel,
        webhook_id: WebhookId,
        webhook_timestamp: WebhookTimestamp,
        webhook_signature: WebhookSignature,
    ) -> None: ...

    # Annotations are strings here (postponed evaluation): give FastAPI the class itself.
    receive.__annotations__ = {**receive.__annotations__, "body": body_model}
    app.webhooks.post(
        event,
        operation_id=f"webhook_{event.replace('.', '_')}",
        summary=summary,
        description=_describe(event),
        responses=_RESPONSES,
    )(receive)
