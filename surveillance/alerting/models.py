"""Alerting tables: escalation acknowledgements, mail kept locally."""

from __future__ import annotations

from datetime import date, datetime

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


class ScanChange(SQLModel, table=True):
    """A patient whose calendar, status, site or acknowledgements changed since the last
    alert scan. Written by database triggers (migration 0012) on every write to
    ``assessments``, ``patients`` and ``escalation_acks``, whatever code path made it, so
    the incremental scan cannot miss one; each scan takes (deletes) the rows it read."""

    __tablename__ = "alert_scan_changes"

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(index=True)


class ScanMark(SQLModel, table=True):
    """Where the last scan of a (site, protocol) group stood: the day it scanned "as of"
    and a fingerprint of what decided its alerts (policy, protocols, webhook endpoints,
    the scan's own version). A later scan with the same fingerprint reads only the
    windows that closed since, and the patients that changed."""

    __tablename__ = "alert_scan_marks"

    site_id: str = Field(primary_key=True, max_length=40)
    protocol_id: str = Field(primary_key=True, max_length=80)
    as_of: date
    fingerprint: str = Field(max_length=64)
    scanned_at: datetime = Field(sa_column=utc_column())
