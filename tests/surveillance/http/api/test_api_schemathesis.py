"""schemathesis against a real server (uvicorn on 127.0.0.1), on SQLite and PostgreSQL,
speaking as every role: all checks, a few examples per operation (bounded for CI).

Every example is sent once per role and once without a token; the figures are printed
when each database's run ends (``pytest -s`` shows them)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from support.api_support import ROLES
from support.live_api import LiveApi

from surveillance.accounts import throttle

EXAMPLES = 20
# Schema-valid is not always acceptable: a made-up ETag is well formed and stale (412),
# and rules no schema states (an assessment key's form, an infusion after birth) are 422.
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "412", "422", "429"]
CONFIG = schemathesis.Config.from_dict(
    {"checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED}}}
)


@pytest.fixture(autouse=True, scope="module")
def _no_address_lockout() -> Iterator[None]:
    """The fuzzer sends invalid credentials on purpose, hundreds of times from one address:
    the throttle would answer 429 where its check expects 401 (the throttle has its own
    tests, test_api_throttle.py)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(throttle, "CLIENT_LIMIT", 1_000_000)
        yield


@pytest.fixture(scope="module")
def figures(live_api: LiveApi) -> Iterator[Counter[str]]:
    """Requests per role, server errors and failures on this database, printed at the end."""
    counted: Counter[str] = Counter(server_errors=0, failures=0)
    yield counted
    print(f"\nschemathesis on {live_api.database}: {dict(sorted(counted.items()))}")  # noqa: T201


def test_api_conforms_for_every_role(live_api: LiveApi, figures: Counter[str]) -> None:
    schema = schemathesis.openapi.from_url(f"{live_api.url}/openapi.json", config=CONFIG)
    failures: list[str] = []

    def check(case: Any) -> None:
        for role in (*ROLES, None):
            response = case.call(headers=live_api.headers(role))
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
