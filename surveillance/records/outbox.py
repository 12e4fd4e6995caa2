"""The outbox: alerts to deliver, every attempt to deliver them, and the webhook endpoints
they may go to.

An alert is written in the same transaction as the change that causes it; the alerting
package claims, sends and retries it."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Column, Index, text
from sqlmodel import Field, SQLModel

from surveillance.kit.clock import utc_now
from surveillance.kit.secret_box import SECRET_COLUMN_LENGTH, EncryptedString
from surveillance.kit.sqltypes import utc_column


class AlertStatus(StrEnum):
    pending = "pending"  # waiting for its next attempt
    sending = "sending"  # claimed by a dispatcher until claimed_until
    sent = "sent"
    failed = "failed"  # permanent error or retries exhausted: shown to admins
    cancelled = "cancelled"  # its cause went away before it was sent
    held = "held"  # its webhook endpoint is disabled: kept for replay


class AlertKind(StrEnum):
    """Every kind of alert, by the name it carries in ids, webhooks and the ``kind`` column.

    Only the names live here, beside the table, because the adverse-event package (below
    alerting) queues some of them; what each kind does (what raises it, its re-check at
    send, its email and webhook) is declared once, in ``surveillance.alerting.kinds``.
    """

    assessment_overdue = "assessment.overdue"
    assessment_escalated = "assessment.escalated"
    patient_follow_up_at_risk = "patient.follow_up_at_risk"
    adverse_event_created = "adverse_event.created"
    adverse_event_updated = "adverse_event.updated"
    adverse_event_nullified = "adverse_event.nullified"
    adverse_event_serious = "adverse_event.serious"
    adverse_event_unacknowledged = "adverse_event.unacknowledged"
    digest = "digest"
    admin_digest = "digest.admins"
    alert_failed = "alert.failed"
    webhook_disabled = "webhook.disabled"


class Channel(StrEnum):
    email = "email"
    webhook = "webhook"


class Alert(SQLModel, table=True):
    """One notification to deliver.

    ``id`` is deterministic (kind:subject:level:round:channel:recipient): a second scan,
    on this machine or another, inserts nothing, and every retry carries the same id.
    """

    __tablename__ = "alerts"
    __table_args__ = (
        Index(
            "ix_alerts_due_for_dispatch",
            "next_attempt_at",
            sqlite_where=text("status IN ('pending', 'sending')"),
            postgresql_where=text("status IN ('pending', 'sending')"),
        ),
    )

    id: str = Field(primary_key=True, max_length=300)
    kind: str = Field(max_length=60)  # an AlertKind
    level: int = 0
    channel: str = Field(max_length=10)
    # email: a recipient group resolved at send time ("site:Rome:nurse", "admins");
    # webhook: the endpoint id.
    recipient: str = Field(max_length=200)
    site_id: str | None = Field(default=None, max_length=40)
    patient_id: int | None = Field(default=None, index=True)
    assessment_id: int | None = Field(default=None, index=True)
    # Adverse-event alerts: the case and the version they are about.
    case_id: str | None = Field(default=None, max_length=48, index=True)
    case_version: int | None = None
    as_of: date  # the day the scan saw the condition
    # JSON event data (pseudonymous), frozen at the first attempt so retries send the same.
    payload: str | None = None
    status: str = Field(default=AlertStatus.pending.value, max_length=12, index=True)
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_column=utc_column())
    claimed_until: datetime | None = Field(default=None, sa_column=utc_column(True))
    created_at: datetime = Field(default_factory=utc_now, sa_column=utc_column())
    sent_at: datetime | None = Field(default=None, sa_column=utc_column(True))
    last_error: str | None = None
    cancel_reason: str | None = None


class DeliveryAttempt(SQLModel, table=True):
    __tablename__ = "delivery_attempts"

    id: int | None = Field(default=None, primary_key=True)
    alert_id: str = Field(foreign_key="alerts.id", index=True, max_length=300)
    attempted_at: datetime = Field(sa_column=utc_column())
    outcome: str = Field(max_length=12)  # sent, transient, permanent, cancelled
    status_code: int | None = None
    detail: str | None = None  # truncated to 2048 characters


class WebhookEndpoint(SQLModel, table=True):
    __tablename__ = "webhook_endpoints"

    id: str = Field(primary_key=True, max_length=40)
    url: str = Field(max_length=2000)
    event_types: str = Field(max_length=500)  # comma-separated
    site_id: str | None = Field(default=None, foreign_key="sites.id", max_length=40)
    enabled: bool = True
    # Encrypted at rest (kit.secret_box): a copy of the database reveals no secret.
    secret: str = Field(sa_column=Column(EncryptedString(SECRET_COLUMN_LENGTH), nullable=False))
    previous_secret: str | None = Field(
        default=None, sa_column=Column(EncryptedString(SECRET_COLUMN_LENGTH), nullable=True)
    )
    previous_secret_expires_at: datetime | None = Field(default=None, sa_column=utc_column(True))
    failing_since: datetime | None = Field(default=None, sa_column=utc_column(True))
    disabled_reason: str | None = None
    created_at: datetime = Field(default_factory=utc_now, sa_column=utc_column())
