"""Email recipient groups, resolved when an alert is sent (staff change; alerts wait)."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session, col

from surveillance.accounts.models import Role, User, UserSite
from surveillance.kit.i18n import DEFAULT_LOCALE, LOCALES, supported


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


def resolve_by_locale(session: Session, group: str) -> dict[str, list[str]]:
    """The group's emails by the language each user chose (English when none), English
    first: one message is written per language."""
    emails = resolve(session, group)
    if not emails:
        return {}
    statement = select(col(User.email), col(User.locale)).where(col(User.email).in_(emails))
    chosen: dict[str, str | None] = {row.email: row.locale for row in session.execute(statement)}
    by_locale: dict[str, list[str]] = {}
    for email in emails:
        by_locale.setdefault(supported(chosen.get(email)) or DEFAULT_LOCALE, []).append(email)
    return dict(sorted(by_locale.items(), key=lambda item: LOCALES.index(item[0])))
