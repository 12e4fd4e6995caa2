"""The API on a real database: two sites, one user and bearer token per role, a client.

``api`` runs each test on a fresh SQLite file and on a fresh PostgreSQL database (the
``database_url`` fixture); ``Api`` helpers enrol patients and mint feed tokens through
the services, so a test reads as the story it checks. The clock is stopped at ``NOW``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

import rules
from surveillance.accounts import auth
from surveillance.config import Settings
from surveillance.http.app import create_app
from surveillance.kit import migrate
from surveillance.kit.db import make_engine, read_session, write_session
from surveillance.main import build_runtime
from surveillance.patients.enrolment import Enrolment, enroll
from surveillance.records import sites
from surveillance.records.queries import find_assessment

# Noon UTC on Wednesday 2026-11-25 (as tests/conftest.py NOW): 13:00 in Rome.
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TODAY = NOW.date()
CAR_T = "cd19-car-t-pediatric-autoimmune"
AAV = "aav-liver-5-year"
ROLES = ("nurse", "investigator", "pharmacovigilance", "admin")
# Who signs in as each role; nurse and investigator work at Rome only.
USERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "nurse": ("nurse@rome.example", ("Rome",)),
    "investigator": ("investigator@rome.example", ("Rome",)),
    "pharmacovigilance": ("pv@sponsor.example", ()),
    "admin": ("admin@registry.example", ()),
}
# ROM-101: a girl with SLE, infused 2024-01-31 under the CAR-T protocol, at Rome.
PATIENT: dict[str, Any] = {
    "study_id": "ROM-101",
    "site_id": "Rome",
    "birth_date": date(2014, 3, 1),
    "sex": "F",
    "diagnosis": "sle",
    "protocol_id": CAR_T,
    "infusion_date": date(2024, 1, 31),
}


@dataclass
class Api:
    """A TestClient on the app plus the database behind it, speaking as any role."""

    client: TestClient
    engine: Engine
    registry: rules.ProtocolRegistry
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, role: str | None, if_match: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        if if_match is not None:
            headers["If-Match"] = if_match
        return headers

    def get(self, path: str, role: str | None = "nurse", **params: Any) -> httpx.Response:
        return self.client.get(path, headers=self.headers(role), params=params)

    def post(
        self,
        path: str,
        body: Mapping[str, Any],
        role: str | None = "nurse",
        if_match: str | None = None,
    ) -> httpx.Response:
        return self.client.post(path, json=dict(body), headers=self.headers(role, if_match))

    def enroll(self, **overrides: Any) -> str:
        """Enrol one patient (defaults: ``PATIENT``) through the service; its study id."""
        enrolment = Enrolment(**{**PATIENT, **overrides})
        with write_session(self.engine) as session:
            enroll(session, [enrolment], registry=self.registry, now=NOW, actor="test")
        return enrolment.study_id

    def version(self, key: str) -> int:
        with read_session(self.engine) as session:
            return find_assessment(session, key)[1].version

    def feed_token(self, role: str, site: str) -> str:
        with write_session(self.engine) as session:
            _, token = auth.create_token(
                session, email=USERS[role][0], actor="test", feed_site=site, now=NOW
            )
        return token

    def revoke(self, token: str) -> None:
        with write_session(self.engine) as session:
            auth.revoke_token(session, prefix=token[:12], actor="test", now=NOW)


def populate(engine: Engine) -> dict[str, str]:
    """Rome, Erlangen, one user per role; returns role -> bearer token."""
    tokens: dict[str, str] = {}
    with write_session(engine) as session:
        sites.add_site(session, site_id="Rome", name="Rome", timezone="Europe/Rome")
        sites.add_site(session, site_id="Erlangen", name="Erlangen", timezone="Europe/Berlin")
        for role, (email, works_at) in USERS.items():
            auth.add_user(session, email=email, role=role, sites=list(works_at), actor="test")
            _, tokens[role] = auth.create_token(session, email=email, actor="test", now=NOW)
    return tokens


@contextmanager
def open_api(database_url: str, registry: rules.ProtocolRegistry, **settings: Any) -> Iterator[Api]:
    """The app on ``database_url`` (migrated), populated, with the clock stopped at NOW."""
    configured = Settings(database_url=database_url, **settings)
    runtime = build_runtime(configured, clock=lambda: NOW, registry=registry)
    app = create_app(runtime)
    try:
        tokens = populate(runtime.engine)
        with TestClient(app) as client:
            yield Api(client, runtime.engine, registry, tokens)
    finally:
        runtime.engine.dispose()


@pytest.fixture
def api(database_url: str, registry: rules.ProtocolRegistry) -> Iterator[Api]:
    with open_api(database_url, registry) as opened:
        yield opened


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def shared_api(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    registry: rules.ProtocolRegistry,
) -> Iterator[Api]:
    """One app and database for a whole module (tests must not depend on each other's rows)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('api') / 'surveillance.db'}"
    else:
        url = request.getfixturevalue("pg").create_database(f"api_{uuid.uuid4().hex[:16]}")
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    with open_api(url, registry) as opened:
        yield opened
