"""Alerting tables: webhook endpoints, escalation acknowledgements, mail kept locally."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from surveillance.kit.sqltypes import utc_column, utc_now


class WebhookEndpoint(SQLModel, table=True):
    __tablename__ = "webhook_endpoints"

    id: str = Field(primary_key=True, max_length=40)
    url: str = Field(max_length=2000)
    event_types: str = Field(max_length=500)  # comma-separated
    site_id: str | None = Field(default=None, foreign_key="sites.id", max_length=40)
    enabled: bool = True
    secret: str = Field(max_length=100)
    previous_secret: str | None = Field(default=None, max_length=100)
    previous_secret_expires_at: datetime | None = Field(default=None, sa_column=utc_column(True))
    failing_since: datetime | None = Field(default=None, sa_column=utc_column(True))
    disabled_reason: str | None = None
    created_at: datetime = Field(default_factory=utc_now, sa_column=utc_column())


class Acknowledgement(SQLModel, table=True):
    """An investigator has seen an escalation: no more reminders until the next level."""

    __tablename__ = "escalation_acks"

    assessment_id: int = Field(foreign_key="assessments.id", primary_key=True)
    level: int = Field(primary_key=True)
    note: str
    by: str = Field(max_length=254)
    at: datetime = Field(sa_column=utc_column())


class OutgoingMail(SQLModel, table=True):
    """Emails written when no SMTP server is configured (the embedded default)."""

    __tablename__ = "outgoing_mail"

    id: int | None = Field(default=None, primary_key=True)
    alert_id: str = Field(max_length=300, index=True)
    to: str
    subject: str
    text_body: str
    html_body: str | None = None
    written_at: datetime = Field(sa_column=utc_column())
