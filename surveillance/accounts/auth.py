"""Users, roles, passwords, bearer tokens and browser sessions.

Passwords: argon2id. Tokens and session cookies: 256-bit random strings of which only a
SHA-256 hash is stored (a database leak does not leak usable tokens).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlmodel import Session, col
from zxcvbn import zxcvbn

from surveillance.accounts import throttle
from surveillance.accounts.models import ApiToken, Role, User, UserSite, WebSession
from surveillance.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    TooManyRequests,
    Unauthorized,
)
from surveillance.kit import audit
from surveillance.kit.i18n import LOCALES, N_
from surveillance.kit.text import single_line
from surveillance.records.sites import get_site

SESSION_LIFETIME = timedelta(hours=12)
MIN_PASSWORD_LENGTH = 12
MIN_PASSWORD_SCORE = 3  # zxcvbn: 0 (guessed at once) to 4; 3 is about 10^8 guesses
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SITE_ROLES = (Role.nurse, Role.investigator)
_hasher = PasswordHasher()
# Verifying against this when the email is unknown keeps sign-in time the same,
# so response times do not tell which emails exist.
_DUMMY_HASH = _hasher.hash("not a real password, only for timing")


@dataclass(frozen=True)
class Principal:
    """Who is asking: resolved once per request from a token or a session cookie."""

    user_id: int
    email: str
    role: Role
    sites: frozenset[str]
    locale: str | None = None  # their chosen language; None: the browser's

    @property
    def is_admin(self) -> bool:
        return self.role is Role.admin

    def works_at(self, site_id: str) -> bool:
        return self.is_admin or site_id in self.sites

    def require_role(self, *roles: Role, to: str = N_("do this")) -> None:
        """``to`` names what is refused in a nurse's words ("change a patient's status"):
        the refusal is read on a web page as well as in an API answer."""
        if self.role not in roles:
            raise Refused(roles, self.role, to)

    def require_site(self, site_id: str, what: str = "site") -> None:
        """Another site's record is reported as missing: its existence is not leaked."""
        if self.role is Role.pharmacovigilance:
            raise Forbidden(
                "Pharmacovigilance reads pseudonymous safety data only: a site's patients "
                "and due lists are for its nurses and investigators."
            )
        if not self.works_at(site_id):
            raise NotFound(f"no {what} {site_id!r}" if what == "site" else f"no {what}")


_PEOPLE = {
    Role.nurse: "nurses",
    Role.investigator: "investigators",
    Role.pharmacovigilance: "pharmacovigilance staff",
    Role.admin: "administrators",
}
_ONE = {
    Role.nurse: "a nurse",
    Role.investigator: "an investigator",
    Role.pharmacovigilance: "pharmacovigilance",
    Role.admin: "an administrator",
}


class Refused(Forbidden):
    """A role refused: the message in English (the API's), and its parts, so that a page
    can say it in its reader's language."""

    def __init__(self, allowed: Sequence[Role], role: Role, to: str) -> None:
        super().__init__(refusal(allowed, role, to))
        self.allowed = tuple(r for r in Role if r in allowed)
        self.role = role
        self.to = to


def refusal(allowed: Sequence[Role], role: Role, to: str) -> str:
    """'Only investigators and administrators can change a patient's status. You are
    signed in as a nurse.'"""
    people = [_PEOPLE[r] for r in Role if r in allowed]  # always in the same order
    who = people[0] if len(people) == 1 else f"{', '.join(people[:-1])} and {people[-1]}"
    return f"Only {who} can {to}. You are signed in as {_ONE[role]}."


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(prefix: str = "ltfu") -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


# -- users ----------------------------------------------------------------------------------


def add_user(session: Session, *, email: str, role: str, sites: list[str], actor: str) -> User:
    email = single_line(email, "email").strip().lower()
    if not _EMAIL.match(email):
        raise InvalidInput(f"{email!r} is not an email address")
    try:
        chosen = Role(role)
    except ValueError as exc:
        raise InvalidInput(
            f"unknown role {role!r}; use one of {', '.join(r.value for r in Role)}"
        ) from exc
    if chosen in _SITE_ROLES and not sites:
        raise InvalidInput(f"a {chosen.value} works at one or more sites: give --site")
    if chosen not in _SITE_ROLES and sites:
        raise InvalidInput(f"a {chosen.value} is not tied to sites")
    for site_id in sites:
        get_site(session, site_id)
    if session.execute(select(col(User.id)).where(col(User.email) == email)).first():
        raise Conflict(f"user {email} already exists")
    user = User(email=email, role=chosen.value)
    session.add(user)
    session.flush()
    assert user.id is not None
    for site_id in sorted(set(sites)):
        session.add(UserSite(user_id=user.id, site_id=site_id))
    audit.record(
        session,
        actor=actor,
        action="add_user",
        entity="user",
        entity_key=email,
        new={"role": chosen.value, "sites": sorted(set(sites))},
    )
    return user


def get_user(session: Session, email: str) -> User:
    user: User | None = session.execute(
        select(User).where(col(User.email) == email.strip().lower())
    ).scalar_one_or_none()
    if user is None:
        raise NotFound(f"no user {email!r}")
    return user


def check_password(password: str, *, email: str) -> None:
    """Refuse a password that is short, common or guessable (``InvalidInput``, field
    ``password``), offline.

    Beyond ``MIN_PASSWORD_LENGTH``: zxcvbn's estimate, which knows the passwords most
    often found in breaches, common words and names, keyboard runs, repeats and dates,
    must reach ``MIN_PASSWORD_SCORE`` (about 10^8 guesses); and the password may not
    contain the local part of the user's email.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"a password needs at least {MIN_PASSWORD_LENGTH} characters",
            field="password",
            template=N_("A password needs at least {length} characters."),
            values={"length": str(MIN_PASSWORD_LENGTH)},
        )
    local = email.strip().lower().partition("@")[0]
    if len(local) >= 3 and local in password.lower():
        raise InvalidInput(
            "a password may not contain the name of its email",
            field="password",
            template=N_("A password may not contain the name of its email."),
        )
    estimate = zxcvbn(password[:100], user_inputs=[local, email.strip().lower()])
    if estimate["score"] < MIN_PASSWORD_SCORE:
        warning = estimate["feedback"].get("warning") or "it is too easy to guess"
        raise InvalidInput(
            f"this password is common or easy to guess ({warning.rstrip('.').lower()}): "
            "choose a longer one, e.g. four or five unrelated words",
            field="password",
            # zxcvbn's hint is English only: the pages say it without the hint.
            template=N_(
                "This password is common or easy to guess: choose a longer one, e.g. four "
                "or five unrelated words."
            ),
        )


def set_password(
    session: Session,
    *,
    email: str,
    password: str,
    actor: str,
    keep_session_id: int | None = None,
) -> None:
    """Set the password and end the user's sessions, but the one it was changed from
    (``keep_session_id``), if any: a stolen session does not outlive a password change."""
    user = get_user(session, email)
    check_password(password, email=user.email)
    user.password_hash = _hasher.hash(password)
    session.add(user)
    ended = _end_sessions(session, user, keep_session_id=keep_session_id)
    audit.record(
        session,
        actor=actor,
        action="set_password",
        entity="user",
        entity_key=user.email,
        new={"sessions_ended": ended},
    )


def deactivate_user(session: Session, *, email: str, actor: str, now: datetime) -> User:
    """The user can no longer sign in: their sessions end and their tokens are revoked."""
    user = get_user(session, email)
    if not user.active:
        raise Conflict(f"user {user.email} is already deactivated")
    user.active = False
    session.add(user)
    ended = _end_sessions(session, user)
    tokens = session.execute(
        select(ApiToken).where(col(ApiToken.user_id) == user.id, col(ApiToken.revoked_at).is_(None))
    ).scalars()
    revoked = []
    for token in tokens:
        token.revoked_at = now
        session.add(token)
        revoked.append(token.prefix)
    audit.record(
        session,
        actor=actor,
        action="deactivate_user",
        entity="user",
        entity_key=user.email,
        old={"active": True},
        new={"active": False, "sessions_ended": ended, "tokens_revoked": revoked},
        at=now,
    )
    return user


def reactivate_user(session: Session, *, email: str, actor: str, now: datetime) -> User:
    """The user may sign in again (with a new password or token: the old tokens stay
    revoked)."""
    user = get_user(session, email)
    if user.active:
        raise Conflict(f"user {user.email} is active")
    user.active = True
    session.add(user)
    audit.record(
        session,
        actor=actor,
        action="reactivate_user",
        entity="user",
        entity_key=user.email,
        old={"active": False},
        new={"active": True},
        at=now,
    )
    return user


def _end_sessions(session: Session, user: User, *, keep_session_id: int | None = None) -> int:
    """Delete the user's browser sessions (but one); how many were ended."""
    statement = delete(WebSession).where(col(WebSession.user_id) == user.id)
    if keep_session_id is not None:
        statement = statement.where(col(WebSession.id) != keep_session_id)
    result = session.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0)


def principal_for(session: Session, user: User) -> Principal:
    assert user.id is not None
    sites = session.execute(
        select(col(UserSite.site_id)).where(col(UserSite.user_id) == user.id)
    ).scalars()
    return Principal(user.id, user.email, Role(user.role), frozenset(sites), user.locale)


def set_locale(
    session: Session, *, user_id: int, locale: str | None, actor: str, now: datetime
) -> None:
    """Save the language a user chose (``None``: follow the browser)."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("no such user")
    if locale is not None and locale not in LOCALES:
        raise InvalidInput(f"unknown language {locale!r}: choose one of {', '.join(LOCALES)}")
    old, user.locale = user.locale, locale
    session.add(user)
    audit.record(
        session,
        actor=actor,
        action="set_locale",
        entity="user",
        entity_key=user.email,
        old={"locale": old},
        new={"locale": locale},
        at=now,
    )


# -- tokens ---------------------------------------------------------------------------------


def create_token(
    session: Session, *, email: str, actor: str, feed_site: str | None = None, now: datetime
) -> tuple[ApiToken, str]:
    """A new token for ``email``; the plain token is returned once and never stored."""
    user = get_user(session, email)
    assert user.id is not None
    if feed_site is not None:
        principal_for(session, user).require_site(feed_site)
    token = new_token("feed" if feed_site else "ltfu")
    row = ApiToken(
        user_id=user.id,
        token_hash=hash_token(token),
        prefix=token[:12],
        kind="feed" if feed_site else "api",
        feed_site_id=feed_site,
        created_at=now,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="create_token",
        entity="token",
        entity_key=row.prefix,
        new={"user": user.email, "kind": row.kind, "site": feed_site},
        at=now,
    )
    return row, token


def revoke_token(session: Session, *, prefix: str, actor: str, now: datetime) -> ApiToken:
    rows: Sequence[ApiToken] = (
        session.execute(
            select(ApiToken).where(
                col(ApiToken.prefix) == prefix, col(ApiToken.revoked_at).is_(None)
            )
        )
        .scalars()
        .all()
    )
    if not rows:
        raise NotFound(f"no active token starting {prefix!r}")
    for row in rows:
        row.revoked_at = now
        session.add(row)
    audit.record(
        session, actor=actor, action="revoke_token", entity="token", entity_key=prefix, at=now
    )
    return rows[0]


def feed_tokens(session: Session, *, email: str, site_id: str) -> list[ApiToken]:
    """``email``'s calendar-feed tokens for one site that still work, oldest first."""
    user = get_user(session, email)
    return list(
        session.execute(
            select(ApiToken)
            .where(
                col(ApiToken.user_id) == user.id,
                col(ApiToken.kind) == "feed",
                col(ApiToken.feed_site_id) == site_id,
                col(ApiToken.revoked_at).is_(None),
            )
            .order_by(col(ApiToken.id))
        ).scalars()
    )


def list_tokens(session: Session) -> list[tuple[ApiToken, str]]:
    rows = session.execute(select(ApiToken, col(User.email)).join(User).order_by(col(ApiToken.id)))
    return [(token, email) for token, email in rows]


def authenticate_token(
    session: Session, token: str, *, kind: str = "api"
) -> tuple[Principal, ApiToken]:
    row = session.execute(
        select(ApiToken).where(
            col(ApiToken.token_hash) == hash_token(token), col(ApiToken.kind) == kind
        )
    ).scalar_one_or_none()
    if row is None or row.revoked_at is not None:
        raise Unauthorized("invalid or revoked token")
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        raise Unauthorized("the token's user is disabled")
    return principal_for(session, user), row


def record_token_failure(
    session: Session, *, token: str, client: str, now: datetime, limits: throttle.Limits
) -> None:
    """Count and audit a refused bearer or feed token (only its first 12 characters, the
    part shown in lists, are kept)."""
    _audit_refusal(
        session,
        actor="(unknown token)",
        action="token_refused",
        entity=("token", token[:12]),
        throttled=("token", None),
        lockout_action="token_lockout",
        client=client,
        now=now,
        limits=limits,
    )


@dataclass(frozen=True)
class TokenGrant:
    """What a valid token grants: who is asking and, for a feed token, the one site."""

    principal: Principal
    feed_site_id: str | None


def resolve_token(session: Session, token: str, *, kind: str = "api") -> TokenGrant:
    """``authenticate_token`` in one query (token, user and sites): it runs on every request."""
    statement = (
        select(
            col(User.id),
            col(User.email),
            col(User.role),
            col(User.active),
            col(ApiToken.revoked_at),
            col(ApiToken.feed_site_id),
            col(UserSite.site_id),
        )
        .join(User, col(User.id) == col(ApiToken.user_id))
        .outerjoin(UserSite, col(UserSite.user_id) == col(User.id))
        .where(col(ApiToken.token_hash) == hash_token(token), col(ApiToken.kind) == kind)
    )
    rows = session.execute(statement).all()
    if not rows or rows[0].revoked_at is not None:
        raise Unauthorized("invalid or revoked token")
    user_id, email, role, active, _, feed_site_id, _ = rows[0]
    if not active:
        raise Unauthorized("the token's user is disabled")
    sites = frozenset(row.site_id for row in rows if row.site_id is not None)
    return TokenGrant(Principal(user_id, email, Role(role), sites), feed_site_id)


# -- browser sessions ------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedIn:
    token: str  # the cookie value, returned once
    web_session: WebSession
    principal: Principal


def sign_in(
    session: Session,
    *,
    email: str,
    password: str,
    client: str,
    now: datetime,
    limits: throttle.Limits,
) -> SignedIn | Unauthorized | TooManyRequests:
    """Check the password and open a session, or say why not.

    A refusal is returned, not raised, so the failure and its audit row are committed
    with the caller's transaction. The throttle is asked first (``accounts.throttle``):
    a locked account is refused even with the right password, and an unknown email is
    counted and locked exactly like a known one.
    """
    account = email.strip().lower()[:254]
    try:
        throttle.check(session, account=account, client=client, now=now, limits=limits)
    except TooManyRequests as exc:
        return exc
    user = session.execute(select(User).where(col(User.email) == account)).scalar_one_or_none()
    stored = user.password_hash if user is not None and user.active else None
    if user is None or not password_matches(stored, password):
        record_wrong_password(
            session,
            account=account,
            action="sign_in_failed",
            client=client,
            now=now,
            limits=limits,
        )
        return Unauthorized("wrong email or password")
    assert user.id is not None
    throttle.clear_account(session, account)
    token = secrets.token_urlsafe(32)
    web_session = WebSession(
        token_hash=hash_token(token),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        expires_at=now + SESSION_LIFETIME,
    )
    session.add(web_session)
    session.flush()
    audit.record(
        session,
        actor=user.email,
        action="sign_in",
        entity="user",
        entity_key=user.email,
        new={"client": client},
        at=now,
    )
    return SignedIn(token, web_session, principal_for(session, user))


def password_matches(stored: str | None, password: str) -> bool:
    """Whether ``password`` is the one ``stored`` hashes (a missing one is checked against
    a dummy hash: the answer takes as long either way)."""
    try:
        matched = _hasher.verify(stored or _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return False
    return bool(matched and stored)


def record_wrong_password(
    session: Session,
    *,
    account: str,
    action: str,
    client: str,
    now: datetime,
    limits: throttle.Limits,
) -> None:
    """Audit and count a wrong password for ``account`` (the email as typed), and audit
    the lockout it starts, if any."""
    actor = account[:200] or "(no email)"
    _audit_refusal(
        session,
        actor=actor,
        action=action,
        entity=("user", actor),
        throttled=("password", account),
        lockout_action="sign_in_lockout",
        client=client,
        now=now,
        limits=limits,
    )


def _audit_refusal(
    session: Session,
    *,
    actor: str,
    action: str,
    entity: tuple[str, str],
    throttled: tuple[str, str | None],
    lockout_action: str,
    client: str,
    now: datetime,
    limits: throttle.Limits,
) -> None:
    """Audit a refused credential, count it (``throttled``: kind, account), and audit the
    lockout it starts: on the account (``entity``) or on the client."""
    name, key = entity
    audit.record(
        session, actor=actor, action=action, entity=name, entity_key=key,
        new={"client": client}, at=now,
    )  # fmt: skip
    kind, account = throttled
    lockout = throttle.record_failure(
        session, kind=kind, account=account, client=client, now=now, limits=limits
    )
    if lockout is not None:
        on_account = lockout.scope == "account"
        audit.record(
            session,
            actor=actor,
            action=lockout_action,
            entity=name if on_account else "client",
            entity_key=key if on_account else client,
            new={"client": client, "until": lockout.until.isoformat()},
            at=now,
        )


def session_principal(
    session: Session, token: str, *, now: datetime
) -> tuple[Principal, WebSession]:
    web_session = session.execute(
        select(WebSession).where(col(WebSession.token_hash) == hash_token(token))
    ).scalar_one_or_none()
    if web_session is None or _aware(web_session.expires_at) <= now:
        raise Unauthorized("please sign in")
    user = session.get(User, web_session.user_id)
    if user is None or not user.active:
        raise Unauthorized("please sign in")
    return principal_for(session, user), web_session


def sign_out(session: Session, token: str) -> None:
    session.execute(delete(WebSession).where(col(WebSession.token_hash) == hash_token(token)))


def _aware(moment: datetime) -> datetime:
    from datetime import UTC

    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def list_users(session: Session) -> list[tuple[User, list[str]]]:
    """Every user by email, with the sites they work at."""
    users = session.execute(select(User).order_by(col(User.email))).scalars().all()
    sites: dict[int, list[str]] = {}
    for link in session.execute(select(UserSite).order_by(col(UserSite.site_id))).scalars():
        sites.setdefault(link.user_id, []).append(link.site_id)
    return [(user, sites.get(user.id or 0, [])) for user in users]
