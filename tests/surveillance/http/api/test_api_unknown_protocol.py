"""One error for an unknown protocol, two meanings on the API: a protocol named by the path
is a missing resource (404, ``notfound``); one named in a body is a wrong input (422,
``invalidinput``), as before there was one error."""

from __future__ import annotations

import pytest
from support.api_support import CAR_T, PATIENT, Api

from surveillance.http.problems import PROBLEM_TYPE_BASE


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/protocols/no-such", {}),
        (f"/api/v1/protocols/{CAR_T}", {"version": "9.9"}),
        ("/api/v1/protocols/no-such/calendar", {"infusion": "2024-01-31"}),
    ],
)
def test_named_by_the_path_it_is_not_found(
    shared_api: Api, path: str, params: dict[str, str]
) -> None:
    problem = shared_api.get(path, **params).json()
    assert (problem["status"], problem["type"]) == (404, PROBLEM_TYPE_BASE + "notfound")
    assert problem["detail"].startswith("unknown protocol")


def test_named_in_a_body_it_is_invalid_input(shared_api: Api) -> None:
    body = {
        **{k: str(v) for k, v in PATIENT.items() if k not in ("site_id", "protocol_id")},
        "site": "Rome",
        "protocol": "no-such",
    }
    problem = shared_api.post("/api/v1/patients", body).json()
    assert (problem["status"], problem["type"]) == (422, PROBLEM_TYPE_BASE + "invalidinput")
    assert problem["detail"].startswith("unknown protocol 'no-such'")
