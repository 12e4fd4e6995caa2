"""schemathesis against a real server (uvicorn on 127.0.0.1), on SQLite and PostgreSQL,
speaking as every role: all checks, a few examples per operation (bounded for CI).

Every example is sent once per role and once without a token; the figures are printed
when each database's run ends (``pytest -s`` shows them)."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from support.api_support import NOW, PATIENT, ROLES, populate

import rules
from surveillance.config import Settings
from surveillance.http.app import create_app
from surveillance.kit import migrate
from surveillance.kit.db import write_session
from surveillance.main import build_runtime
from surveillance.patients.enrolment import Enrolment, enroll

EXAMPLES = 20
# Schema-valid is not always acceptable: a made-up ETag is well formed and stale (412),
# and rules no schema states (an assessment key's form, an infusion after birth) are 422.
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "412", "422", "429"]
CONFIG = schemathesis.Config.from_dict(
    {"checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED}}}
)
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
FIGURES: dict[str, Counter[str]] = {}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def live(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    registry: rules.ProtocolRegistry,
) -> Iterator[dict[str, Any]]:
    """A served app with one user and token per role and one enrolled patient."""
    if request.param == "sqlite":
        url = f"sqlite:///{Path(tmp_path_factory.mktemp('st')) / 'surveillance.db'}"
    else:
        url = request.getfixturevalue("pg").create_database(f"st_{uuid.uuid4().hex[:16]}")
    runtime = build_runtime(Settings(database_url=url), clock=lambda: NOW, registry=registry)
    migrate.upgrade(runtime.engine)
    tokens = populate(runtime.engine)
    with write_session(runtime.engine) as session:
        enroll(session, [Enrolment(**PATIENT)], registry=registry, now=NOW, actor="test")
    port = _free_port()
    config = uvicorn.Config(
        create_app(runtime), host="127.0.0.1", port=port, log_level="critical", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-schemathesis", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        assert thread.is_alive(), "the server stopped"
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    # A serious case: the case lists, the feed and the alerts it raises have rows to send.
    created = httpx.post(
        f"{base}/api/v1/patients/{PATIENT['study_id']}/adverse-events",
        json=SERIOUS_CASE,
        headers={"Authorization": f"Bearer {tokens['nurse']}"},
    )
    assert created.status_code == 201, created.text
    figures = FIGURES.setdefault(request.param, Counter(server_errors=0, failures=0))
    try:
        yield {"url": base, "tokens": tokens, "figures": figures}
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        runtime.engine.dispose()
        print(f"\nschemathesis on {request.param}: {dict(sorted(figures.items()))}")  # noqa: T201


def test_api_conforms_for_every_role(live: dict[str, Any]) -> None:
    figures: Counter[str] = live["figures"]
    schema = schemathesis.openapi.from_url(f"{live['url']}/openapi.json", config=CONFIG)
    failures: list[str] = []

    def check(case: Any) -> None:
        for role in (*ROLES, None):
            headers = {"Authorization": f"Bearer {live['tokens'][role]}"} if role else {}
            response = case.call(headers=headers)
            figures[f"requests:{role or 'anonymous'}"] += 1
            if response.status_code >= 500:
                figures["server_errors"] += 1
            try:
                case.validate_response(response)
            except Exception as error:
                figures["failures"] += 1
                failures.append(f"{case.method} {case.path} as {role}: {error}"[:2000])

    for result in schema.get_all_operations():
        operation = result.ok()
        run = settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )(given(case=operation.as_strategy())(check))
        run()
    assert not failures, "\n\n".join(failures[:10])
