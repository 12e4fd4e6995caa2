"""Guessing passwords and tokens is throttled (OWASP ASVS V2.2), across processes.

Two apps on one database stand for two server processes: the failures are counted in the
database, so what one process refused counts in the other. The clock is stopped and moved
by hand.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from support.api_support import NOW, USERS, populate

import rules
from surveillance.accounts import auth, throttle
from surveillance.config import Settings
from surveillance.errors import TooManyRequests, Unauthorized
from surveillance.http.app import create_app
from surveillance.kit.audit import AuditEntry
from surveillance.kit.db import read_session, write_session
from surveillance.main import build_runtime

# The defaults (SURVEILLANCE_THROTTLE_* unset).
DEFAULTS = throttle.limits_of(Settings(database_url="sqlite://"))
ACCOUNT_LIMIT, CLIENT_LIMIT, LOCKOUT = (
    DEFAULTS.account_limit,
    DEFAULTS.client_limit,
    DEFAULTS.lockout,
)
PASSWORD = "correct horse battery staple"
NURSE = USERS["nurse"][0]


@dataclass
class Clock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Servers:
    first: TestClient
    second: TestClient
    engine: Engine
    clock: Clock
    tokens: dict[str, str]


@pytest.fixture
def servers(database_url: str, registry: rules.ProtocolRegistry) -> Iterator[Servers]:
    with serving(database_url, registry) as both:
        yield both


@contextmanager
def serving(
    database_url: str, registry: rules.ProtocolRegistry, **chosen: int
) -> Iterator[Servers]:
    """Two server processes on one database, with these settings."""
    clock = Clock()
    # No token cache: each process asks the database, as after the cache's seconds.
    settings = Settings(database_url=database_url, cache_seconds=0, **chosen)  # type: ignore[arg-type]
    first = build_runtime(settings, clock=clock, registry=registry)
    second = build_runtime(settings, clock=clock, registry=registry)
    tokens = populate(first.engine)
    with write_session(first.engine) as session:
        auth.set_password(session, email=NURSE, password=PASSWORD, actor="test")
    try:
        with (
            TestClient(create_app(first), follow_redirects=False) as a,
            TestClient(create_app(second), follow_redirects=False) as b,
        ):
            yield Servers(a, b, first.engine, clock, tokens)
    finally:
        first.engine.dispose()
        second.engine.dispose()


def _sign_in(client: TestClient, email: str, password: str) -> httpx.Response:
    client.cookies.clear()  # a fresh browser each time
    client.get("/login")
    token = client.cookies.get("ltfu_login_csrf")
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


def _signed_in(response: httpx.Response) -> bool:
    return response.status_code == 303 and "ltfu_session" in response.cookies


def _actions(engine: Engine) -> list[tuple[str, str, str | None]]:
    with read_session(engine) as session:
        rows = session.execute(
            select(AuditEntry.action, AuditEntry.actor, AuditEntry.new_values).order_by(
                AuditEntry.id  # type: ignore[arg-type]
            )
        ).all()
    return [(a, b, c) for a, b, c in rows]


def _guess(servers: Servers, email: str, times: int) -> None:
    """Wrong passwords, alternating between the processes, each after the growing wait."""
    for attempt in range(times):
        client = servers.first if attempt % 2 == 0 else servers.second
        response = _sign_in(client, email, f"wrong guess {attempt}")
        assert response.status_code == 200
        assert "Wrong email or password" in response.text
        servers.clock.advance(seconds=10)


class TestPasswords:
    def test_five_failures_lock_the_account_even_for_the_right_password(
        self, servers: Servers
    ) -> None:
        _guess(servers, NURSE, ACCOUNT_LIMIT)
        response = _sign_in(servers.first, NURSE, PASSWORD)
        assert not _signed_in(response)
        assert "Too many failed attempts" in response.text
        servers.clock.advance(seconds=LOCKOUT.total_seconds() - 60)
        assert not _signed_in(_sign_in(servers.second, NURSE, PASSWORD))
        servers.clock.advance(seconds=61)
        assert _signed_in(_sign_in(servers.second, NURSE, PASSWORD))

    def test_an_unknown_email_is_locked_in_the_same_words(self, servers: Servers) -> None:
        _guess(servers, "nobody@rome.example", ACCOUNT_LIMIT)
        unknown = _sign_in(servers.first, "nobody@rome.example", PASSWORD)
        _guess(servers, NURSE, ACCOUNT_LIMIT)
        known = _sign_in(servers.first, NURSE, PASSWORD)
        assert unknown.status_code == known.status_code == 200
        assert "Too many failed attempts" in unknown.text
        assert "Too many failed attempts" in known.text

    def test_each_failure_makes_the_next_attempt_wait_longer(self, servers: Servers) -> None:
        waits = []
        for attempt in range(ACCOUNT_LIMIT):
            moment = NOW + timedelta(minutes=attempt)
            with write_session(servers.engine) as session:
                outcome = auth.sign_in(
                    session,
                    email=NURSE,
                    password=f"wrong {attempt}",
                    client="1",
                    now=moment,
                    limits=DEFAULTS,
                )
                assert isinstance(outcome, Unauthorized)
            with read_session(servers.engine) as session:
                try:
                    throttle.check(session, account=NURSE, client="1", now=moment, limits=DEFAULTS)
                    waits.append(0)
                except TooManyRequests as exc:
                    waits.append(exc.retry_after)
        assert waits[0] == 0
        assert waits[1] < waits[2] < waits[3] < waits[4] == LOCKOUT.total_seconds()

    def test_a_success_clears_the_count(self, servers: Servers) -> None:
        _guess(servers, NURSE, ACCOUNT_LIMIT - 1)
        assert _signed_in(_sign_in(servers.first, NURSE, PASSWORD))
        _guess(servers, NURSE, ACCOUNT_LIMIT - 1)
        assert _signed_in(_sign_in(servers.first, NURSE, PASSWORD))

    def test_one_address_guessing_across_accounts_is_refused(self, servers: Servers) -> None:
        for n in range(CLIENT_LIMIT):
            _guess(servers, f"user{n}@rome.example", 1)
        response = _sign_in(servers.first, NURSE, PASSWORD)
        assert not _signed_in(response)
        assert "Too many failed attempts" in response.text

    def test_sign_ins_failures_and_lockouts_are_audited_without_the_password(
        self, servers: Servers
    ) -> None:
        _guess(servers, NURSE, ACCOUNT_LIMIT)
        servers.clock.advance(seconds=LOCKOUT.total_seconds())
        assert _signed_in(_sign_in(servers.first, NURSE, PASSWORD))
        actions = _actions(servers.engine)
        failed = [a for a in actions if a[0] == "sign_in_failed"]
        assert len(failed) == ACCOUNT_LIMIT
        assert all(
            actor == NURSE and '"client": "testclient"' in (new or "") for _, actor, new in failed
        )
        assert [a[0] for a in actions].count("sign_in_lockout") == 1
        assert actions[-1][:2] == ("sign_in", NURSE)
        assert not any(PASSWORD in str(a) or "wrong guess" in str(a) for a in actions)


class TestTokens:
    def test_repeated_invalid_tokens_from_one_address_get_429(self, servers: Servers) -> None:
        for n in range(CLIENT_LIMIT):
            client = servers.first if n % 2 else servers.second
            response = client.get(
                "/api/v1/patients", headers={"Authorization": f"Bearer ltfu_guess{n}"}
            )
            assert response.status_code == 401
        refused = servers.first.get(
            "/api/v1/patients", headers={"Authorization": f"Bearer {servers.tokens['nurse']}"}
        )
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) == LOCKOUT.total_seconds()
        assert refused.headers["content-type"] == "application/problem+json"
        servers.clock.advance(seconds=LOCKOUT.total_seconds())
        again = servers.second.get(
            "/api/v1/patients", headers={"Authorization": f"Bearer {servers.tokens['nurse']}"}
        )
        assert again.status_code == 200
        actions = [a[0] for a in _actions(servers.engine)]
        assert actions.count("token_refused") == CLIENT_LIMIT
        assert actions.count("token_lockout") == 1

    def test_feed_tokens_are_counted_too(self, servers: Servers) -> None:
        for n in range(CLIENT_LIMIT):
            response = servers.first.get(f"/api/v1/sites/Rome/calendar.ics?token=feed_{n}")
            assert response.status_code == 401
        response = servers.second.get("/api/v1/sites/Rome/calendar.ics?token=feed_x")
        assert response.status_code == 429


class TestSettings:
    def test_the_limits_are_the_installations_settings(
        self, database_url: str, registry: rules.ProtocolRegistry
    ) -> None:
        """Two failures lock an email for five minutes, three an address (both processes
        read the same settings)."""
        chosen = {
            "throttle_account_limit": 2,
            "throttle_client_limit": 3,
            "throttle_lockout_minutes": 5,
            "throttle_window_minutes": 10,
        }
        with serving(database_url, registry, **chosen) as servers:
            _guess(servers, NURSE, 2)
            assert not _signed_in(_sign_in(servers.second, NURSE, PASSWORD))
            servers.clock.advance(minutes=5)
            assert _signed_in(_sign_in(servers.first, NURSE, PASSWORD))
            for n in range(3):  # one failure each: no email locked, the address is
                _guess(servers, f"user{n}@rome.example", 1)
            refused = servers.first.get(
                "/api/v1/patients", headers={"Authorization": f"Bearer {servers.tokens['nurse']}"}
            )
            assert refused.status_code == 429
            assert int(refused.headers["Retry-After"]) == 5 * 60 - 10  # _guess waits 10 s
