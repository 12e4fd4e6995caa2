"""Email recipient groups, resolved when an alert is sent (staff change; alerts wait)."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session, col

from surveillance.accounts.models import Role, User, UserSite


def resolve(session: Session, group: str) -> list[str]:
    """``site:Rome:nurse`` / ``site:Rome:investigator`` / ``admins`` -> active users' emails."""
    statement = select(col(User.email)).where(col(User.active).is_(True))
    if group == "admins":
        statement = statement.where(col(User.role) == Role.admin.value)
    else:
        _, site_id, role = group.split(":", 2)
        statement = statement.join(UserSite, col(UserSite.user_id) == col(User.id)).where(
            col(UserSite.site_id) == site_id, col(User.role) == role
        )
    return sorted(session.execute(statement).scalars())
