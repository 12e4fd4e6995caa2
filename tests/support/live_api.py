"""The API served for real: uvicorn on a free 127.0.0.1 port in a background thread, on
a SQLite file and on a PostgreSQL database, with one user and bearer token per role, one
enrolled patient (``PATIENT``, ROM-101) and a serious adverse event recorded over HTTP.

``live_api`` is module-scoped: each test module that takes it gets its own server and
database (schemathesis writes whatever it likes; other modules must not see it). Import
it and ``live_api_settings`` into a ``conftest.py`` to use it
(tests/surveillance/http/api/conftest.py does); a module overrides ``live_api_settings``
to serve with other settings.
"""

from __future__ import annotations

import gc
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine
from starlette.types import ASGIApp

import rules
from support.api_support import NOW, PATIENT, populate
from support.peers import free_port
from surveillance.config import Settings
from surveillance.http.app import create_app
from surveillance.kit import migrate
from surveillance.kit.db import write_session
from surveillance.main import build_runtime
from surveillance.patients.enrolment import Enrolment, enroll

# SURVEILLANCE_BASE_URL of the served app: never the address it is reached at, so a URL
# built from the request (its Host, its scheme) instead of the setting shows.
LIVE_BASE_URL = "https://ltfu.example.org"
SERIOUS_CASE: dict[str, Any] = {
    "onset_date": "2026-11-20",
    "awareness_date": "2026-11-21",
    "term": "Pneumonia",
    "category": "infection",
    "grade": 3,
    "grade_scale": "ctcae_v5",
    "serious": True,
    "seriousness_criteria": ["hospitalization"],
    "relatedness": "possibly_related",
    "expected": False,
    "outcome": "recovering",
}


@dataclass(frozen=True)
class LiveApi:
    """Where the server listens, who may call it, and the database behind it."""

    url: str  # http://127.0.0.1:PORT
    database: str  # "sqlite" or "postgres"
    engine: Engine
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, role: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}


@contextmanager
def serving(app: ASGIApp, name: str = "uvicorn-live") -> Iterator[str]:
    """Serve ``app`` on a free 127.0.0.1 port until the block ends; yields its URL.

    The server runs in this test process, whose heap (hundreds of apps built by earlier
    tests) took a full garbage collection seconds: one falling inside a request held every
    thread, and a client's 5 s timeout ran out now and then (a first POST, an
    ``/openapi.json``). What exists now is frozen out of the collector's sight while
    serving, as ``freeze_startup_objects`` does for a real server."""
    gc.collect()
    gc.freeze()
    try:
        with _serving(app, name) as url:
            yield url
    finally:
        gc.unfreeze()


@contextmanager
def _serving(app: ASGIApp, name: str) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        assert thread.is_alive(), "the server stopped"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def database_activity(engine: Engine) -> list[dict[str, Any]]:
    """PostgreSQL's sessions on this database: state, wait and query (nothing on SQLite)."""
    if engine.dialect.name != "postgresql":
        return []
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT pid, state, wait_event_type, wait_event, xact_start, left(query, 200) AS query"
            " FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        ).mappings()
        return [dict(row) for row in rows]


def _no_connection_held(engine: Engine, within: float = 10.0) -> None:
    pool: Any = engine.pool
    deadline = time.monotonic() + within  # a request still finishing gives its own back
    while pool.checkedout() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pool.checkedout() == 0, f"connections never returned to the pool: {pool.status()}"


@pytest.fixture(scope="module")
def live_api_settings() -> dict[str, Any]:
    """Settings of the served app beside its database and base URL (none by default)."""
    return {}


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def live_api(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    registry: rules.ProtocolRegistry,
    live_api_settings: dict[str, Any],
) -> Iterator[LiveApi]:
    """A served app with one user and token per role, ROM-101 and a serious case."""
    if request.param == "sqlite":
        url = f"sqlite:///{Path(tmp_path_factory.mktemp('live')) / 'surveillance.db'}"
    else:
        url = request.getfixturevalue("pg").create_database(f"live_{uuid.uuid4().hex[:16]}")
    settings = Settings(database_url=url, base_url=LIVE_BASE_URL, **live_api_settings)
    runtime = build_runtime(settings, clock=lambda: NOW, registry=registry)
    try:
        migrate.upgrade(runtime.engine)
        tokens = populate(runtime.engine)
        with write_session(runtime.engine) as session:
            enroll(session, [Enrolment(**PATIENT)], registry=registry, now=NOW, actor="test")
        with serving(create_app(runtime), name=f"uvicorn-{request.param}") as base:
            live = LiveApi(base, request.param, runtime.engine, tokens)
            # A serious case: the case lists, the feed and the alerts it raises have rows.
            # A generous timeout: the first request on a loaded CI machine may be slow; if
            # it still times out, say what the database was doing (a lock wait shows).
            try:
                created = httpx.post(
                    f"{base}/api/v1/patients/{PATIENT['study_id']}/adverse-events",
                    json=SERIOUS_CASE,
                    headers=live.headers("nurse"),
                    timeout=60,
                )
            except httpx.TimeoutException as timed_out:
                activity = database_activity(runtime.engine)
                raise AssertionError(
                    f"the first write timed out; database activity: {activity}"
                ) from timed_out
            assert created.status_code == 201, created.text
            yield live
            # Every request gave its connection back: a leaked one waits for the garbage
            # collector, and once the pool is empty the next request stalls (PostgreSQL).
            _no_connection_held(runtime.engine)
    finally:
        runtime.engine.dispose()
