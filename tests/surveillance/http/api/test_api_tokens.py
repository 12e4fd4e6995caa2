"""Bearer tokens: the short cache of who a token belongs to, and revocation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.api_support import NOW, USERS, Api, open_api

import rules
from surveillance.accounts import auth
from surveillance.http.cache import TtlCache
from surveillance.kit.db import write_session


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class TestTtlCache:
    def test_an_entry_lives_for_its_seconds(self) -> None:
        clock = FakeClock()
        cache: TtlCache[str, int] = TtlCache(5.0, clock=clock)
        cache.put("a", 1)
        clock.now += 4.9
        assert cache.get("a") == 1
        clock.now += 0.1
        assert cache.get("a") is None

    def test_zero_seconds_keeps_nothing(self) -> None:
        cache: TtlCache[str, int] = TtlCache(0)
        cache.put("a", 1)
        assert cache.get("a") is None

    def test_a_full_cache_starts_over(self) -> None:
        cache: TtlCache[int, int] = TtlCache(5.0, max_entries=2)
        for key in range(3):
            cache.put(key, key)
        assert (cache.get(0), cache.get(1), cache.get(2)) == (None, None, 2)


@pytest.fixture
def uncached(database_url: str, registry: rules.ProtocolRegistry) -> Iterator[Api]:
    """The app with the token cache turned off (SURVEILLANCE_CACHE_SECONDS=0)."""
    with open_api(database_url, registry, cache_seconds=0) as opened:
        yield opened


def _revoke(api: Api, role: str) -> None:
    with write_session(api.engine) as session:
        auth.revoke_token(session, prefix=api.tokens[role][:12], actor="test", now=NOW)


def test_a_revoked_token_is_refused_at_once_without_the_cache(uncached: Api) -> None:
    assert uncached.get("/api/v1/sites").status_code == 200
    _revoke(uncached, "nurse")
    response = uncached.get("/api/v1/sites")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["detail"] == "invalid or revoked token"


def test_a_revoked_token_is_refused_once_its_cache_entry_expires(api: Api) -> None:
    assert api.get("/api/v1/sites").status_code == 200
    _revoke(api, "nurse")
    assert api.get("/api/v1/sites").status_code == 200  # remembered for cache_seconds
    api.client.app.state.surveillance.principals.clear()  # type: ignore[attr-defined]
    assert api.get("/api/v1/sites").status_code == 401


def test_a_token_never_seen_is_checked_even_when_others_are_cached(api: Api) -> None:
    assert api.get("/api/v1/sites", role="nurse").status_code == 200
    _revoke(api, "investigator")
    assert api.get("/api/v1/sites", role="investigator").status_code == 401


@pytest.mark.parametrize(
    "header", ["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "bearer nope", "Token abc"]
)
def test_malformed_or_unknown_credentials_are_401(api: Api, header: str) -> None:
    response = api.client.get("/api/v1/sites", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


def test_a_disabled_user_is_refused(uncached: Api) -> None:
    with write_session(uncached.engine) as session:
        user = auth.get_user(session, USERS["nurse"][0])
        user.active = False
        session.add(user)
    response = uncached.get("/api/v1/sites")
    assert response.status_code == 401
    assert "disabled" in response.json()["detail"]
