"""Throttling of password and token guessing (OWASP ASVS V2.2).

Every refused password or bearer token is a row of ``sign_in_failures`` (the database, not
memory: every process of an installation counts the same failures). Before a password is
checked, the failures of the last ``WINDOW`` decide:

- per account (the email as typed, known or not, so a lockout tells nothing about which
  accounts exist): after the 2nd failure the next attempt waits 2 s, after the 3rd 4 s,
  after the 4th 8 s; after ``ACCOUNT_LIMIT`` failures the account is locked for
  ``LOCKOUT`` after the last one, even for the right password;
- per client address, across accounts and tokens: after ``CLIENT_LIMIT`` failures the
  address is refused for ``LOCKOUT`` after the last one.

A refusal is ``TooManyRequests`` with the seconds to wait (429 and Retry-After in the API,
the same message on the sign-in form). A successful sign-in clears its account's count
(not the address's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlmodel import Session, col

from surveillance.accounts.models import SignInFailure
from surveillance.errors import TooManyRequests

WINDOW = timedelta(minutes=15)
LOCKOUT = timedelta(minutes=15)
ACCOUNT_LIMIT = 5
CLIENT_LIMIT = 20
TOO_MANY = "Too many failed sign-in attempts: try again in {wait}."


@dataclass(frozen=True)
class Lockout:
    """What a failure just caused: the account or the address locked until ``until``."""

    scope: str  # "account" or "client"
    until: datetime


def _count(session: Session, by: str, value: str, now: datetime) -> tuple[int, datetime]:
    """How many failures of this account (``by="account"``) or address in the window, and
    when the last one was."""
    column = col(SignInFailure.account) if by == "account" else col(SignInFailure.client)
    count, last = session.execute(
        select(func.count(), func.max(col(SignInFailure.at))).where(
            column == value, col(SignInFailure.at) > now - WINDOW
        )
    ).one()
    return int(count), _aware(last) if last is not None else now


def _account_wait(count: int) -> timedelta:
    if count >= ACCOUNT_LIMIT:
        return LOCKOUT
    if count >= 2:
        return timedelta(seconds=2 ** (count - 1))
    return timedelta(0)


def check(session: Session, *, account: str | None, client: str, now: datetime) -> None:
    """Raise ``TooManyRequests`` if this account or address must wait before trying again."""
    until = now
    count, last = _count(session, "client", client, now)
    if count >= CLIENT_LIMIT:
        until = max(until, last + LOCKOUT)
    if account is not None:
        count, last = _count(session, "account", account, now)
        until = max(until, last + _account_wait(count))
    if until > now:
        seconds = math.ceil((until - now).total_seconds())
        raise TooManyRequests(TOO_MANY.format(wait=_wait_words(seconds)), retry_after=seconds)


def record_failure(
    session: Session, *, kind: str, account: str | None, client: str, now: datetime
) -> Lockout | None:
    """Count one refused password or token; the lockout it starts, if it starts one."""
    session.execute(delete(SignInFailure).where(col(SignInFailure.at) <= now - WINDOW))
    session.add(SignInFailure(at=now, kind=kind, account=account, client=client[:64]))
    session.flush()
    if account is not None:
        count, _ = _count(session, "account", account, now)
        if count == ACCOUNT_LIMIT:
            return Lockout("account", now + LOCKOUT)
    count, _ = _count(session, "client", client[:64], now)
    if count == CLIENT_LIMIT:
        return Lockout("client", now + LOCKOUT)
    return None


def clear_account(session: Session, account: str) -> None:
    session.execute(delete(SignInFailure).where(col(SignInFailure.account) == account))


def _wait_words(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _aware(moment: datetime) -> datetime:
    from datetime import UTC

    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
