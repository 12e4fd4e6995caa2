"""The engine's whole output, pinned: a digest of every field of every planned assessment.

A few hundred seeded random patients per bundled protocol (CAR-T 1.0 and 1.1, AAV), with
re-infusions, events (malignancy, death, withdrawal, adverse-event clocks with sources and
series numbers) and results that fire the branches (positive and all-negative RCL tests,
low IgG, vector-positive cells, Tanner 5, cleared shedding...). The digests were recorded
from the engine before its speed-up (issue 15): any change of output, however small (a
date, a reason's wording, an occurrence number, an error message), fails here.

If a change of output is intended, check it elsewhere first (the hand-worked golden
tests), then record the new digests with ``python tests/rules/test_engine_output_digest.py``.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from collections import Counter
from dataclasses import fields
from datetime import date, timedelta

import pytest
from dateutil.relativedelta import relativedelta

from rules import (
    InvalidFacts,
    PatientFacts,
    PlannedAssessment,
    Protocol,
    ProtocolRegistry,
    RecordedEvent,
    RecordedResult,
    build_calendar,
)

SEED = 15
PATIENTS = 120  # per protocol version

# Every value any branch of the bundled protocols tests, and some that match none.
VALUES = (
    "negative",
    "positive",
    "indeterminate",
    "cleared",
    "5",
    "3",
    "350",
    "450",
    "150",
    "250",
    "0.5",
    "2",
    "1.5",
    "persisting_expanding",
    "dominant_clone",
    "polyclonal",
)

# (protocol id, version) -> (sha256 of the canonical JSON, rows, calendars that raised)
EXPECTED: dict[tuple[str, str], tuple[str, int, int]] = {
    ("aav-liver-5-year", "1.0"): (
        "ecdcc97f9a5b19bc3a786a5efdd1c278579e0cc4658e69a37b2017f398ed1849",
        22674,
        3,
    ),
    ("cd19-car-t-pediatric-autoimmune", "1.0"): (
        "3f73f6bb7e4bdc3ea71a8262a2191aaf2f952cafe15931bcd39f146f09083f44",
        31568,
        3,
    ),
    ("cd19-car-t-pediatric-autoimmune", "1.1"): (
        "56e098be54a9c5a499047b4e55084c211831ee71da548181449db5785393758e",
        34587,
        7,
    ),
}

Case = tuple[PatientFacts, list[date], list[RecordedEvent], list[RecordedResult]]


def _random_day(rng: random.Random, first: date, last: date) -> date:
    return first + timedelta(days=rng.randrange((last - first).days + 1))


def _patient(rng: random.Random, protocol: Protocol, infusion: date) -> PatientFacts:
    paediatric = protocol.id.startswith("cd19")
    age = rng.randint(1, 17) if paediatric else rng.randint(18, 65)
    if rng.random() < 0.1:  # born on 29 February: birthdays and anniversaries clip
        year = rng.choice(range(infusion.year - age - 3, infusion.year - age + 1))
        while year % 4:
            year -= 1
        birth = date(year, 2, 29)
    else:
        birth = infusion - relativedelta(years=age, days=rng.randrange(365))
    return PatientFacts(birth, rng.choice(sorted(protocol.spec.diagnoses)), rng.choice("FMU"))


def _infusions(rng: random.Random) -> list[date]:
    if rng.random() < 0.15:  # month ends: month offsets clip
        first = date(rng.randint(2000, 2034), rng.choice((1, 3, 5, 8, 10)), 31)
    else:
        first = _random_day(rng, date(2000, 1, 1), date(2035, 12, 31))
    infusions = [first]
    while len(infusions) < 3 and rng.random() < 0.3:
        infusions.append(infusions[-1] + timedelta(days=rng.randint(1, 6 * 365)))
    rng.shuffle(infusions)  # build_calendar takes them in any order
    return infusions


def _events(rng: random.Random, protocol: Protocol, infusions: list[date]) -> list[RecordedEvent]:
    first, last = min(infusions), protocol.spec.follow_up.duration.apply(max(infusions))
    events = []
    for kind in rng.choices(sorted(protocol.events), k=rng.choice((0, 0, 1, 2, 3, 4))):
        on = _random_day(rng, first - timedelta(days=30), last + timedelta(days=400))
        source = rng.choice((None, None, f"adverse event X-{rng.randint(1, 99):02d}"))
        series = rng.choice((None, None, rng.randint(0, 40)))
        events.append(RecordedEvent(kind, on, source, series))
        if rng.random() < 0.08:  # the same again that day: a second series (or a clash)
            events.append(RecordedEvent(kind, on, rng.choice((None, source)), series))
    return events


def _results(
    rng: random.Random, protocol: Protocol, calendar: list[PlannedAssessment]
) -> list[RecordedResult]:
    """Results for some planned rows, mostly of rules that branch on them."""
    results = []
    branching = {rule_id for rule_id, rule in protocol.rules.items() if rule.spec.on_result}
    all_negative = rng.random() < 0.3
    for row in calendar:
        chance = 0.5 if row.assessment in branching else 0.03
        if rng.random() >= chance:
            continue
        value = "negative" if all_negative and "rcl" in row.assessment else rng.choice(VALUES)
        on = _random_day(rng, row.window_start, row.window_end + timedelta(days=20))
        results.append(RecordedResult(row.infusion, row.assessment, row.occurrence, on, value))
    return results


def cases(protocol: Protocol, seed: int, patients: int) -> list[Case]:
    """Random facts; results come in two rounds so that triggered series get some too."""
    rng = random.Random(f"{seed}:{protocol.id}:{protocol.version}")
    out: list[Case] = []
    for _ in range(patients):
        infusions = _infusions(rng)
        patient = _patient(rng, protocol, min(infusions))
        events = _events(rng, protocol, infusions)
        results: list[RecordedResult] = []
        for _round in range(2):
            try:
                calendar = build_calendar(protocol, patient, infusions, results, events)
            except InvalidFacts:
                break
            recorded = {(r.infusion, r.assessment, r.occurrence) for r in results}
            new = _results(rng, protocol, calendar)
            results += [r for r in new if (r.infusion, r.assessment, r.occurrence) not in recorded]
        out.append((patient, infusions, events, results))
    return out


def _row(row: PlannedAssessment) -> list[object]:
    values = [getattr(row, f.name) for f in fields(row)]
    return [v.isoformat() if isinstance(v, date) else v for v in values]


def outputs(protocol: Protocol, seed: int = SEED, patients: int = PATIENTS) -> list[object]:
    """Every calendar of the cohort as rows of every field (or the error it raised)."""
    out: list[object] = []
    for patient, infusions, events, results in cases(protocol, seed, patients):
        try:
            calendar = build_calendar(protocol, patient, infusions, results, events)
        except InvalidFacts as exc:
            out.append({"error": str(exc)})
            continue
        out.append([_row(row) for row in calendar])
    return out


def digest(output: list[object]) -> str:
    text = json.dumps(output, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def summary(output: list[object]) -> tuple[str, int, int]:
    rows = sum(len(calendar) for calendar in output if isinstance(calendar, list))
    errors = sum(1 for calendar in output if isinstance(calendar, dict))
    return digest(output), rows, errors


def _all_protocols() -> list[Protocol]:
    return sorted(ProtocolRegistry.from_directory().all(), key=lambda p: (p.id, p.version))


@pytest.fixture(scope="module")
def cohort_outputs() -> dict[tuple[str, str], list[object]]:
    return {(p.id, p.version): outputs(p) for p in _all_protocols()}


def test_every_field_of_every_calendar_is_as_recorded(
    cohort_outputs: dict[tuple[str, str], list[object]],
) -> None:
    found = {key: summary(output) for key, output in cohort_outputs.items()}
    assert found == EXPECTED


def test_the_cohort_reaches_branches_events_and_reinfusions(
    cohort_outputs: dict[tuple[str, str], list[object]],
) -> None:
    """The digest pins something worth pinning: what the random facts exercise."""
    reasons: Counter[str] = Counter()
    rules_seen: set[str] = set()
    for output in cohort_outputs.values():
        for calendar in output:
            if not isinstance(calendar, list):
                continue
            for row in calendar:
                rules_seen.add(str(row[1]))
                reason = str(row[10])
                for phrase in (
                    "after result",
                    "started by",
                    "after death",
                    "after new malignancy",
                    "(adverse event",
                    "closing at the end of follow-up",
                    "hand-over",
                    "birthday",
                ):
                    reasons[phrase] += phrase in reason
                reasons["second infusion"] += row[0] == 2
                reasons["third infusion"] += row[0] == 3
    assert min(reasons.values()) >= 5, reasons
    for rule_id in (
        "rcl_archive",
        "rcl_intensified",
        "ivig_course",
        "integration_site_analysis",
        "autopsy_vector_request",
        "aav_steroid",
        "crs_icans_daily_ice",
        "crs_icans_daily_capd",
        "ltfu_contact",
    ):
        assert rule_id in rules_seen


if __name__ == "__main__":
    for protocol in _all_protocols():
        key = (protocol.id, protocol.version)
        sys.stdout.write(f"{key!r}: {summary(outputs(protocol))!r},\n")
