"""Protocols over HTTP: list, rules with their evidence, and the calendar preview."""

from __future__ import annotations

import json
from typing import Any

import pytest
from support.api_support import AAV, CAR_T, Api
from typer.testing import CliRunner

from surveillance.cli import app as cli


def _cli_preview(*args: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(cli, ["calendar", *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    loaded: list[dict[str, Any]] = json.loads(result.stdout)
    return loaded


class TestProtocols:
    def test_the_list(self, shared_api: Api) -> None:
        response = shared_api.get("/api/v1/protocols", role="pharmacovigilance")
        assert response.status_code == 200
        by_id = {p["id"]: p for p in response.json()}
        assert set(by_id) == {AAV, CAR_T}
        assert by_id[CAR_T]["follow_up"] == "Y15 from the last infusion"
        assert by_id[CAR_T]["assessments"] == 57  # the newest version, 1.1 (1.0 has 44)
        assert by_id[CAR_T]["version"] == "1.1"

    def test_one_protocol_with_schedules_windows_and_evidence(self, shared_api: Api) -> None:
        body = shared_api.get(f"/api/v1/protocols/{CAR_T}", version="1.0").json()
        rules = {rule["id"]: rule for rule in body["rules"]}
        rcl = rules["rcl_test"]
        assert rcl["schedule"] == [
            {"when": "M3", "window": "−14/+14 days"},
            {"when": "M6, M12", "window": "−30/+30 days"},
        ]
        assert rcl["time_points"] == 3
        assert rcl["evidence"]["basis"] == "regulatory"
        assert rcl["evidence"]["sources"] == ["FDA-RCR"]
        assert rcl["on_result"][1] == {
            "when": "negative",
            "every_occurrence": True,
            "start": ["rcl_archive"],
            "stop": ["rcl_yearly_test"],
            "note": "first year negative: later yearly samples archived only",
        }
        assert rules["rcl_yearly_test"]["schedule"][0]["when"] == "every Y1 from Y2 to Y15"
        assert "FDA-RCR" in body["references"]

    def test_each_assessment_says_what_its_result_is(self, shared_api: Api) -> None:
        body = shared_api.get(f"/api/v1/protocols/{CAR_T}", version="1.0").json()
        rules = {rule["id"]: rule for rule in body["rules"]}
        rcl = rules["rcl_test"]["result"]
        assert rcl["type"] == "coded"
        assert [v["code"] for v in rcl["values"]] == [
            "negative",
            "positive",
            "indeterminate",
            "sample_not_evaluable",
        ]
        igg = rules["immunoglobulins"]["result"]
        assert (igg["type"], igg["unit"], igg["accepts"], igg["max"]) == (
            "quantity",
            "mg/dL",
            ["mg/dL", "g/L"],
            5000,
        )
        assert rules["tanner_staging"]["result"]["values"][-1] == {"code": "5", "label": "5"}
        assert rules["ltfu_exam"]["result"] is None  # a free-text remark
        schema = shared_api.get("/openapi.json").json()["components"]["schemas"]
        assert "ResultTypePublic" in schema

    @pytest.mark.parametrize(
        "path", ["/api/v1/protocols/no-such", f"/api/v1/protocols/{CAR_T}?version=9.9"]
    )
    def test_an_unknown_protocol_or_version_is_404(self, shared_api: Api, path: str) -> None:
        response = shared_api.client.get(path, headers=shared_api.headers("nurse"))
        assert response.status_code == 404
        assert "unknown protocol" in response.json()["detail"]


class TestPreview:
    @pytest.mark.parametrize(
        ("params", "args"),
        [
            ({"infusion": "2024-01-31"}, []),
            (
                {"infusion": "2025-03-31", "birth": "2016-02-29", "diagnosis": "jdm", "sex": "M"},
                ["--birth", "2016-02-29", "--diagnosis", "jdm", "--sex", "M"],
            ),
        ],
    )
    def test_equal_to_the_command_line(
        self, shared_api: Api, params: dict[str, str], args: list[str]
    ) -> None:
        response = shared_api.get(f"/api/v1/protocols/{CAR_T}/calendar", **params)
        assert response.status_code == 200
        expected = _cli_preview("--protocol", CAR_T, "--infusion", params["infusion"], *args)
        assert response.json() == expected
        assert len(expected) > 100

    @pytest.mark.parametrize(
        ("params", "says"),
        [
            ({"infusion": "2024-01-31", "birth": "2025-01-01"}, "before birth"),
            ({"infusion": "2024-01-31", "diagnosis": "flu"}, "diagnosis 'flu' is not covered"),
            ({"infusion": "2024-02-30"}, "infusion"),
            ({}, "infusion"),
            ({"infusion": "2024-01-31", "sex": "X"}, "sex"),
        ],
    )
    def test_impossible_facts_are_422(
        self, shared_api: Api, params: dict[str, str], says: str
    ) -> None:
        response = shared_api.get(f"/api/v1/protocols/{AAV}/calendar", **params)
        assert response.status_code == 422
        assert says in response.json()["detail"]

    def test_an_unknown_protocol_is_404(self, shared_api: Api) -> None:
        response = shared_api.get("/api/v1/protocols/no-such/calendar", infusion="2024-01-31")
        assert response.status_code == 404
