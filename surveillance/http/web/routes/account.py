"""The signed-in user's own account: change their password (``accounts.own_password``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response

from surveillance.accounts.own_password import change_own_password
from surveillance.errors import InvalidInput, TooManyRequests
from surveillance.http.deps import State, client_address
from surveillance.http.web.render import PageRoute, redirect, render, set_flash
from surveillance.http.web.session import CurrentWebUser, WebUser, check_csrf, landing_url
from surveillance.kit.i18n import N_

router = APIRouter(route_class=PageRoute, include_in_schema=False)
PAGE = "/account/password"
WRONG_CURRENT = N_("Your current password is not right.")
TOO_MANY = N_("Too many failed attempts. Wait {minutes} min and try again.")
CHANGED = N_("Your password is changed. Your other sessions are signed out.")


@router.get(PAGE)
def password_page(request: Request, user: CurrentWebUser) -> Response:
    return _form(request, user)


@router.post(PAGE)
def change_password(
    request: Request,
    state: State,
    user: CurrentWebUser,
    current: Annotated[str, Form()] = "",
    new: Annotated[str, Form()] = "",
    repeated: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(user.csrf_token, csrf_token)
    try:
        with state.write() as session:
            outcome = change_own_password(
                session,
                user_id=user.principal.user_id,
                session_token=user.token,
                current=current,
                new=new,
                repeated=repeated,
                client=client_address(request),
                now=state.now(),
                limits=state.throttle_limits,
            )
    except InvalidInput as refused:
        error = refused.template or refused.message
        return _form(request, user, error, refused.values, field=refused.field or "new")
    if isinstance(outcome, TooManyRequests):
        minutes = {"minutes": str(max(1, -(-outcome.retry_after // 60)))}
        return _form(request, user, TOO_MANY, minutes, field="current", status_code=429)
    if outcome is not None:
        return _form(request, user, WRONG_CURRENT, field="current")
    response = redirect(landing_url(user.principal))
    set_flash(request, response, "success", CHANGED)
    return response


def _form(
    request: Request,
    user: WebUser,
    error: str | None = None,
    values: dict[str, Any] | None = None,
    *,
    field: str | None = None,
    status_code: int | None = None,
) -> Response:
    context = {
        "title": N_("Change your password"),
        "page_error": error,
        "page_error_args": values,
        "error_field": field,
    }
    code = status_code or (422 if error else 200)
    return render(request, "account_password.html", context, user=user, status_code=code)
