"""Throttling of password and token guessing (OWASP ASVS V2.2).

Every refused password or bearer token is a row of ``sign_in_failures`` (the database, not
memory: every process of an installation counts the same failures). Before a password is
checked, the failures of the last ``window`` decide (``Limits``, from the settings
``SURVEILLANCE_THROTTLE_*``; defaults in brackets):

- per account (the email as typed, known or not, so a lockout tells nothing about which
  accounts exist): after the 2nd failure the next attempt waits 2 s, after the 3rd 4 s,
  after the 4th 8 s (doubling, at most ``lockout``); after ``account_limit`` (5) failures
  the account is locked for ``lockout`` (15 minutes) after the last one, even for the
  right password;
- per client address, across accounts and tokens: after ``client_limit`` (20) failures
  the address is refused for ``lockout`` after the last one.

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
from surveillance.config import Settings
from surveillance.errors import TooManyRequests

TOO_MANY = "Too many failed sign-in attempts: try again in {wait}."


@dataclass(frozen=True)
class Limits:
    """How many failures, over which window, lock what for how long."""

    window: timedelta  # failures older than this are forgotten
    lockout: timedelta  # at most ``window``: a lockout ends when its failures leave it
    account_limit: int
    client_limit: int


def limits_of(settings: Settings) -> Limits:
    """This installation's limits (validated by ``Settings``)."""
    return Limits(
        window=timedelta(minutes=settings.throttle_window_minutes),
        lockout=timedelta(minutes=settings.throttle_lockout_minutes),
        account_limit=settings.throttle_account_limit,
        client_limit=settings.throttle_client_limit,
    )


@dataclass(frozen=True)
class Lockout:
    """What a failure just caused: the account or the address locked until ``until``."""

    scope: str  # "account" or "client"
    until: datetime


def _count(
    session: Session, by: str, value: str, now: datetime, window: timedelta
) -> tuple[int, datetime]:
    """How many failures of this account (``by="account"``) or address in the window, and
    when the last one was."""
    column = col(SignInFailure.account) if by == "account" else col(SignInFailure.client)
    count, last = session.execute(
        select(func.count(), func.max(col(SignInFailure.at))).where(
            column == value, col(SignInFailure.at) > now - window
        )
    ).one()
    return int(count), _aware(last) if last is not None else now


def _account_wait(count: int, limits: Limits) -> timedelta:
    if count >= limits.account_limit:
        return limits.lockout
    if count >= 2:  # doubling, capped (a high limit must not mean days of waiting)
        return min(timedelta(seconds=2 ** min(count - 1, 20)), limits.lockout)
    return timedelta(0)


def check(
    session: Session, *, account: str | None, client: str, now: datetime, limits: Limits
) -> None:
    """Raise ``TooManyRequests`` if this account or address must wait before trying again."""
    until = now
    count, last = _count(session, "client", client, now, limits.window)
    if count >= limits.client_limit:
        until = max(until, last + limits.lockout)
    if account is not None:
        count, last = _count(session, "account", account, now, limits.window)
        until = max(until, last + _account_wait(count, limits))
    if until > now:
        seconds = math.ceil((until - now).total_seconds())
        raise TooManyRequests(TOO_MANY.format(wait=_wait_words(seconds)), retry_after=seconds)


def record_failure(
    session: Session,
    *,
    kind: str,
    account: str | None,
    client: str,
    now: datetime,
    limits: Limits,
) -> Lockout | None:
    """Count one refused password or token; the lockout it starts, if it starts one."""
    session.execute(delete(SignInFailure).where(col(SignInFailure.at) <= now - limits.window))
    session.add(SignInFailure(at=now, kind=kind, account=account, client=client[:64]))
    session.flush()
    if account is not None:
        count, _ = _count(session, "account", account, now, limits.window)
        if count == limits.account_limit:
            return Lockout("account", now + limits.lockout)
    count, _ = _count(session, "client", client[:64], now, limits.window)
    if count == limits.client_limit:
        return Lockout("client", now + limits.lockout)
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
