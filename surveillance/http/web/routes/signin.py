"""Sign in, sign out, the front door and the page that tells a role what it may see."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from surveillance.accounts.auth import SignedIn, set_locale, sign_in, sign_out
from surveillance.errors import TooManyRequests
from surveillance.http.deps import State, client_address
from surveillance.http.web.render import (
    PageRoute,
    redirect,
    render,
    request_locale,
    set_flash,
    web_config,
)
from surveillance.http.web.session import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    CurrentWebUser,
    MaybeWebUser,
    check_csrf,
    landing_url,
    new_csrf_token,
    safe_next,
)
from surveillance.kit.i18n import N_, gettext, supported, use_locale

router = APIRouter(route_class=PageRoute, include_in_schema=False)
WRONG_CREDENTIALS = N_("Wrong email or password. Check both and try again.")
# The same words whether the account exists or not (the throttle counts unknown emails too).
TOO_MANY = "Too many failed attempts to sign in. Wait {minutes} min and try again."


@router.get("/")
def front_door(user: MaybeWebUser) -> Response:
    return redirect(landing_url(user.principal) if user else "/login")


@router.get("/login")
def login_page(request: Request, user: MaybeWebUser, next: str | None = None) -> Response:
    if user is not None:
        return redirect(safe_next(next) or landing_url(user.principal))
    return _login_form(request, next=next)


@router.post("/login")
def login(
    request: Request,
    state: State,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request.cookies.get(LOGIN_CSRF_COOKIE), csrf_token)
    with state.write() as session:
        old = request.cookies.get(SESSION_COOKIE)
        if old:
            sign_out(session, old)  # a new sign-in never reuses a session token
        outcome = sign_in(
            session,
            email=email,
            password=password,
            client=client_address(request),
            now=state.now(),
            limits=state.throttle_limits,
        )
    if isinstance(outcome, TooManyRequests):
        return _login_form(
            request, next=next, email=email, error=TOO_MANY, wait=outcome.retry_after
        )
    if not isinstance(outcome, SignedIn):
        return _login_form(request, next=next, email=email, error=WRONG_CREDENTIALS)
    token, principal = outcome.token, outcome.principal
    response = redirect(safe_next(next) or landing_url(principal))
    response.set_cookie(
        SESSION_COOKIE,
        token,
        path="/",
        httponly=True,
        samesite="lax",
        secure=web_config(request).secure_cookies,
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@router.post("/logout")
def logout(
    request: Request, state: State, user: CurrentWebUser, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    check_csrf(user.csrf_token, csrf_token)
    with state.write() as session:
        sign_out(session, user.token)
    response = redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    set_flash(request, response, "info", N_("You are signed out."))
    return response


@router.get("/access")
def access_page(request: Request, user: CurrentWebUser) -> Response:
    """What the signed-in role may see (the landing page of pharmacovigilance)."""
    return render(request, "access.html", {"title": N_("Your access")}, user=user)


@router.post("/language")
def choose_language(
    request: Request,
    state: State,
    user: CurrentWebUser,
    locale: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    """Save the language of the user's pages and emails (the header's switch)."""
    check_csrf(user.csrf_token, csrf_token)
    with state.write() as session:
        # "" goes back to following the browser; an unknown code is refused (422).
        set_locale(
            session,
            user_id=user.principal.user_id,
            locale=supported(locale) or (None if locale == "" else locale),
            actor=user.principal.email,
            now=state.now(),
        )
    return redirect(safe_next(next) or landing_url(user.principal))


def _login_form(
    request: Request,
    *,
    next: str | None,
    email: str = "",
    error: str | None = None,
    wait: int | None = None,
) -> Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or new_csrf_token()
    if error is not None:
        with use_locale(request_locale(request, None)):
            error = gettext(error)
            if wait is not None:
                error = error.format(minutes=max(1, -(-wait // 60)))
    context = {
        "title": N_("Sign in"),
        "login_csrf": token,
        "next": safe_next(next) or "",
        "email": email,
        "error": error,
    }
    response = render(request, "login.html", context, user=None)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        path="/",
        httponly=True,
        samesite="lax",
        secure=web_config(request).secure_cookies,
    )
    return response
