"""Who is at the browser: the session cookie, CSRF tokens and where people land.

The cookie holds a random token (only its hash is stored, see ``auth``). Every form
that changes something carries the session's CSRF token in a hidden field; the sign-in
form, which has no session yet, uses a double-submit cookie instead.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request

from surveillance.accounts.auth import Principal, session_principal
from surveillance.accounts.models import Role
from surveillance.errors import Forbidden, Unauthorized
from surveillance.http.deps import State
from surveillance.kit.i18n import N_

SESSION_COOKIE = "ltfu_session"
LOGIN_CSRF_COOKIE = "ltfu_login_csrf"
CSRF_FIELD = "csrf_token"


class SignInRequired(Exception):
    """No valid session: the page sends the browser to the sign-in page."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class CsrfRejected(Forbidden):
    def __init__(self) -> None:
        super().__init__(
            N_(
                "This form has expired or did not come from this site, so nothing was "
                "changed. Go back, reload the page and try again."
            )
        )


@dataclass(frozen=True)
class WebUser:
    principal: Principal
    csrf_token: str
    token: str

    @property
    def role(self) -> Role:
        return self.principal.role


def get_web_user(request: Request, state: State) -> WebUser:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise SignInRequired(_here(request))
    try:
        with state.read() as session:
            principal, web_session = session_principal(session, token, now=state.now())
    except Unauthorized as exc:
        raise SignInRequired(_here(request)) from exc
    request.state.principal = principal
    return WebUser(principal, web_session.csrf_token, token)


def optional_web_user(request: Request, state: State) -> WebUser | None:
    try:
        return get_web_user(request, state)
    except SignInRequired:
        return None


CurrentWebUser = Annotated[WebUser, Depends(get_web_user)]
MaybeWebUser = Annotated[WebUser | None, Depends(optional_web_user)]


def check_csrf(expected: str | None, sent: str | None) -> None:
    """Raise ``CsrfRejected`` (403) unless the form sent the token it was given."""
    if not expected or not sent or not secrets.compare_digest(expected.encode(), sent.encode()):
        raise CsrfRejected()


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def safe_next(value: str | None) -> str | None:
    """``value`` if it is a path on this site (``/sites/Rome/due?on=...``), else ``None``.

    Absolute and scheme-relative URLs (``https://evil``, ``//evil``, ``/\\evil``) are
    refused so the sign-in page cannot be used to send people elsewhere.
    """
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")) or "\\" in value:
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or any(ord(c) < 0x20 for c in value):
        return None
    return value


def login_url(next_url: str | None) -> str:
    target = safe_next(next_url)
    return "/login" if not target or target == "/" else f"/login?next={quote(target, safe='')}"


def landing_url(principal: Principal) -> str:
    """Where a user starts: a nurse at her due list, pharmacovigilance at the safety cases,
    investigators and admins at the dashboard."""
    if principal.role is Role.nurse and principal.sites:
        return f"/sites/{quote(sorted(principal.sites)[0])}/due"
    if principal.role is Role.pharmacovigilance:
        return "/safety"
    return "/dashboard"


def _here(request: Request) -> str:
    """The page to come back to after signing in (a form post cannot be replayed)."""
    if request.method != "GET":
        return "/"
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")
