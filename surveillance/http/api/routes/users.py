"""Users (admins): list, deactivate, reactivate.

Deactivating ends the user's browser sessions and revokes their tokens, at once in this
process and within ``SURVEILLANCE_CACHE_SECONDS`` in the others.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from surveillance.accounts import auth
from surveillance.accounts.models import Role, User
from surveillance.http.deps import CurrentUser, State

router = APIRouter(prefix="/users", tags=["users"])


class UserPublic(BaseModel):
    email: str
    role: str
    sites: list[str]
    active: bool
    has_password: bool


def user_dict(user: User, sites: list[str]) -> dict[str, Any]:
    return {
        "email": user.email,
        "role": user.role,
        "sites": sites,
        "active": user.active,
        "has_password": user.password_hash is not None,
    }


@router.get("", response_model=list[UserPublic])
def list_users(state: State, user: CurrentUser) -> list[dict[str, Any]]:
    """Every user by email (administrators only)."""
    user.require_role(Role.admin, to="manage users")
    with state.read() as session:
        return [user_dict(u, sites) for u, sites in auth.list_users(session)]


@router.post("/{email}/deactivate", response_model=UserPublic)
def deactivate_user(email: str, state: State, user: CurrentUser) -> dict[str, Any]:
    """The user can no longer sign in: sessions end, tokens are revoked (409 if already
    deactivated)."""
    user.require_role(Role.admin, to="manage users")
    with state.write() as session:
        changed = auth.deactivate_user(session, email=email, actor=user.email, now=state.now())
        result = user_dict(changed, _sites(session, changed))
    state.principals.clear()  # this process forgets the revoked tokens at once
    return result


@router.post("/{email}/reactivate", response_model=UserPublic)
def reactivate_user(email: str, state: State, user: CurrentUser) -> dict[str, Any]:
    """The user may sign in again; their old tokens stay revoked (409 if active)."""
    user.require_role(Role.admin, to="manage users")
    with state.write() as session:
        changed = auth.reactivate_user(session, email=email, actor=user.email, now=state.now())
        return user_dict(changed, _sites(session, changed))


def _sites(session: Any, user: User) -> list[str]:
    return sorted(auth.principal_for(session, user).sites)
