"""GET /api/v1/sites/{site}/results-to-review: results stored as free text before results
were typed that match no declared value, until a correction gives each a typed value."""

from __future__ import annotations

from urllib.parse import quote

from support.api_support import NOW, Api
from support.legacy import store_free_text

from surveillance.adverse_events.legacy_results import map_stored_results
from surveillance.kit.db import write_session

KEY = "ROM-101:1:rcl_test:2"
PATH = "/api/v1/sites/Rome/results-to-review"


def _flagged(api: Api) -> None:
    """ROM-101's second RCL test stored as 'Positive by qPCR', then the mapping run."""
    api.enroll()
    store_free_text(api.engine, api.registry, NOW, KEY, "Positive by qPCR")
    store_free_text(api.engine, api.registry, NOW, "ROM-101:1:rcl_test:1", "Negative")
    with write_session(api.engine) as session:
        report = map_stored_results(session, registry=api.registry, now=NOW)
    assert (report.mapped, report.flagged_keys) == (1, [KEY])


def test_the_site_list_shows_the_text_as_entered_and_what_is_expected(api: Api) -> None:
    _flagged(api)

    response = api.get(PATH)

    assert response.status_code == 200
    [item] = response.json()
    assert item == {
        "key": KEY,
        "study_id": "ROM-101",
        "assessment": "rcl_test",
        "name": item["name"],
        "performed_on": item["performed_on"],
        "as_entered": "Positive by qPCR",
        "expects": "one of negative, positive, indeterminate, sample_not_evaluable",
        "recorded_by": "test",
        "recorded_at": item["recorded_at"],
        "version": api.version(KEY),
    }
    assert item["name"].startswith("Replication-competent lentivirus (RCL) test")
    assert api.get(PATH, role="investigator").json() == [item]
    assert api.get(PATH, role="admin").json() == [item]
    assert api.get("/api/v1/sites/Erlangen/results-to-review", role="admin").json() == []


def test_a_correction_to_a_typed_value_takes_it_off_the_list(api: Api) -> None:
    _flagged(api)
    [item] = api.get(PATH).json()

    corrected = api.post(
        f"/api/v1/assessments/{quote(KEY)}/corrections",
        {"result": "positive", "reason": "qPCR positive per the lab report"},
        role="investigator",
        if_match=f'"{item["version"]}"',
    )

    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["assessment"]["result"] == "positive"
    assert api.get(PATH).json() == []


def test_who_may_read_the_list(api: Api) -> None:
    _flagged(api)
    assert api.get(PATH, role="pharmacovigilance").status_code == 403
    assert api.get(PATH, role=None).status_code == 401
    # Nurses of Rome do not see Erlangen's list: reported like an unknown site.
    assert api.get("/api/v1/sites/Erlangen/results-to-review").status_code == 404
    assert api.get("/api/v1/sites/Nowhere/results-to-review", role="admin").status_code == 404
