"""The registry of alert kinds: every name is declared once, with its templates, and each
email says what it said before the registry (subjects and opening lines pinned here)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from surveillance.alerting.kinds import ALL_KINDS, KINDS, WEBHOOK_EVENTS, kind_of
from surveillance.alerting.messages import TEMPLATES, render_email
from surveillance.records.outbox import Alert, AlertKind

ASSESSMENT = {
    "study_id": "ROM-101",
    "site": "Rome",
    "key": "ROM-101:1:rcl_test:2",
    "assessment": "rcl_test",
    "name": "RCL test <b>" + "x" * 60,
    "due": "2027-01-01",
    "window_start": "2026-12-01",
    "window_end": "2027-02-01",
    "days_overdue": 15,
    "level": 0,
    "as_of": "2027-02-16",
    "patient_url": "https://ltfu.example/patients/ROM-101",
}
CASE = {
    "change": "updated",
    "case": {
        "study_id": "ROM-101",
        "site": "Rome",
        "case_id": "ROM-101-AE01",
        "version": 2,
        "term": "Pneumonia",
        "meddra_code": None,
        "category": "infection",
        "grade": None,
        "seriousness_criteria": ["hospitalisation"],
        "onset_date": "2027-01-01",
        "awareness_date": "2027-01-02",
        "relatedness": "possible",
        "expected": False,
        "outcome": "recovering",
        "source": None,
    },
    "reporting_deadlines": [],
    "case_url": "https://ltfu.example/adverse-events/ROM-101-AE01",
}
DIGEST = {"site": "Rome", "date": "2027-01-01", "opening": [], "this_week": [], "due_list_url": "u"}
PROBLEM = {
    "what": "Webhook endpoint wh_1 was disabled",
    "failed_alert": None,
    "channel": "webhook",
    "recipient": "wh_1",
    "attempts": None,
    "error": None,
}
HEAD = "ab" * 32
ANCHORED = {
    "date": "2027-01-01",
    "checked_at": "2027-01-01T07:00:00+00:00",
    "anchor": {"row_count": 12, "head_id": 40, "head_hash": HEAD, "at": "2026-12-31T18:05Z"},
    "intact": True,
    "problems": 0,
    "first_problem": None,
}
BROKEN = {
    **ANCHORED,
    "intact": False,
    "problems": 2,
    "first_problem": {"row": 40, "kind": "truncated", "detail": "the trail ends ..."},
}
TAIL = " (due 1 Jan 2027, 15 days overdue)"  # dates in the reader's language
# kind, level, event data -> subject, first line of the text, opening of the html (or None).
EMAILS: list[tuple[AlertKind, int, dict[str, Any], str, str, str | None]] = [
    (
        AlertKind.assessment_overdue,
        0,
        ASSESSMENT,
        "[LTFU] Overdue: ROM-101 RCL test …" + TAIL,  # cut at a word, marked
        "An assessment is overdue at Rome.",
        "<p>An assessment is <strong>overdue</strong> at Rome.</p>",
    ),
    (
        AlertKind.assessment_escalated,
        1,
        {**ASSESSMENT, "level": 1},
        "[LTFU] Escalation 1: ROM-101 RCL test …" + TAIL,  # cut at a word, marked
        "An assessment is still not done 15 days after its window closed "
        "(escalation to the site's investigators).",
        "<p>An assessment is <strong>still not done 15 days</strong> after its window closed "
        "(escalation level 1).</p>",
    ),
    (
        AlertKind.assessment_escalated,
        2,
        {**ASSESSMENT, "level": 2},
        "[LTFU] Escalation 2: ROM-101 RCL test …" + TAIL,  # cut at a word, marked
        "An assessment is still not done 15 days after its window closed "
        "(escalation to the sponsor contact).",
        "<p>An assessment is <strong>still not done 15 days</strong> after its window closed "
        "(escalation level 2).</p>",
    ),
    (
        AlertKind.patient_follow_up_at_risk,
        0,
        ASSESSMENT,
        "[LTFU] At risk of loss to follow-up: ROM-101",
        "Patient ROM-101 at Rome has missed two yearly follow-up contacts in a row: "
        "at risk of loss to follow-up.",
        None,
    ),
    (
        AlertKind.adverse_event_serious,
        0,
        CASE,
        "[LTFU] Serious adverse event: ROM-101 Pneumonia (ROM-101-AE01)",
        "A serious adverse event was recorded for patient ROM-101 at Rome.",
        None,
    ),
    (
        AlertKind.adverse_event_unacknowledged,
        0,
        CASE,
        "[LTFU] Not acknowledged: ROM-101 Pneumonia (ROM-101-AE01)",
        "No safety system has acknowledged version 2 of serious case ROM-101-AE01 within the "
        "agreed time. Check the feed consumers (pharmacovigilance) and report by another "
        "route if needed.",
        None,
    ),
    (
        AlertKind.digest,
        0,
        DIGEST,
        "[LTFU] Rome 1 Jan 2027: 0 opening today, 0 due this week",
        "Good morning. Follow-up at Rome on 1 Jan 2027:",
        None,
    ),
    (
        AlertKind.admin_digest,
        0,
        ANCHORED,
        "[LTFU] Audit trail 1 Jan 2027: intact, 12 rows, head abababababab",
        "The audit trail on 1 Jan 2027.",
        None,
    ),
    (
        AlertKind.admin_digest,
        0,
        {**ANCHORED, "anchor": None},
        "[LTFU] Audit trail 1 Jan 2027: no rows yet",
        "The audit trail on 1 Jan 2027.",
        None,
    ),
    (
        AlertKind.admin_digest,
        0,
        BROKEN,
        "[LTFU] Audit trail 1 Jan 2027: 2 problem(s) found",
        "The audit trail on 1 Jan 2027.",
        None,
    ),
    (
        AlertKind.alert_failed,
        0,
        {**PROBLEM, "what": "An alert could not be delivered after 3 attempt(s)."},
        "[LTFU] An alert could not be delivered after 3 attempt(s).",
        "An alert could not be delivered after 3 attempt(s).",
        None,
    ),
    (
        AlertKind.webhook_disabled,
        0,
        PROBLEM,
        "[LTFU] Webhook endpoint wh_1 was disabled",
        "Webhook endpoint wh_1 was disabled",
        None,
    ),
]


def _alert(kind: AlertKind, level: int = 0) -> Alert:
    return Alert(
        id=f"{kind.value}:1:{level}:0:email:admins",
        kind=kind.value,
        level=level,
        channel="email",
        recipient="admins",
        as_of=date(2027, 2, 16),
    )


def test_every_kind_is_declared_once_in_the_order_of_its_name() -> None:
    assert [kind.name for kind in ALL_KINDS] == list(AlertKind)
    assert set(KINDS) == set(AlertKind)


def test_every_emailed_kind_has_its_templates_and_every_template_a_kind() -> None:
    wanted = {f"{k.name.value}.txt" for k in ALL_KINDS if k.email}
    wanted |= {f"{k.name.value}.html" for k in ALL_KINDS if k.email and k.email.html}
    present = {p.name for p in TEMPLATES.iterdir() if not p.name.startswith("_")}
    assert present == wanted  # layouts shared by several kinds start with "_"


def test_the_webhook_event_types_are_the_kinds_with_a_webhook() -> None:
    assert [e.value for e in WEBHOOK_EVENTS] == [
        "assessment.overdue",
        "assessment.escalated",
        "patient.follow_up_at_risk",
        "adverse_event.created",
        "adverse_event.updated",
        "adverse_event.nullified",
        "adverse_event.serious",
    ]
    schemas = [k.webhook.schema for k in ALL_KINDS if k.webhook]
    assert len(set(schemas)) == len(schemas)


def test_every_emailed_kind_has_a_pinned_email_below() -> None:
    assert {kind for kind, *_ in EMAILS} == {k.name for k in ALL_KINDS if k.email}


@pytest.mark.parametrize(
    ("kind", "level", "data", "subject", "opening", "html_opening"),
    EMAILS,
    ids=[f"{kind.value}-{level}" for kind, level, *_ in EMAILS],
)
def test_each_email_says_what_its_kind_declares(
    kind: AlertKind,
    level: int,
    data: dict[str, Any],
    subject: str,
    opening: str,
    html_opening: str | None,
) -> None:
    alert = _alert(kind, level)
    rendered_subject, text, html = render_email(alert, data)
    assert rendered_subject == subject
    assert text.splitlines()[0] == opening
    assert text.rstrip().endswith(alert.id)  # every email carries its alert id
    if html_opening is None:
        assert html is None
    else:
        assert html is not None
        assert html.splitlines()[2] == html_opening
        assert "&lt;b&gt;" in html  # study data is escaped in HTML, not in text


def test_a_kind_without_an_email_cannot_be_rendered_as_one() -> None:
    with pytest.raises(LookupError, match="not sent by email"):
        render_email(_alert(AlertKind.adverse_event_created), CASE)


def test_a_name_never_declared_is_refused() -> None:
    with pytest.raises(ValueError, match=r"assessment\.done"):
        kind_of("assessment.done")


def test_a_long_name_is_cut_at_a_word_in_the_subject_and_whole_in_the_body() -> None:
    name = "Baseline: disease activity, complete blood count with differential, lymphocyte subsets"
    subject, text, _ = render_email(
        _alert(AlertKind.assessment_overdue), {**ASSESSMENT, "name": name}
    )
    shown = subject.split("ROM-101 ", 1)[1].split(" (due", 1)[0]
    assert shown.endswith(" …")
    assert name.startswith(shown.removesuffix(" …"))  # a prefix of whole words
    assert name[len(shown.removesuffix(" …"))] in " ,"
    assert name in text


def test_the_admins_digest_says_what_to_keep_and_what_broke() -> None:
    _, intact, _ = render_email(_alert(AlertKind.admin_digest), ANCHORED)
    assert "Checked at 1 Jan 2027, 07:00 UTC: the chain is intact." in intact
    assert f"surveillance audit verify --expect-head {HEAD} --expect-count 12" in intact
    assert "written 31 Dec 2026, 18:05 UTC" in intact
    _, empty, _ = render_email(_alert(AlertKind.admin_digest), {**ANCHORED, "anchor": None})
    assert "no rows yet: there is no anchor to keep." in empty
    assert "--expect-head" not in empty
    _, broken, _ = render_email(_alert(AlertKind.admin_digest), BROKEN, locale="de")
    assert "2 Problem(e) gefunden. Das erste:" in broken
    assert "Das Protokoll endet vor Eintrag 40" in broken
    assert "(the trail ends ...)" in broken  # the check's own words, for the record
