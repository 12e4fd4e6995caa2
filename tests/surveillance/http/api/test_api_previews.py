"""Previews over HTTP: what recording or correcting a result would start, stop and open,
with the same body, roles and refusals as the save; the save then says the same."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import SQLModel
from support.api_support import Api

from surveillance.kit.audit import AuditEntry
from surveillance.kit.db import read_session
from surveillance.records.adverse_events import AdverseEventCase, AdverseEventVersion
from surveillance.records.outbox import Alert
from surveillance.records.patients import Assessment, OutcomeRecord

# ROM-101, infused 2024-01-31: the first RCL test is due 2024-04-30.
KEY = "ROM-101:1:rcl_test:1"
OUTCOME = f"/api/v1/assessments/{KEY}/outcome"
CORRECTIONS = f"/api/v1/assessments/{KEY}/corrections"
POSITIVE = {"outcome": "completed", "date": "2024-04-30", "result": "positive"}
TABLES: tuple[type[SQLModel], ...] = (
    Assessment,
    OutcomeRecord,
    AuditEntry,
    Alert,
    AdverseEventCase,
    AdverseEventVersion,
)


@pytest.fixture
def patient(api: Api) -> str:
    return api.enroll()


def _stored(api: Api) -> dict[str, list[Any]]:
    """Every row a save could write or change."""
    with read_session(api.engine) as session:
        return {
            model.__name__: [
                row.model_dump()
                for row in session.execute(select(model)).scalars()  # type: ignore[call-overload]
            ]
            for model in TABLES
        }


def _rules(items: list[dict[str, Any]]) -> set[str]:
    return {item["assessment"] for item in items}


def test_a_positive_rcl_preview_says_what_it_starts_and_opens_and_saves_nothing(
    api: Api, patient: str
) -> None:
    before = _stored(api)
    response = api.post(f"{OUTCOME}/preview", POSITIVE)
    assert response.status_code == 200, response.text
    effects = response.json()
    assert _stored(api) == before
    assert {"rcl_confirm", "rcl_intensified", "rcl_positive_report"} <= _rules(effects["starts"])
    assert effects["safety_case"]["serious"] is True
    assert effects["safety_case"]["term"] == "Replication-competent lentivirus (RCL) detected"
    assert effects["safety_case"]["deadlines"][0]["due"] == "2024-04-30"
    assert effects["summary"].startswith("positive: starts RCL confirmation by culture assay")
    assert "opens a serious safety case" in effects["summary"]


def test_the_save_answers_with_the_effects_its_preview_announced(api: Api, patient: str) -> None:
    previewed = api.post(f"{OUTCOME}/preview", POSITIVE, if_match='"1"').json()
    saved = api.post(OUTCOME, POSITIVE, if_match='"1"')
    assert saved.status_code == 200
    assert saved.json()["effects"] == previewed
    assert set(saved.json()) == {"assessment", "change", "effects"}  # the rest unchanged


def test_a_negative_rcl_preview(api: Api, patient: str) -> None:
    response = api.post(f"{OUTCOME}/preview", {**POSITIVE, "result": "negative"})
    assert response.status_code == 200
    effects = response.json()
    assert (effects["starts"], effects["stops"], effects["safety_case"]) == ([], [], None)
    assert effects["summary"] == "negative: nothing else changes in the calendar"


def test_a_not_done_preview(api: Api, patient: str) -> None:
    body = {"outcome": "not_done", "date": "2024-04-30", "reason": "sample lost"}
    response = api.post(f"{OUTCOME}/preview", body)
    assert response.status_code == 200
    assert response.json()["outcome"] == "not_done"
    assert response.json()["summary"].startswith("not done: ")
    refused = api.post(f"{OUTCOME}/preview", {"outcome": "not_done", "date": "2024-04-30"})
    assert refused.status_code == 422  # as the save: not done needs a reason
    assert "reason" in refused.json()["detail"]


def test_an_invalid_code_is_the_same_422_as_the_save_and_nothing_is_written(
    api: Api, patient: str
) -> None:
    before = _stored(api)
    body = {**POSITIVE, "result": "Positive by qPCR"}
    previewed = api.post(f"{OUTCOME}/preview", body)
    assert previewed.status_code == 422
    assert previewed.headers["content-type"] == "application/problem+json"
    assert (
        "is not one of the coded values: negative (Negative), positive (Positive), "
        "indeterminate (Indeterminate), sample_not_evaluable (Sample not evaluable)"
    ) in previewed.json()["detail"]
    assert _stored(api) == before
    saved = api.post(OUTCOME, body, if_match='"1"')
    assert (saved.status_code, saved.json()["detail"]) == (422, previewed.json()["detail"])


def test_a_correction_preview_positive_to_negative_lists_the_cancellations(
    api: Api, patient: str
) -> None:
    assert api.post(OUTCOME, POSITIVE, if_match='"1"').status_code == 200
    before = _stored(api)
    body = {"result": "negative", "reason": "transcription error"}
    response = api.post(f"{CORRECTIONS}/preview", body, if_match='"2"')
    assert response.status_code == 200, response.text
    effects = response.json()
    assert _stored(api) == before
    assert effects["corrected"] is True
    assert {"rcl_confirm", "rcl_intensified", "rcl_positive_report"} <= _rules(effects["stops"])
    assert effects["summary"].startswith("corrected to negative: stops ")
    saved = api.post(CORRECTIONS, body, if_match='"2"')
    assert saved.json()["effects"] == effects


def test_a_stale_if_match_is_412_and_none_is_accepted(api: Api, patient: str) -> None:
    stale = api.post(f"{OUTCOME}/preview", POSITIVE, if_match='"7"')
    assert stale.status_code == 412
    assert api.post(f"{OUTCOME}/preview", POSITIVE).status_code == 200
    assert api.version(KEY) == 1


@pytest.mark.parametrize("action", ["outcome", "corrections"])
def test_pharmacovigilance_is_refused_as_for_the_save(api: Api, patient: str, action: str) -> None:
    body = POSITIVE if action == "outcome" else {"result": "negative", "reason": "x"}
    path = f"/api/v1/assessments/{KEY}/{action}"
    saved = api.post(path, body, role="pharmacovigilance", if_match='"1"')
    previewed = api.post(f"{path}/preview", body, role="pharmacovigilance", if_match='"1"')
    assert saved.status_code == previewed.status_code == 403
    assert previewed.json()["detail"] == saved.json()["detail"]


def test_the_previews_are_documented_in_openapi(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    for action in ("outcome", "corrections"):
        post = spec["paths"][f"/api/v1/assessments/{{key}}/{action}/preview"]["post"]
        schema = post["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/EffectsPublic"}
    result = spec["components"]["schemas"]["AssessmentChangeResult"]
    assert "effects" in result["properties"]
