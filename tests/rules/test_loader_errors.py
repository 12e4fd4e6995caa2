"""Malformed protocol files: each is refused with a ``ProtocolError`` naming the file,
the assessment, the field and the reason, never with a traceback from inside.

Each test changes one thing in the minimal valid protocol of ``conftest.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from support.protocols import declared_result

from rules import Protocol, ProtocolError, ProtocolRegistry, load_protocol, parse_protocol

ProtocolText = Callable[..., str]
WriteProtocol = Callable[..., Path]

# An assessment started by the result of 'visit' (used to build branches).
RECHECK = """
- id: recheck
  name: Recheck
  category: core
  anchor: trigger
  starts: when_started
  schedule:
    - at: [D14]
  window: [-14, 7]
  evidence:
    basis: local-default
    sources: [REF-2]
"""


def on_result(branch: str) -> dict[str, str]:
    """A replacement giving 'visit' one result branch (YAML flow text, e.g. '{...}')."""
    return {
        "    window: [-7, 7]\n": f"    window: [-7, 7]\n{declared_result(branch)}"
        f"    on_result:\n      - {branch}\n"
    }


def refused(write_protocol: WriteProtocol, text: str) -> tuple[ProtocolError, str]:
    path = write_protocol(text)
    with pytest.raises(ProtocolError) as caught:
        load_protocol(path)
    return caught.value, str(path)


def check(
    error: ProtocolError,
    path: str,
    *,
    assessment: str | None,
    field: str | None,
    reason: str,
) -> None:
    """The message is '<file>, assessment '<a>', field '<f>': <reason ...>'."""
    where = [path]
    if assessment is not None:
        where.append(f"assessment '{assessment}'")
    if field is not None:
        where.append(f"field '{field}'")
    prefix = ", ".join(where) + ": "
    message = str(error)
    assert message.startswith(prefix), message
    assert reason in message.removeprefix(prefix), message
    assert (error.source, error.assessment, error.field) == (path, assessment, field)


def test_the_minimal_protocol_is_valid(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    protocol = load_protocol(
        write_protocol(
            protocol_text(
                RECHECK, replace=on_result("{when: {equals: positive}, start: [recheck]}")
            )
        )
    )
    assert isinstance(protocol, Protocol)
    assert list(protocol.rules) == ["visit", "recheck"]
    assert protocol.source.endswith("protocol.yaml")


# -- unknown and missing keys -------------------------------------------------------------


def test_unknown_key_suggests_the_known_one(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    text = protocol_text(replace={"    window: [-7, 7]": "    windw: [-7, 7]"})
    error, path = refused(write_protocol, text)
    assert str(error) == (
        f"{path}, assessment 'visit', field 'windw': unknown key 'windw' (did you mean 'window'?)"
    )


@pytest.mark.parametrize(
    ("replace", "assessment", "field", "reason"),
    [
        (
            {"      - at: [M1, M6]": "      - at: [M1, M6]\n        windw: [-3, 3]"},
            "visit",
            "schedule[0].windw",
            "unknown key 'windw' (did you mean 'window'?)",
        ),
        (
            {"      basis: guideline": "      basis: guideline\n      sorces: [REF-1]"},
            "visit",
            "evidence.sorces",
            "unknown key 'sorces' (did you mean 'sources'?)",
        ),
        (
            {"id: test-protocol": "id: test-protocol\ndescripton: typo"},
            None,
            "descripton",
            "unknown key 'descripton' (did you mean 'description'?)",
        ),
        (
            {"  duration: Y2": "  duration: Y2\n  anchr: last_infusion"},
            None,
            "follow_up.anchr",
            "unknown key 'anchr' (did you mean 'anchor'?)",
        ),
        (
            {"    description: Death\n": "    description: Death\n    end_followup: true\n"},
            None,
            "events.death.end_followup",
            "unknown key 'end_followup' (did you mean 'end_follow_up'?)",
        ),
        (
            {"    title: Reference one": "    title: Reference one\n    ulr: https://x"},
            None,
            "references.REF-1.ulr",
            "unknown key 'ulr' (did you mean 'url'?)",
        ),
        (
            {"    category: core": "    category: core\n    zzz: 1"},
            "visit",
            "zzz",
            "unknown key 'zzz'",
        ),
    ],
)
def test_unknown_keys_anywhere(
    protocol_text: ProtocolText,
    write_protocol: WriteProtocol,
    replace: dict[str, str],
    assessment: str | None,
    field: str,
    reason: str,
) -> None:
    error, path = refused(write_protocol, protocol_text(replace=replace))
    check(error, path, assessment=assessment, field=field, reason=reason)


def test_unknown_key_without_a_close_match_suggests_nothing(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    error, _ = refused(
        write_protocol,
        protocol_text(replace={"    category: core": "    zzz: 1\n    category: core"}),
    )
    assert "did you mean" not in str(error)


@pytest.mark.parametrize(
    ("replace", "assessment", "field"),
    [
        ({"    category: core\n": ""}, "visit", "category"),
        ({"    name: Visit\n": ""}, "visit", "name"),
        ({"      basis: guideline\n": ""}, "visit", "evidence.basis"),
        ({"title: Test protocol\n": ""}, None, "title"),
        ({"  duration: Y2\n": ""}, None, "follow_up.duration"),
    ],
)
def test_missing_required_field(
    protocol_text: ProtocolText,
    write_protocol: WriteProtocol,
    replace: dict[str, str],
    assessment: str | None,
    field: str,
) -> None:
    error, path = refused(write_protocol, protocol_text(replace=replace))
    check(error, path, assessment=assessment, field=field, reason="required field is missing")


def test_an_assessment_without_an_id_is_named_by_its_position(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    text = protocol_text(RECHECK.replace("- id: recheck\n  name", "- name"))
    error, path = refused(write_protocol, text)
    check(error, path, assessment="#2", field="id", reason="required field is missing")


# -- bad values ---------------------------------------------------------------------------


def test_bad_offset(protocol_text: ProtocolText, write_protocol: WriteProtocol) -> None:
    error, path = refused(
        write_protocol, protocol_text(replace={"- at: [M1, M6]": "- at: [M1, M-x]"})
    )
    check(
        error,
        path,
        assessment="visit",
        field="schedule[0].at",
        reason="bad offset 'M-x': expected D, W, M or Y followed by a whole number",
    )


@pytest.mark.parametrize(
    ("replace", "assessment", "field", "reason"),
    [
        (
            {"  duration: Y2": "  duration: 15 years"},
            None,
            "follow_up.duration",
            "bad offset '15 years'",
        ),
        (
            {"      - at: [M1, M6]": "      - every: M1\n        from: 1\n        to: M6"},
            "visit",
            "schedule[0].from",
            "bad offset '1'",
        ),
        (
            {"      basis: guideline": "      basis: opinion"},
            "visit",
            "evidence.basis",
            "Input should be 'regulatory', 'guideline' or 'local-default' (got 'opinion')",
        ),
        ({"- id: visit": "- id: Visit"}, "Visit", "id", "should match pattern"),
        ({"    category: core": "    category: Core Things"}, "visit", "category", "pattern"),
        (
            {"    window: [-7, 7]": "    window: [-7, 0, 7]"},
            "visit",
            "window",
            "a window is two numbers: [days before (<= 0), days after (>= 0)] (got [-7, 0, 7])",
        ),
        ({'version: "1.0"': "version: one"}, None, "version", "should match pattern"),
        ({"    name: Visit": "    name: ''"}, "visit", "name", "at least 1 character"),
        (
            {"      sources: [REF-1]": "      sources: []"},
            "visit",
            "evidence.sources",
            "at least 1",
        ),
        (
            {"      - at: [M1, M6]": "      - every: D30\n        from: M1\n        to: M6"},
            "visit",
            "schedule[0]",
            "'every', 'from' and 'to' mix days/weeks with months/years",
        ),
        (
            {"      - at: [M1, M6]": "      - at: [M1]\n        every: M1"},
            "visit",
            "schedule[0]",
            "use either 'at' (a list of offsets) or 'every'/'from'/'to', not both",
        ),
        (
            {
                "    window: [-7, 7]\n": "    window: [-7, 7]\n"
                "    applies_to:\n      age_from: 18\n      age_below: 12\n"
            },
            "visit",
            "applies_to",
            "age_from (18) must be below age_below (12)",
        ),
    ],
)
def test_bad_values(
    protocol_text: ProtocolText,
    write_protocol: WriteProtocol,
    replace: dict[str, str],
    assessment: str | None,
    field: str,
    reason: str,
) -> None:
    error, path = refused(write_protocol, protocol_text(replace=replace))
    check(error, path, assessment=assessment, field=field, reason=reason)


# -- windows and time points --------------------------------------------------------------


def test_window_must_contain_the_due_date(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    error, path = refused(
        write_protocol, protocol_text(replace={"window: [-7, 7]": "window: [5, 30]"})
    )
    check(
        error,
        path,
        assessment="visit",
        field="window",
        reason="window [5, 30] does not contain the due date: "
        "write [days before (<= 0), days after (>= 0)]",
    )


def test_window_of_one_schedule_entry_must_contain_the_due_date(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    text = protocol_text(
        replace={"      - at: [M1, M6]": "      - at: [M1, M6]\n        window: [-7, -1]"}
    )
    error, path = refused(write_protocol, text)
    check(
        error,
        path,
        assessment="visit",
        field="schedule[0].window",
        reason="window [-7, -1] does not contain the due date",
    )


def test_a_window_is_required(protocol_text: ProtocolText, write_protocol: WriteProtocol) -> None:
    error, path = refused(write_protocol, protocol_text(replace={"    window: [-7, 7]\n": ""}))
    check(
        error,
        path,
        assessment="visit",
        field="schedule[0]",
        reason="no window: give 'window' on the assessment or on this entry",
    )


@pytest.mark.parametrize(
    ("schedule", "offset"),
    [("- at: [M1, Y3]", "Y3"), ("- at: [M1, M25]", "M25"), ("- at: [D731]", "D731")],
)
def test_time_point_after_the_end_of_follow_up(
    protocol_text: ProtocolText, write_protocol: WriteProtocol, schedule: str, offset: str
) -> None:
    error, path = refused(write_protocol, protocol_text(replace={"- at: [M1, M6]": schedule}))
    check(
        error,
        path,
        assessment="visit",
        field="schedule[0]",
        reason=f"time point {offset} is after the end of follow-up (Y2)",
    )


def test_time_point_on_the_last_day_of_follow_up_is_allowed(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    load_protocol(write_protocol(protocol_text(replace={"- at: [M1, M6]": "- at: [M1, Y2, M24]"})))


@pytest.mark.parametrize(
    ("schedule", "window"),
    [
        ("- at: [D-28]", "[-7, 7]"),  # opens on day -35
        ("- at: [W-4]", "[-3, 3]"),  # opens on day -31
        ("- at: [M-1]", "[0, 7]"),  # opens on day -28 to -31
        # One month after 1 February 2023 is 28 days: the window opens on day -31.
        ("- at: [M1]", "[-59, 0]"),
        ("- at: [Y1]", "[-396, 0]"),  # a year after 2022-03-01 is 365 days: day -31
    ],
)
def test_window_opening_before_the_baseline(
    protocol_text: ProtocolText, write_protocol: WriteProtocol, schedule: str, window: str
) -> None:
    text = protocol_text(
        replace={"- at: [M1, M6]": schedule, "window: [-7, 7]": f"window: {window}"}
    )
    error, path = refused(write_protocol, text)
    check(
        error,
        path,
        assessment="visit",
        field="schedule[0]",
        reason="days before opens its window before the protocol's baseline (D-30)",
    )


@pytest.mark.parametrize(
    ("schedule", "window"),
    [("- at: [D-23]", "[-7, 7]"), ("- at: [M1]", "[-58, 0]"), ("- at: [W-4]", "[-2, 2]")],
)
def test_window_opening_on_the_baseline_is_allowed(
    protocol_text: ProtocolText, write_protocol: WriteProtocol, schedule: str, window: str
) -> None:
    text = protocol_text(
        replace={"- at: [M1, M6]": schedule, "window: [-7, 7]": f"window: {window}"}
    )
    load_protocol(write_protocol(text))


@pytest.mark.parametrize(
    ("schedule", "window", "offset"),
    [
        ("- at: [D14]", "[-15, 7]", "D14"),
        ("- at: [D-1]", "[0, 7]", "D-1"),
        ("- at: [M1]", "[-29, 0]", "M1"),  # February: 28 days
    ],
)
def test_triggered_window_opening_before_its_trigger(
    protocol_text: ProtocolText,
    write_protocol: WriteProtocol,
    schedule: str,
    window: str,
    offset: str,
) -> None:
    recheck = RECHECK.replace("- at: [D14]", schedule).replace("[-14, 7]", window)
    text = protocol_text(recheck, replace=on_result("{when: {equals: positive}, start: [recheck]}"))
    error, path = refused(write_protocol, text)
    check(
        error,
        path,
        assessment="recheck",
        field="schedule[0]",
        reason=f"time point {offset} with",
    )
    assert "opens its window before the result or event that starts it" in str(error)


@pytest.mark.parametrize(
    ("assessment_text", "offset"),
    [
        (RECHECK.replace("D14", "Y99999"), "Y99999"),  # would overflow the date type
        (RECHECK.replace("D14", "M1441"), "M1441"),
        (
            RECHECK.replace("anchor: trigger\n  starts: when_started", "anchor: birth").replace(
                "D14", "Y9999"
            ),
            "Y9999",
        ),
    ],
)
def test_time_point_more_than_120_years_away(
    protocol_text: ProtocolText, write_protocol: WriteProtocol, assessment_text: str, offset: str
) -> None:
    text = protocol_text(
        assessment_text, replace=on_result("{when: {equals: positive}, start: [recheck]}")
    )
    error, path = refused(write_protocol, text)
    check(
        error,
        path,
        assessment="recheck",
        field="schedule[0]",
        reason=f"time point {offset} is more than 120 years from its anchor",
    )


@pytest.mark.parametrize("duration", ["Y0", "D-1", "Y121", "D99999"])
def test_follow_up_duration_must_be_positive_and_bounded(
    protocol_text: ProtocolText, write_protocol: WriteProtocol, duration: str
) -> None:
    error, path = refused(
        write_protocol, protocol_text(replace={"duration: Y2": f"duration: {duration}"})
    )
    check(
        error,
        path,
        assessment=None,
        field="follow_up.duration",
        reason=f"the follow-up lasts {duration}: give a positive duration of at most 120 years",
    )


def test_time_point_before_birth(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    text = protocol_text(
        replace={
            "    category: core": "    category: core\n    anchor: birth",
            "- at: [M1, M6]": "- at: [Y-1]",
        }
    )
    error, path = refused(write_protocol, text)
    check(
        error,
        path,
        assessment="visit",
        field="schedule[0]",
        reason="time point Y-1 is before birth",
    )


def test_too_many_time_points(protocol_text: ProtocolText, write_protocol: WriteProtocol) -> None:
    text = protocol_text(
        replace={
            "duration: Y2": "duration: Y20",
            "      - at: [M1, M6]": "      - every: D1\n        from: D1\n        to: D7000",
        }
    )
    error, path = refused(write_protocol, text)
    check(
        error,
        path,
        assessment="visit",
        field="schedule[0]",
        reason="the recurrence makes 7000 time points (more than 6000)",
    )


@pytest.mark.parametrize(
    "schedule",
    [
        "- every: D1\n      from: D1\n      to: D25",
        # The limit is on the whole schedule, not on each entry.
        "- every: D1\n      from: D1\n      to: D20\n    - at: [M1, M2, M3, M4, M5]",
    ],
)
def test_triggered_assessment_with_more_than_24_time_points(
    protocol_text: ProtocolText, write_protocol: WriteProtocol, schedule: str
) -> None:
    # Triggered occurrences are numbered YYYYMMDD * 100 + n: a series must leave room
    # for a few more started on the same day.
    recheck = RECHECK.replace("- at: [D14]", schedule).replace("[-14, 7]", "[0, 7]")
    text = protocol_text(recheck, replace=on_result("{when: {equals: positive}, start: [recheck]}"))
    error, path = refused(write_protocol, text)
    check(
        error,
        path,
        assessment="recheck",
        field="schedule",
        reason="a triggered assessment may have at most 24 time points (it has 25)",
    )


def test_triggered_assessment_with_24_time_points_is_allowed(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    recheck = RECHECK.replace("- at: [D14]", "- every: D1\n      from: D1\n      to: D24").replace(
        "[-14, 7]", "[0, 7]"
    )
    text = protocol_text(recheck, replace=on_result("{when: {equals: positive}, start: [recheck]}"))
    assert len(load_protocol(write_protocol(text)).rules["recheck"].points) == 24


def test_a_recurrence_may_give_an_assessment_anchored_on_infusion_more_than_24_points(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    text = protocol_text(
        replace={"      - at: [M1, M6]": "      - every: D1\n        from: D1\n        to: D25"}
    )
    assert len(load_protocol(write_protocol(text)).rules["visit"].points) == 25


# -- references between parts ------------------------------------------------------------


def test_branch_starting_an_unknown_assessment(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    text = protocol_text(RECHECK, replace=on_result("{when: {equals: positive}, start: [rechek]}"))
    error, path = refused(write_protocol, text)
    assert str(error) == (
        f"{path}, assessment 'visit', field 'on_result[0].start[0]': "
        "unknown assessment 'rechek' (did you mean 'recheck'?)"
    )


def test_branch_stopping_an_unknown_assessment(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    text = protocol_text(replace=on_result("{when: {equals: '5'}, stop: [visit, nothing_alike]}"))
    error, path = refused(write_protocol, text)
    assert str(error) == (
        f"{path}, assessment 'visit', field 'on_result[0].stop[1]': "
        "unknown assessment 'nothing_alike'"
    )


def test_event_starting_an_unknown_assessment(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    text = protocol_text(
        RECHECK,
        replace={
            "events:\n": "events:\n"
            "  new_malignancy:\n    description: Cancer\n    start: [recheck, vist]\n"
        },
    )
    error, path = refused(write_protocol, text)
    check(
        error,
        path,
        assessment=None,
        field="events.new_malignancy.start[1]",
        reason="unknown assessment 'vist' (did you mean 'visit'?)",
    )


def test_branches_forming_a_cycle(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    recheck = RECHECK.replace(
        "  window: [-14, 7]\n",
        "  window: [-14, 7]\n  on_result:\n    - when: {equals: positive}\n      start: [visit]\n",
    )
    text = protocol_text(recheck, replace=on_result("{when: {equals: positive}, start: [recheck]}"))
    error, path = refused(write_protocol, text)
    check(
        error,
        path,
        assessment="visit",
        field="on_result",
        reason="branches form a cycle: visit -> recheck -> visit",
    )


def test_a_stop_closes_a_cycle_too(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    recheck = RECHECK.replace(
        "  window: [-14, 7]\n",
        "  window: [-14, 7]\n  on_result:\n    - when: {equals: clear}\n      stop: [visit]\n",
    )
    text = protocol_text(recheck, replace=on_result("{when: {equals: positive}, start: [recheck]}"))
    error, path = refused(write_protocol, text)
    check(
        error,
        path,
        assessment="visit",
        field="on_result",
        reason="branches form a cycle: visit -> recheck -> visit",
    )


def test_a_result_starting_its_own_assessment_is_a_cycle(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    text = protocol_text(replace=on_result("{when: {equals: positive}, start: [visit]}"))
    error, path = refused(write_protocol, text)
    check(
        error,
        path,
        assessment="visit",
        field="on_result[0].start",
        reason="branches form a cycle: an assessment's result starts itself",
    )


def test_a_result_may_stop_its_own_assessment(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    # Like Tanner stage 5 ending Tanner staging.
    load_protocol(
        write_protocol(protocol_text(replace=on_result("{when: {equals: '5'}, stop: [visit]}")))
    )


def test_unknown_evidence_source(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    text = protocol_text(replace={"sources: [REF-1]": "sources: [REF-1, REF_2]"})
    error, path = refused(write_protocol, text)
    check(
        error,
        path,
        assessment="visit",
        field="evidence.sources[1]",
        reason="unknown reference 'REF_2' (did you mean 'REF-2'?); add it under 'references'",
    )


def test_unknown_diagnosis_in_applies_to(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    text = protocol_text(
        replace={
            "    window: [-7, 7]\n": "    window: [-7, 7]\n"
            "    applies_to:\n      diagnoses: [dx_a, dx_c]\n"
        }
    )
    error, path = refused(write_protocol, text)
    check(
        error,
        path,
        assessment="visit",
        field="applies_to.diagnoses[1]",
        reason="unknown diagnosis 'dx_c'; the protocol lists dx_a, dx_b",
    )


def test_duplicate_assessment_id(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    text = protocol_text(RECHECK.replace("- id: recheck", "- id: visit"))
    error, path = refused(write_protocol, text)
    check(error, path, assessment="visit", field="id", reason="duplicate assessment id (item 2)")


def test_when_started_but_never_started(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    error, path = refused(write_protocol, protocol_text(RECHECK))
    check(
        error,
        path,
        assessment="recheck",
        field="starts",
        reason="'starts: when_started' but no result branch or event starts it",
    )


def test_stopping_is_not_starting(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    text = protocol_text(RECHECK, replace=on_result("{when: {equals: positive}, stop: [recheck]}"))
    error, path = refused(write_protocol, text)
    check(
        error,
        path,
        assessment="recheck",
        field="starts",
        reason="no result branch or event starts it",
    )


def test_triggered_assessment_must_wait_to_be_started(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    text = protocol_text(
        RECHECK.replace("  starts: when_started\n", ""),
        replace=on_result("{when: {equals: positive}, start: [recheck]}"),
    )
    error, path = refused(write_protocol, text)
    check(
        error,
        path,
        assessment="recheck",
        field="starts",
        reason="an assessment anchored on its trigger must say 'starts: when_started'",
    )


@pytest.mark.parametrize("kind", ["death", "withdrawal"])
def test_protocol_must_say_what_ends_follow_up(
    protocol_text: ProtocolText, write_protocol: WriteProtocol, kind: str
) -> None:
    description = {"death": "Death", "withdrawal": "Withdrawal of consent"}[kind]
    block = f"  {kind}:\n    description: {description}\n    end_follow_up: true\n"
    reason = (
        f"every protocol must say what ends follow-up: add event '{kind}' "
        "with 'end_follow_up: true'"
    )
    for replacement in ("", f"  {kind}:\n    description: {description}\n"):
        error, path = refused(write_protocol, protocol_text(replace={block: replacement}))
        check(error, path, assessment=None, field=f"events.{kind}", reason=reason)


# -- YAML itself --------------------------------------------------------------------------


def test_duplicate_yaml_key_in_an_assessment(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    text = protocol_text(replace={"    name: Visit\n": "    name: Visit\n    name: Again\n"})
    error, path = refused(write_protocol, text)
    assert str(error) == f"{path}: not valid YAML at line 26, column 5: key 'name' is given twice"


def test_duplicate_yaml_key_at_the_top(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    text = protocol_text(replace={"title: Test protocol\n": "title: Test protocol\ntitle: Again\n"})
    error, path = refused(write_protocol, text)
    assert str(error) == f"{path}: not valid YAML at line 4, column 1: key 'title' is given twice"


def test_invalid_yaml_gives_the_line(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    text = protocol_text(replace={"title: Test protocol": "title: Test: protocol"})
    error, path = refused(write_protocol, text)
    assert str(error) == (
        f"{path}: not valid YAML at line 3, column 12: mapping values are not allowed here"
    )


def test_unclosed_bracket_gives_where_it_opened(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    text = protocol_text(replace={"    window: [-7, 7]": "    window: [-7, 7"})
    error, path = refused(write_protocol, text)
    assert str(error) == (
        f"{path}: not valid YAML at line 30, column 13: expected ',' or ']', but got ':' "
        "(while parsing a flow sequence at line 29, column 13)"
    )


def test_tab_indentation(protocol_text: ProtocolText, write_protocol: WriteProtocol) -> None:
    error, path = refused(
        write_protocol, protocol_text(replace={"    category: core": "\tcategory: core"})
    )
    assert str(error).startswith(f"{path}: not valid YAML at line 26, column 1: ")
    assert "'\\t'" in str(error)


def test_unhashable_yaml_key(protocol_text: ProtocolText, write_protocol: WriteProtocol) -> None:
    text = protocol_text(replace={"id: test-protocol\n": "id: test-protocol\n? [a, b]\n: c\n"})
    error, path = refused(write_protocol, text)
    assert str(error) == (
        f"{path}: not valid YAML at line 2, column 3: found unhashable key "
        "(while constructing a mapping at line 1, column 1)"
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "a protocol file must be a mapping with 'id', 'version', ..."),
        ("- a\n- b\n", "a protocol file must be a mapping with 'id', 'version', ..."),
        ("just text\n", "a protocol file must be a mapping with 'id', 'version', ..."),
    ],
)
def test_not_a_mapping(write_protocol: WriteProtocol, text: str, reason: str) -> None:
    error, path = refused(write_protocol, text)
    assert str(error) == f"{path}: {reason}"


def test_assessments_not_a_list_of_mappings(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    text = protocol_text("- just a string")
    error, path = refused(write_protocol, text)
    check(error, path, assessment="#2", field=None, reason="valid dictionary")


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ProtocolError) as caught:
        load_protocol(path)
    assert str(caught.value) == f"{path}: cannot read the file: No such file or directory"


def test_a_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(ProtocolError, match="cannot read the file"):
        load_protocol(tmp_path)


def test_file_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("title: Müller\n".encode("latin-1"))
    with pytest.raises(ProtocolError) as caught:
        load_protocol(path)
    assert str(caught.value) == f"{path}: the file is not UTF-8 text"


def test_parse_protocol_names_its_source(protocol_text: ProtocolText) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_protocol(protocol_text(replace={"window: [-7, 7]": "window: [5, 30]"}), "amendment 3")
    assert str(caught.value).startswith("amendment 3, assessment 'visit', field 'window': ")
    with pytest.raises(ProtocolError, match=r"^<text>, assessment 'visit'"):
        parse_protocol(protocol_text(replace={"window: [-7, 7]": "window: [5, 30]"}))


def test_protocol_error_is_a_value_error() -> None:
    # Callers may catch ValueError; the CLI and HTTP layers catch RulesError.
    error = ProtocolError("p.yaml", "broken", assessment="a", field="f")
    assert isinstance(error, ValueError)
    assert str(error) == "p.yaml, assessment 'a', field 'f': broken"


# -- what a protocol declares for the application -------------------------------------------

SAFETY_CASE = (
    "      when: {equals: positive}\n"
    "      term: Vector detected\n"
    '      narrative: "Positive result for {assessment} on {date}."\n'
)


def opens_safety_case(old: str = "", new: str = "") -> dict[str, str]:
    """A replacement giving 'visit' an ``opens_safety_case`` (with ``old`` replaced)."""
    body = SAFETY_CASE.replace(old, new) if old else SAFETY_CASE
    assert not old or old in SAFETY_CASE, f"test setup: {old!r} not in the safety case"
    return {
        "    window: [-7, 7]\n": f"    window: [-7, 7]\n{declared_result(body)}"
        f"    opens_safety_case:\n{body}"
    }


def test_a_declared_safety_case_is_valid(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    protocol = load_protocol(write_protocol(protocol_text(replace=opens_safety_case())))
    declared = protocol.rules["visit"].spec.opens_safety_case
    assert declared is not None
    assert declared.term == "Vector detected"


@pytest.mark.parametrize(
    ("replace", "field", "reason"),
    [
        (
            opens_safety_case("{assessment}", "{patient}"),
            "opens_safety_case.narrative",
            "unknown placeholder {patient}: the narrative may name {assessment} and {date}",
        ),
        (
            opens_safety_case("{assessment}", "{}"),
            "opens_safety_case.narrative",
            "unknown placeholder {}: the narrative may name {assessment} and {date}",
        ),
        (
            opens_safety_case("{date}", "{date:%Y}"),
            "opens_safety_case.narrative",
            "write a placeholder plainly ({assessment} and {date}), without a format",
        ),
        (
            opens_safety_case("{date}", "{date!r}"),
            "opens_safety_case.narrative",
            "write a placeholder plainly ({assessment} and {date}), without a format",
        ),
        (
            opens_safety_case(" on {date}", " on } date"),
            "opens_safety_case.narrative",
            "Single '}' encountered in format string; write {{ or }} for a brace in the text",
        ),
        (
            opens_safety_case("term: Vector detected", "term: " + "x" * 251),
            "opens_safety_case.term",
            "String should have at most 250 characters",
        ),
        (
            opens_safety_case("term: Vector detected", "term: ''"),
            "opens_safety_case.term",
            "String should have at least 1 character",
        ),
        (
            opens_safety_case("      when: {equals: positive}\n", ""),
            "opens_safety_case.when",
            "required field is missing",
        ),
        (
            opens_safety_case("{equals: positive}", "{equals: positive, below: 3}"),
            "opens_safety_case.when",
            "give exactly one of 'equals', 'one_of', 'below', 'at_least', 'at_most', 'above'",
        ),
        (
            opens_safety_case("term:", "narative: typo\n      term:"),
            "opens_safety_case.narative",
            "unknown key 'narative' (did you mean 'narrative'?)",
        ),
        (
            {"    category: core\n": "    category: core\n    yearly_contact: maybe\n"},
            "yearly_contact",
            "Input should be a valid boolean",
        ),
    ],
)
def test_bad_declarations_on_an_assessment(
    protocol_text: ProtocolText,
    write_protocol: WriteProtocol,
    replace: dict[str, str],
    field: str,
    reason: str,
) -> None:
    error, path = refused(write_protocol, protocol_text(replace=replace))
    check(error, path, assessment="visit", field=field, reason=reason)


def test_a_triggered_assessment_is_not_a_yearly_contact(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    recheck = RECHECK.replace("  category: core\n", "  category: core\n  yearly_contact: true\n")
    text = protocol_text(recheck, replace=on_result("{when: {equals: positive}, start: [recheck]}"))
    error, path = refused(write_protocol, text)
    check(
        error,
        path,
        assessment="recheck",
        field="yearly_contact",
        reason="a yearly contact is a scheduled visit: it cannot be anchored on a trigger",
    )


@pytest.mark.parametrize(
    ("category", "reason"),
    [
        ("cor", "no assessment has category 'cor' (did you mean 'core'?)"),
        ("reporting", "no assessment has category 'reporting'"),
        ("Safety", "String should match pattern"),
    ],
)
def test_the_reporting_category_must_be_one_the_assessments_use(
    protocol_text: ProtocolText, write_protocol: WriteProtocol, category: str, reason: str
) -> None:
    text = protocol_text(
        replace={"reporting_category: null\n": f"reporting_category: {category}\n"}
    )
    error, path = refused(write_protocol, text)
    check(error, path, assessment=None, field="reporting_category", reason=reason)


def test_a_reporting_category_means_the_same_in_every_loaded_protocol(
    protocol_text: ProtocolText, write_protocol: WriteProtocol, tmp_path: Path
) -> None:
    # Queries over many patients test a row's category without its protocol.
    declares = write_protocol(
        protocol_text(replace={"reporting_category: null\n": "reporting_category: core\n"}),
        name="a.yaml",
    )
    silent = write_protocol(
        protocol_text(replace={"id: test-protocol": "id: other-protocol"}), name="b.yaml"
    )
    with pytest.raises(ProtocolError) as caught:
        ProtocolRegistry.from_directory(tmp_path)
    assert str(caught.value) == (
        f"{silent}, field 'reporting_category': category 'core' is a reporting duty in "
        f"{declares}: declare 'reporting_category: core' here too, or name it otherwise"
    )


def test_a_protocol_file_that_predates_its_declarations_is_refused(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    """A site's own copy written before the application read its reporting category (and
    yearly contacts, and safety cases) from the file must not load and lose them quietly."""
    text = protocol_text(replace={"reporting_category: null\n": ""})
    error, path = refused(write_protocol, text)
    check(
        error,
        path,
        assessment=None,
        field="reporting_category",
        reason="required field is missing: name the category of the regulatory reporting clocks",
    )
    assert "'opens_safety_case'" in str(error)
    assert "'yearly_contact'" in str(error)


# -- fields added for protocol 1.1 of cd19-car-t (issue 12) --------------------------------


def test_after_study_allows_time_points_past_the_end(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    text = protocol_text(
        replace={
            "- at: [M1, M6]": "- at: [M1, Y3]",
            "category: core\n": "category: core\n    after_study: true\n",
        }
    )
    protocol = load_protocol(write_protocol(text))
    assert protocol.rules["visit"].spec.after_study


def test_after_study_needs_the_infusion_anchor(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    text = protocol_text(
        replace={"category: core\n": "category: core\n    anchor: birth\n    after_study: true\n"}
    )
    error, path = refused(write_protocol, text)
    check(
        error,
        path,
        assessment="visit",
        field="after_study",
        reason="only an assessment anchored on the infusion can be scheduled past the study's end",
    )


def test_only_at_must_name_a_time_point_of_the_assessment(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    text = protocol_text(
        replace={
            "category: core\n": "category: core\n"
            "    result: {type: quantity, unit: cells/uL, min: 0, max: 5000}\n"
            "    on_result:\n"
            "      - {when: {at_most: 200}, only_at: [M3], stop: [visit]}\n"
        }
    )
    error, path = refused(write_protocol, text)
    check(
        error,
        path,
        assessment="visit",
        field="on_result[0].only_at[0]",
        reason="M3 is not one of its time points (M1, M6)",
    )


def test_only_at_goes_with_when(protocol_text: ProtocolText, write_protocol: WriteProtocol) -> None:
    text = protocol_text(
        replace={
            "category: core\n": "category: core\n"
            "    result: {type: quantity, unit: cells/uL, min: 0, max: 5000}\n"
            "    on_result:\n"
            "      - {when_all: {above: 200}, only_at: [M1], stop: [visit]}\n"
        }
    )
    error, path = refused(write_protocol, text)
    check(
        error,
        path,
        assessment="visit",
        field="on_result[0]",
        reason="'only_at' goes with 'when'",
    )


@pytest.mark.parametrize(
    ("condition", "value", "matches"),
    [
        ({"at_most": 200}, "200", True),
        ({"at_most": 200}, "200.5", False),
        ({"above": 200}, "200", False),
        ({"above": 200}, "201", True),
        ({"above": 200}, "n/a", False),
    ],
)
def test_at_most_and_above(condition: dict[str, float], value: str, matches: bool) -> None:
    from rules._schema import Condition

    assert Condition.model_validate(condition).matches(value) is matches
