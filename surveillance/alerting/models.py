"""Alerting tables: escalation acknowledgements, mail kept locally."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from surveillance.kit.sqltypes import utc_column


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
