"""schemathesis against a real server (uvicorn on 127.0.0.1), on SQLite and PostgreSQL,
speaking as every role: all checks, a few examples per operation (bounded for CI).

Every example is sent once per role and once without a token; the figures are printed
when each database's run ends (``pytest -s`` shows them)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from support.api_support import ROLES
from support.live_api import LiveApi, database_activity

EXAMPLES = 20
# Schema-valid is not always acceptable: a made-up ETag is well formed and stale (412),
# and rules no schema states (an assessment key's form, an infusion after birth) are 422.
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "412", "422", "429"]
CONFIG = schemathesis.Config.from_dict(
    {"checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED}}}
)


@pytest.fixture(scope="module")
def live_api_settings() -> dict[str, Any]:
    """The fuzzer sends invalid credentials on purpose, hundreds of times from one address:
    the throttle would answer 429 where its check expects 401 (the throttle has its own
    tests, test_api_throttle.py). The highest address limit the settings accept."""
    return {"throttle_client_limit": 10_000}


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
            try:
                response = case.call(headers=live_api.headers(role))
            except requests.Timeout as stalled:  # say what the database was doing then
                activity = database_activity(live_api.engine)
                raise AssertionError(
                    f"{case.method} {case.path} as {role}: no answer; database: {activity}"
                ) from stalled
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


# Values schemathesis rarely draws: the ends of the calendar, more than any column holds,
# and text no URL parameter may carry (issue 16: each of these was a 500 somewhere).
EXTREMES: dict[str, list[str]] = {
    "date": ["0001-01-01", "1899-12-31", "9999-12-31"],
    "integer": ["-1", str(2**31), str(2**63), "9" * 30],
    "string": ["\x00", "a\r\nb", "\u202e", "9" * 5000],
}


# Path parameters named after something the live server holds (support/live_api.py).
NAMED = {"site": "Rome", "study_id": "ROM-101", "protocol_id": "cd19-car-t-pediatric-autoimmune"}


def _kind(schema: dict[str, Any]) -> str | None:
    for option in [schema, *schema.get("anyOf", [])]:
        if option.get("format") == "date":
            return "date"
        if option.get("type") in ("integer", "string"):
            return str(option["type"])
    return None


def test_extreme_dates_integers_and_text_in_every_parameter(live_api: LiveApi) -> None:
    """Each path and query parameter of every GET, set in turn to each extreme value (the
    others left at a plausible value): never a server error."""
    document = httpx.get(f"{live_api.url}/openapi.json").json()
    plausible = {"date": "2026-11-25", "integer": "1", "string": "ROM-101"}
    errors: list[str] = []
    with httpx.Client(base_url=live_api.url, timeout=30) as client:
        for template, methods in document["paths"].items():
            operation = methods.get("get")
            if operation is None:
                continue
            parameters = [
                (p["name"], p["in"], _kind(p.get("schema", {})))
                for p in operation.get("parameters", [])
                if p["in"] in ("path", "query")
            ]
            for name, _where, kind in parameters:
                for value in EXTREMES.get(kind or "", []):
                    path, query = template, {}
                    for other, other_where, other_kind in parameters:
                        chosen = (
                            value
                            if other == name
                            else NAMED.get(other) or plausible.get(other_kind or "", "x")
                        )
                        if other_where == "path":
                            path = path.replace("{" + other + "}", quote(chosen, safe=""))
                        elif other == name or other in ("infusion",):
                            query[other] = chosen
                    try:
                        response = client.get(path, params=query, headers=live_api.headers("admin"))
                    except httpx.TransportError as exc:
                        errors.append(f"GET {path} {query!r}: {exc!r}"[:300])
                        continue
                    if response.status_code >= 500:
                        errors.append(f"GET {path} {query!r}: {response.status_code}"[:300])
    assert not errors, "\n".join(errors[:20])
