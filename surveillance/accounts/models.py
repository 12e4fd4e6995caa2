"""Users, their sites, API and feed tokens, browser sessions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from surveillance.kit.clock import utc_now
from surveillance.kit.sqltypes import utc_column


class Role(StrEnum):
    nurse = "nurse"
    investigator = "investigator"
    pharmacovigilance = "pharmacovigilance"
    admin = "admin"


# Who may see and change clinical data (pharmacovigilance reads the feed only).
CLINICAL_ROLES = (Role.nurse, Role.investigator, Role.admin)


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True)
    role: str = Field(max_length=20)
    password_hash: str | None = None  # argon2id; None until a password is set from the CLI
    active: bool = True
    created_at: datetime = Field(default_factory=utc_now, sa_column=utc_column())
    # The language of their pages and emails ("en", "it", "de"); None: the browser's, else
    # English (emails: English).
    locale: str | None = Field(default=None, max_length=5)


class UserSite(SQLModel, table=True):
    """The sites a nurse or investigator works at (admin and pharmacovigilance have none)."""

    __tablename__ = "user_sites"

    user_id: int = Field(foreign_key="users.id", primary_key=True)
    site_id: str = Field(foreign_key="sites.id", primary_key=True, max_length=40)


class ApiToken(SQLModel, table=True):
    """A bearer token for API clients, or a read-only calendar-feed token for one site.

    Only a SHA-256 hash of the token is stored: tokens are 256-bit random strings, so a
    fast hash is enough and lets each request be checked with one indexed lookup.
    """

    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    prefix: str = Field(max_length=12)  # shown in lists so a token can be told apart
    kind: str = Field(default="api", max_length=10)  # "api" or "feed"
    feed_site_id: str | None = Field(default=None, foreign_key="sites.id", max_length=40)
    created_at: datetime = Field(default_factory=utc_now, sa_column=utc_column())
    revoked_at: datetime | None = Field(default=None, sa_column=utc_column(True))


class WebSession(SQLModel, table=True):
    """A signed-in browser: the cookie holds a random token, the table its hash."""

    __tablename__ = "web_sessions"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utc_now, sa_column=utc_column())
    expires_at: datetime = Field(sa_column=utc_column())


class SignInFailure(SQLModel, table=True):
    """One refused password or bearer token: the throttle counts them per account and per
    client address over a window (see ``accounts.throttle``). Kept in the database so every
    process of an installation sees the same count."""

    __tablename__ = "sign_in_failures"
    __table_args__ = (
        Index(None, "account", "at"),
        Index(None, "client", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=utc_column())
    kind: str = Field(max_length=10)  # "password" or "token"
    # The email as typed, lower-cased (also for unknown emails: a lockout must not tell
    # which accounts exist); None for a bearer token.
    account: str | None = Field(default=None, max_length=254)
    client: str = Field(max_length=64)  # the client's IP address
