"""A signed-in user changes their own password.

The current password is checked as at sign-in: the throttle is asked first, and a wrong
one is audited and counted against the account and the address (``accounts.throttle``),
so a stolen session cannot be used to guess it faster than the sign-in form allows. The
new one is typed twice and must pass the same rule as ``surveillance users``
(``auth.check_password``); ``auth.set_password`` then stores it, ends the user's other
browser sessions and audits the change.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, col

from surveillance.accounts import throttle
from surveillance.accounts.auth import (
    hash_token,
    password_matches,
    record_wrong_password,
    set_password,
)
from surveillance.accounts.models import User, WebSession
from surveillance.errors import InvalidInput, TooManyRequests, Unauthorized
from surveillance.kit.i18n import N_


def change_own_password(
    session: Session,
    *,
    user_id: int,
    session_token: str,
    current: str,
    new: str,
    repeated: str,
    client: str,
    now: datetime,
    limits: throttle.Limits,
) -> Unauthorized | TooManyRequests | None:
    """Change the password of the user signed in with ``session_token`` (kept open; their
    other sessions end). A wrong or throttled current password is returned, not raised,
    so its count and audit row commit with the caller's transaction; a new password that
    is refused raises ``InvalidInput`` (field ``new`` or ``repeated``)."""
    user = session.get(User, user_id)
    if user is None or not user.active:
        raise Unauthorized("please sign in")
    try:
        throttle.check(session, account=user.email, client=client, now=now, limits=limits)
    except TooManyRequests as exc:
        return exc
    if not password_matches(user.password_hash, current):
        record_wrong_password(
            session,
            account=user.email,
            action="password_change_failed",
            client=client,
            now=now,
            limits=limits,
        )
        return Unauthorized("the current password is wrong")
    throttle.clear_account(session, user.email)
    if new != repeated:
        raise InvalidInput(
            "the two new passwords differ",
            field="repeated",
            template=N_("The two new passwords differ: type the same one twice."),
        )
    if new == current:
        raise InvalidInput(
            "the new password is the current one",
            field="new",
            template=N_("The new password is the current one: choose another."),
        )
    kept = session.execute(
        select(col(WebSession.id)).where(col(WebSession.token_hash) == hash_token(session_token))
    ).scalar()
    try:
        set_password(
            session, email=user.email, password=new, actor=user.email, keep_session_id=kept
        )
    except InvalidInput as refused:
        raise InvalidInput(
            refused.message, field="new", template=refused.template, values=refused.values
        ) from refused
    return None
