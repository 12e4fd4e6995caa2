"""The pharmacovigilance feed (issue 5 §4): complete and ordered under concurrent writers,
JSON and FHIR R4, pseudonymous, cached with ETags, paced with Retry-After, acknowledged."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from support.api_support import NOW, Api, open_api

import rules
from surveillance.adverse_events.cases import add_follow_up, create_case, nullify_case
from surveillance.adverse_events.facts import CaseFacts
from surveillance.kit.db import write_session
from surveillance.records.adverse_event_vocabulary import (
    CaseOutcome,
    Category,
    GradeScale,
    Relatedness,
    Seriousness,
)

FEED = "/api/v1/feeds/adverse-events"
ACKS = "/api/v1/feeds/adverse-events/acks"
CRS = CaseFacts(
    onset_date=date(2024, 2, 2),
    awareness_date=date(2024, 2, 2),
    term="Cytokine release syndrome",
    category=Category.crs,
    grade=2,
    grade_scale=GradeScale.astct,
    serious=False,
    relatedness=Relatedness.related,
    expected=True,
    outcome=CaseOutcome.recovered,
)
SERIOUS = CaseFacts(
    **{
        **CRS.__dict__,
        "term": "Sepsis",
        "category": Category.infection,
        "grade": 4,
        "grade_scale": GradeScale.ctcae_v5,
        "serious": True,
        "seriousness_criteria": (Seriousness.life_threatening, Seriousness.hospitalization),
        "relatedness": Relatedness.possibly_related,
        "expected": False,
        "outcome": CaseOutcome.recovering,
        "meddra_code": "10040047",
        "meddra_version": "27.1",
    }
)


@pytest.fixture
def feed_api(database_url: str, registry: rules.ProtocolRegistry) -> Iterator[Api]:
    """The app with no minimum poll interval (the pacing has its own test)."""
    with open_api(database_url, registry, feed_min_poll_seconds=0) as opened:
        yield opened


def write(api: Api, study_id: str, facts: CaseFacts = CRS) -> str:
    with write_session(api.engine) as session:
        change = create_case(
            session, study_id=study_id, facts=facts, actor="t", registry=api.registry, now=NOW
        )
        return change.case.case_id


def pull(api: Api, cursor: str | None = None, limit: int = 100) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
    response = api.get(FEED, role="pharmacovigilance", **params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def test_every_change_is_an_entry_in_commit_order(feed_api: Api) -> None:
    api = feed_api
    api.enroll()
    case_id = write(api, "ROM-101", SERIOUS)
    with write_session(api.engine) as session:
        add_follow_up(session, case_id=case_id, facts=CRS, actor="t", registry=api.registry,
                      now=NOW, expected_version=1)  # fmt: skip
        nullify_case(session, case_id=case_id, reason="duplicate", actor="t",
                     registry=api.registry, now=NOW, expected_version=2)  # fmt: skip
    page = pull(api)
    assert [(e["sequence"], e["case_id"], e["version"], e["change"]) for e in page["entries"]] == [
        (1, case_id, 1, "created"),
        (2, case_id, 2, "updated"),
        (3, case_id, 3, "nullified"),
    ]
    assert page["next_cursor"] == "3"
    assert page["entries"][2]["case"]["status"] == "nullified"
    assert page["entries"][2]["case"]["nullify_reason"] == "duplicate"
    assert page["entries"][0]["case"]["grade"] == 4  # each entry is its version as written
    assert pull(api, "3")["entries"] == []
    assert pull(api, "3")["next_cursor"] == "3"  # kept: poll again from there
    two = pull(api, limit=2)
    assert [e["sequence"] for e in two["entries"]] == [1, 2]
    assert [e["sequence"] for e in pull(api, two["next_cursor"])["entries"]] == [3]


def test_pseudonymous_only(feed_api: Api) -> None:
    api = feed_api
    api.enroll()
    write(api, "ROM-101", SERIOUS)
    response = api.get(FEED, role="pharmacovigilance")
    case = response.json()["entries"][0]["case"]
    assert case["study_id"] == "ROM-101"
    assert case["age_at_onset_years"] == 9
    assert case["sex"] == "F"
    assert "birth_date" not in response.text
    assert "2014-03-01" not in response.text  # the birth date, in no form
    fhir = api.client.get(FEED, params={"format": "fhir"}, headers=api.headers("pharmacovigilance"))
    assert "2014-03-01" not in fhir.text
    assert '"birthDate"' not in fhir.text


def test_fhir_bundle_validates_by_accept_header_and_by_format(feed_api: Api) -> None:
    api = feed_api
    api.enroll()
    api.enroll(study_id="ROM-102")
    write(api, "ROM-101", SERIOUS)
    write(api, "ROM-102", CRS)
    write(api, "ROM-101", CRS)
    headers = {**api.headers("pharmacovigilance"), "Accept": "application/fhir+json"}
    by_accept = api.client.get(FEED, params={"limit": 2}, headers=headers)
    assert by_accept.status_code == 200
    assert by_accept.headers["content-type"].startswith("application/fhir+json")
    bundle = Bundle.model_validate(by_accept.json())
    assert bundle.type == "history"
    assert len(bundle.entry) == 2
    links = {link.relation: link.url for link in bundle.link}
    assert "cursor=2" in links["next"]
    first = bundle.entry[-1].resource  # the oldest of the page: R4 lists a history newest first
    assert first.__resource_type__ == "AdverseEvent"
    assert first.subject.identifier.value == "ROM-101"
    codings = {(c.system, c.code) for c in first.event.coding}
    assert ("https://www.meddra.org", "10040047") in codings
    assert first.seriousness.coding[0].code == "Serious"
    by_format = api.client.get(
        FEED, params={"format": "fhir", "cursor": "2"}, headers=api.headers("pharmacovigilance")
    )
    rest = Bundle.model_validate(by_format.json())
    assert [e.resource.subject.identifier.value for e in rest.entry] == ["ROM-101"]
    assert not [link for link in rest.link if link.relation == "next"]  # caught up


def test_pages_carry_etags_and_a_caught_up_consumer_is_told_when_to_return(
    feed_api: Api,
) -> None:
    api = feed_api
    api.enroll()
    write(api, "ROM-101")
    first = api.get(FEED, role="pharmacovigilance")
    tag = first.headers["ETag"]
    assert first.headers["Retry-After"] == "30"  # caught up
    again = api.client.get(FEED, headers={**api.headers("pharmacovigilance"), "If-None-Match": tag})
    assert again.status_code == 304
    assert again.content == b""
    write(api, "ROM-101")  # a new entry changes the page
    changed = api.client.get(
        FEED, headers={**api.headers("pharmacovigilance"), "If-None-Match": tag}
    )
    assert changed.status_code == 200
    assert changed.headers["ETag"] != tag
    assert len(changed.json()["entries"]) == 2
    full = api.get(FEED, role="pharmacovigilance", limit=1)
    assert "Retry-After" not in full.headers  # more to read: no waiting


def test_polling_the_caught_up_end_too_often_is_429(
    database_url: str, registry: rules.ProtocolRegistry
) -> None:
    with open_api(database_url, registry, feed_min_poll_seconds=5) as api:
        assert api.get(FEED, role="pharmacovigilance").status_code == 200
        too_soon = api.get(FEED, role="pharmacovigilance")
        assert too_soon.status_code == 429
        assert 1 <= int(too_soon.headers["Retry-After"]) <= 5
        assert too_soon.headers["content-type"] == "application/problem+json"
        assert api.get(FEED, role="admin").status_code == 200  # another consumer
        assert api.get(FEED, role="pharmacovigilance", cursor="7").status_code == 200


def test_a_bad_cursor_is_a_clear_422(feed_api: Api) -> None:
    response = feed_api.get(FEED, role="pharmacovigilance", cursor="abc")
    assert response.status_code == 422
    assert "not a cursor" in response.json()["detail"]


def test_acknowledgements(feed_api: Api) -> None:
    api = feed_api
    api.enroll()
    case_id = write(api, "ROM-101", SERIOUS)
    accepted = api.post(ACKS, {"case_id": case_id, "version": 1, "status": "AA"},
                        role="pharmacovigilance")  # fmt: skip
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["consumer"] == "pv@sponsor.example"
    rejected = api.post(ACKS, {"case_id": case_id, "version": 1, "status": "AR"},
                        role="pharmacovigilance")  # fmt: skip
    assert rejected.status_code == 422
    assert "needs a message" in rejected.json()["detail"]
    unknown = api.post(ACKS, {"case_id": case_id, "version": 9, "status": "AA"},
                       role="pharmacovigilance")  # fmt: skip
    assert unknown.status_code == 404
    bad = api.post(ACKS, {"case_id": case_id, "version": 1, "status": "OK"},
                   role="pharmacovigilance")  # fmt: skip
    assert bad.status_code == 422


def test_a_consumer_paging_during_concurrent_writes_sees_every_entry_once_in_order(
    feed_api: Api,
) -> None:
    """Writers commit late on purpose (they sleep inside their transaction after the
    entry is written; it is numbered at commit), several at once; the consumer pages all
    along. Visibility follows commit order: it never sees a gap, a repeat or an entry out
    of order."""
    api = feed_api
    writers, per_writer = 4, 12
    patients = [api.enroll(study_id=f"ROM-{200 + n}") for n in range(writers)]
    done = threading.Event()
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        rng = random.Random(n)
        try:
            for i in range(per_writer):
                with write_session(api.engine) as session:
                    create_case(session, study_id=patients[n],
                                facts=SERIOUS if i % 3 == 0 else CRS, actor=f"w{n}",
                                registry=api.registry, now=NOW)  # fmt: skip
                    time.sleep(rng.uniform(0, 0.03))  # written, not yet committed
        except BaseException as exc:  # reported below: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    seen: list[tuple[int, str, int]] = []
    cursor: str | None = None
    pages = 0
    while True:
        finished = done.is_set()
        page = pull(api, cursor, limit=5)
        pages += 1
        for entry in page["entries"]:
            expected = seen[-1][0] + 1 if seen else 1
            assert entry["sequence"] == expected, f"gap or disorder at {entry['sequence']}"
            seen.append((entry["sequence"], entry["case_id"], entry["version"]))
        cursor = page["next_cursor"]
        if finished and not page["entries"]:
            break
        if all(not t.is_alive() for t in threads):
            done.set()
        time.sleep(0.002)
    for thread in threads:
        thread.join()
    assert errors == []
    total = writers * per_writer
    assert len(seen) == total
    assert len({(case_id, version) for _, case_id, version in seen}) == total  # no repeats
    assert [s for s, _, _ in seen] == list(range(1, total + 1))
    assert pages > total // 5  # it really paged while the writers wrote


@pytest.mark.parametrize("cursor", ["99999999999999999999", "-1", " 1"])
def test_a_cursor_out_of_range_is_a_clear_422(feed_api: Api, cursor: str) -> None:
    response = feed_api.get(FEED, role="pharmacovigilance", cursor=cursor)
    assert response.status_code == 422, response.text
    assert "not a cursor" in response.json()["detail"]


def test_an_acknowledgement_of_an_impossible_version_is_a_clear_error(feed_api: Api) -> None:
    response = feed_api.post(ACKS, {"case_id": "X-AE01", "version": 10**12, "status": "AA"},
                             role="pharmacovigilance")  # fmt: skip
    assert response.status_code in (404, 422), response.text
    assert response.headers["content-type"] == "application/problem+json"
