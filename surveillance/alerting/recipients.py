"""Email recipient groups, resolved when an alert is sent (staff change; alerts wait)."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session

from ..models import Role, User, UserSite


def resolve(session: Session, group: str) -> list[str]:
    """``site:Rome:nurse`` / ``site:Rome:investigator`` / ``admins`` -> active users' emails."""
    statement = select(User.email).where(User.active.is_(True))  # type: ignore[attr-defined]
    if group == "admins":
        statement = statement.where(User.role == Role.admin.value)
    else:
        _, site_id, role = group.split(":", 2)
        statement = statement.join(UserSite, UserSite.user_id == User.id).where(  # type: ignore[arg-type]
            UserSite.site_id == site_id, User.role == role
        )
    return sorted(session.execute(statement).scalars())
