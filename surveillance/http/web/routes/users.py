"""Users for admins in the browser: the list, and deactivate or reactivate each one (the
same ``accounts.auth`` functions as the API and the command line, audited there)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request, Response

from surveillance.accounts import auth
from surveillance.accounts.models import Role
from surveillance.http.deps import State
from surveillance.http.web.render import PageRoute, redirect, render, set_flash
from surveillance.http.web.session import CurrentWebUser, check_csrf
from surveillance.kit.i18n import N_

router = APIRouter(route_class=PageRoute, include_in_schema=False)
PAGE = "/admin/users"


@router.get(PAGE)
def users_page(request: Request, state: State, user: CurrentWebUser) -> Response:
    user.principal.require_role(Role.admin, to=N_("manage users"))
    with state.read() as session:
        users = auth.list_users(session)
    return render(request, "admin_users.html", {"title": N_("Users"), "users": users}, user=user)


@router.post(PAGE + "/{email}/deactivate")
def deactivate_form(
    request: Request,
    email: str,
    state: State,
    user: CurrentWebUser,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """End the user's sessions, revoke their tokens; they can no longer sign in."""
    check_csrf(user.csrf_token, csrf_token)
    user.principal.require_role(Role.admin, to=N_("manage users"))
    with state.write() as session:
        auth.deactivate_user(session, email=email, actor=user.principal.email, now=state.now())
    state.principals.clear()
    response = redirect(f"{PAGE}#{quote(email)}")
    set_flash(
        request,
        response,
        "success",
        N_("{email} is deactivated: sessions ended, tokens revoked."),
        email=email,
    )
    return response


@router.post(PAGE + "/{email}/reactivate")
def reactivate_form(
    request: Request,
    email: str,
    state: State,
    user: CurrentWebUser,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Let the user sign in again (old tokens stay revoked)."""
    check_csrf(user.csrf_token, csrf_token)
    user.principal.require_role(Role.admin, to=N_("manage users"))
    with state.write() as session:
        auth.reactivate_user(session, email=email, actor=user.principal.email, now=state.now())
    response = redirect(f"{PAGE}#{quote(email)}")
    set_flash(request, response, "success", N_("{email} can sign in again."), email=email)
    return response
