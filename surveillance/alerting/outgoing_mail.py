"""The mail written instead of sent when no SMTP server is configured: what each person may
read of it (admins: all of it; everyone else: what was addressed to them)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, or_, select
from sqlmodel import Session, col

from surveillance.alerting.models import OutgoingMail


def mail_list(
    session: Session, *, addressed_to: str | None, before: int = 0, limit: int = 200
) -> list[OutgoingMail]:
    """Newest first (ids grow as mail is written); ``before`` pages to older mail;
    ``addressed_to`` None: every mail."""
    statement = select(OutgoingMail).order_by(col(OutgoingMail.id).desc()).limit(limit)
    if before > 0:
        statement = statement.where(col(OutgoingMail.id) < before)
    return list(session.execute(_for(statement, addressed_to)).scalars())


def mail_item(session: Session, mail_id: int, *, addressed_to: str | None) -> OutgoingMail | None:
    statement = select(OutgoingMail).where(col(OutgoingMail.id) == mail_id)
    mail: OutgoingMail | None = session.execute(_for(statement, addressed_to)).scalar_one_or_none()
    return mail


def _for(statement: Select[OutgoingMail], email: str | None) -> Select[OutgoingMail]:
    return statement if email is None else statement.where(_addressed_to(email))


def _addressed_to(email: str) -> ColumnElement[bool]:
    """``to`` is a ", "-joined list: match the whole address, never a part of another."""
    to = col(OutgoingMail.to)
    e = email.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return or_(
        to == email,
        to.like(f"{e}, %", escape="\\"),
        to.like(f"%, {e}", escape="\\"),
        to.like(f"%, {e}, %", escape="\\"),
    )
