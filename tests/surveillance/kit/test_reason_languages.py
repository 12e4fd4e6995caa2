"""The engine's reasons in Italian and German (issue 14): every reason real calendars give
is read back into its parts and written in each language, English exactly as stored.

The reasons come from ``rules.build_calendar`` itself: every bundled protocol and
diagnosis, with a re-infusion, every event (with and without the adverse event it came
from), death, every ``on_result`` branch of the bundled protocols (``support.branches``),
and a small protocol of this file for the forms the bundled ones do not use (birth-anchored
days, weeks and months, birthdays 1st to 18th, every kind of condition, weeks and months
before the infusion).
"""

from __future__ import annotations

import re
from datetime import date

import pytest
from support import branches

import rules
from rules import PatientFacts, RecordedEvent, RecordedResult, build_calendar
from surveillance.kit import i18n, reasons

REGISTRY = rules.ProtocolRegistry.from_directory()
FLARE_DAY = date(2025, 3, 2)

# Every form: each assessment points at the ones it starts; evidence and windows as needed.
FORMS_PROTOCOL = """\
id: reason-forms
version: "1.0"
title: Every form of reason the engine writes
product: Test product
follow_up: {duration: Y20, baseline_from: M-2}
diagnoses: {dx_a: Diagnosis A}
references: {REF-1: {title: Reference one}}
events:
  death: {description: Death, end_follow_up: true}
  withdrawal: {description: Withdrawal of consent, end_follow_up: true}
  flare: {description: A flare, start: [after_flare, flare_watch]}
assessments:
  - {id: baseline, name: Baseline, category: core, window: [0, 0],
     schedule: [{at: [D-1, D-14, W-1, W-2, M-1]}],
     evidence: &ev {basis: guideline, sources: [REF-1]}}
  - {id: birthdays, name: Birthdays, category: core, anchor: birth, window: [-30, 30],
     schedule: [{at: [Y1, Y2, Y3, Y4, Y11, Y12, Y13, Y18]}], evidence: *ev}
  - {id: infant, name: Infant, category: core, anchor: birth, window: [0, 3],
     schedule: [{at: [D3, W2, M6]}], evidence: *ev}
  - id: lab
    name: Lab value
    category: core
    result: {type: quantity, unit: "%", min: 0, max: 1000000, decimals: 2}
    schedule: [{at: [M1, M2]}]
    window: [-7, 7]
    on_result:
      - {when_all: {below: 400}, start: [low_follow]}
      - {when_all: {at_least: 1.5}, start: [high_follow]}
      - {when: {above: 1000}, start: [spike]}
      - {when: {at_most: 0.5}, start: [dip]}
    evidence: *ev
  - id: kind
    name: Coded value
    category: core
    result: {type: coded, values: {alpha: Alpha, beta: Beta, gamma: Gamma}}
    schedule: [{at: [M1, M2]}]
    window: [-7, 7]
    on_result:
      - {when_all: {one_of: [alpha, beta, gamma]}, start: [choice_follow]}
      - {when: {equals: beta}, start: [beta_follow]}
    evidence: *ev
  - {id: low_follow, name: Low, category: core, starts: when_started, window: [-7, 7],
     schedule: [{at: [M6]}], evidence: *ev}
  - {id: high_follow, name: High, category: core, anchor: trigger, starts: when_started,
     window: [0, 7], schedule: [{at: [D1, W1]}], evidence: *ev}
  - {id: spike, name: Spike, category: core, anchor: trigger, starts: when_started,
     window: [0, 7], schedule: [{at: [M1]}], evidence: *ev}
  - {id: dip, name: Dip, category: core, starts: when_started, window: [0, 7],
     schedule: [{at: [Y1]}], evidence: *ev}
  - {id: choice_follow, name: Choice, category: core, anchor: trigger, starts: when_started,
     window: [0, 7], schedule: [{at: [Y1]}], evidence: *ev}
  - {id: beta_follow, name: Beta, category: core, starts: when_started, window: [0, 7],
     schedule: [{at: [Y2]}], evidence: *ev}
  - {id: after_flare, name: After a flare, category: core, anchor: trigger,
     starts: when_started, window: [0, 7], schedule: [{at: [D7]}], evidence: *ev}
  - {id: flare_watch, name: Flare watch, category: core, starts: when_started,
     window: [0, 7], schedule: [{at: [Y3]}], evidence: *ev}
reporting_category: null
"""


def _bundled_reasons() -> set[str]:
    found: set[str] = set()
    for protocol in REGISTRY.all():
        events = [  # every event that starts something, every other one from a case
            RecordedEvent(kind, FLARE_DAY, "adverse event ROM-001-AE01" if n % 2 else None)
            for n, kind in enumerate(protocol.events)
            if not protocol.events[kind].end_follow_up
        ]
        events += [RecordedEvent(kind, FLARE_DAY) for kind in protocol.events if kind != "death"]
        death = [RecordedEvent("death", FLARE_DAY)]
        for diagnosis in protocol.spec.diagnoses:
            facts = PatientFacts(date(2010, 3, 31), diagnosis, "F")
            infusions = [date(2024, 1, 31), date(2026, 5, 31)]
            for plan in (
                build_calendar(protocol, facts, infusions, [], events[: len(events) // 2]),
                build_calendar(protocol, facts, infusions[:1], [], events),
                build_calendar(protocol, facts, infusions[:1], [], death),
            ):
                found.update(a.reason for a in plan)
    for case in branches.branch_cases(REGISTRY):
        scenario = branches.scenario(REGISTRY, case)
        protocol = REGISTRY.get(case.protocol, case.version)
        found.update(a.reason for a in scenario.plan(protocol, scenario.satisfying))
    return found


def _form_reasons() -> set[str]:
    protocol = rules.parse_protocol(FORMS_PROTOCOL)
    facts = PatientFacts(date(2024, 1, 1), "dx_a", "F")
    infused = [date(2024, 1, 2)]
    m1, m2 = date(2024, 2, 10), date(2024, 3, 10)
    low = [RecordedResult(1, "lab", 1, m1, "300"), RecordedResult(1, "lab", 2, m2, "350")]
    extremes = [RecordedResult(1, "lab", 1, m1, "2000"), RecordedResult(1, "lab", 2, m2, "0.2")]
    coded = [RecordedResult(1, "kind", 1, m1, "alpha"), RecordedResult(1, "kind", 2, m2, "beta")]
    flares = [
        RecordedEvent("flare", FLARE_DAY),
        RecordedEvent("flare", date(2025, 6, 1), "adverse event ROM-002-AE03"),
        RecordedEvent("flare", date(2025, 9, 1), "laboratory report 7"),
    ]
    found: set[str] = set()
    for results, events in [(low, flares), (extremes, flares[:1]), (coded, flares[1:2])]:
        found.update(a.reason for a in build_calendar(protocol, facts, infused, results, events))
    return found


BUNDLED = _bundled_reasons()
FORMS = _form_reasons()
ALL = sorted(BUNDLED | FORMS)
# Words of the engine's English that must not be left in an Italian or German reason (the
# values, rule ids and case ids it quotes are data, shown as stored).
ENGLISH = set(
    "after before infusion birthday born birth window days day weeks week months month "
    "years year started by result results all last on of closing end study hand over "
    "adverse event below above least most new malignancy death serious unexpected "
    "reaction illness unexplained fatal life threatening withdrawal st nd rd th".split()
)
_DATA = re.compile(r"'[^']*'|\b[a-z0-9]+(?:_[a-z0-9]+)+\b|\b[A-Z]+-\d+-AE\d+\b")


def _english_words(text: str) -> set[str]:
    words = re.findall(r"[^\W\d_]+", _DATA.sub(" ", text.replace("laboratory report", "")))
    return {word for word in words if word in ENGLISH}  # "Infusion" is German too


def test_the_calendars_give_every_form() -> None:
    """The reasons read below do cover what this module claims to read."""
    text = "\n".join(ALL)
    for form in [
        "st birthday (born ",
        "nd birthday (born ",
        "rd birthday (born ",
        "th birthday (born ",
        "1 day before infusion of ",
        "14 days before infusion of ",
        "1 week before infusion of ",
        "2 weeks before infusion of ",
        "1 month before infusion of ",
        "month 3 after infusion of ",
        "day 3 after birth on ",
        "week 2 after birth on ",
        "month 6 after birth on ",
        " after new malignancy on ",
        " after serious adverse event (adverse event ROM-001-AE01) on ",
        " after flare (laboratory report 7) on ",
        " after result 'positive' of rcl_test #",
        " after all lab results at least 1.5 (last on ",
        " after all kind results alpha or beta or gamma (last on ",
        "; started by all lab results below 400 (last on ",
        "; started by result 'beta' of kind #2 on ",
        "; started by result '0.2' of lab #2 on ",
        "; started by flare (adverse event ROM-002-AE03) on ",
        "; started by flare on ",
        " after result '2000' of lab #1 on ",
        "; window 0/+",
        "; window −",
        ", closing at the end of follow-up",
        "; after the end of study follow-up on ",
        "; started by all rcl_test results negative (last on ",
    ]:
        assert form in text, form


def test_every_reason_is_read() -> None:
    unread = [reason for reason in ALL if reasons.parse(reason) is None]
    assert unread == []


def test_english_is_the_stored_text_byte_for_byte() -> None:
    changed = [r for r in ALL if reasons.localized(r, "en") != r]
    assert changed == []
    heads = [r.split(";")[0] for r in ALL]  # what the pages show before the window
    assert [h for h in heads if reasons.localized(h, "en") != h] == []


@pytest.mark.parametrize("locale", ["it", "de"])
def test_no_english_is_left_and_dates_are_the_pages(locale: str) -> None:
    left = {}
    for reason in ALL:
        written = reasons.localized(reason, locale)
        if words := _english_words(written):
            left[reason] = (written, sorted(words))
        assert not re.search(r"\d{4}-\d{2}-\d{2}", written), written
        with i18n.use_locale(locale):
            days = [i18n.format_day(d) for d in re.findall(r"\d{4}-\d{2}-\d{2}", reason)]
        assert all(day in written for day in days), written
    assert left == {}


def test_the_check_sees_english() -> None:
    assert _english_words("giorno 7 after flare on 2 mar 2025") == {"after", "on"}
    assert _english_words("dopo il risultato 'positive' di rcl_test n. 2") == set()


@pytest.mark.parametrize(
    ("stored", "italian", "german"),
    [
        (
            "18th birthday (born 2008-11-29); window −30/+30 days",
            "18° compleanno (data di nascita 29 nov 2008); finestra −30/+30 giorni",
            "18. Geburtstag (geboren am 29. Nov. 2008); Zeitfenster −30/+30 Tage",
        ),
        (
            "month 6 after infusion of 2024-01-31; window 0/+60 days, closing at the end of "
            "follow-up",
            "mese 6 dopo l'infusione del 31 gen 2024; finestra 0/+60 giorni, chiusa alla fine "
            "del follow-up",
            "Monat 6 nach der Infusion vom 31. Jan. 2024; Zeitfenster 0/+60 Tage, endet mit "
            "dem Ende der Nachbeobachtung",
        ),
        (
            "1 day before infusion of 2024-01-31",
            "1 giorno prima dell'infusione del 31 gen 2024",
            "1 Tag vor der Infusion vom 31. Jan. 2024",
        ),
        (
            "14 days before infusion of 2024-01-31",
            "14 giorni prima dell'infusione del 31 gen 2024",
            "14 Tage vor der Infusion vom 31. Jan. 2024",
        ),
        (
            "day 14 after result 'positive' of rcl_test #2 on 2025-03-02; window −14/+7 days",
            "giorno 14 dopo il risultato 'positive' di rcl_test n. 2 del 2 mar 2025; "
            "finestra −14/+7 giorni",
            "Tag 14 nach dem Ergebnis 'positive' von rcl_test Nr. 2 vom 2. März 2025; "
            "Zeitfenster −14/+7 Tage",
        ),
        (
            "day 7 after serious adverse event (adverse event ROM-001-AE01) on 2025-03-02",
            "giorno 7 dopo l'evento «evento avverso grave» (evento avverso ROM-001-AE01) "
            "del 2 mar 2025",
            "Tag 7 nach dem Ereignis „schwerwiegendes unerwünschtes Ereignis“ "
            "(unerwünschtes Ereignis ROM-001-AE01) vom 2. März 2025",
        ),
        (
            "year 2 after infusion of 2024-01-31; window −30/+30 days; started by all lab "
            "results at least 1.5 (last on 2024-03-10)",
            "anno 2 dopo l'infusione del 31 gen 2024; finestra −30/+30 giorni; avviato da "
            "tutti i risultati di lab: almeno 1,5 (l'ultimo del 10 mar 2024)",
            "Jahr 2 nach der Infusion vom 31. Jan. 2024; Zeitfenster −30/+30 Tage; ausgelöst "
            "durch alle Ergebnisse von lab: mindestens 1,5 (das letzte vom 10. März 2024)",
        ),
    ],
)
def test_what_a_reader_reads(stored: str, italian: str, german: str) -> None:
    assert reasons.localized(stored, "it") == italian
    assert reasons.localized(stored, "de") == german
    assert reasons.localized(stored, "en") == stored
    with i18n.use_locale("it"):  # the filter's way: the language of the rendering
        assert reasons.localized(stored) == italian


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "Month 6 after infusion of 2024-01-31",  # not how the engine writes it
        "month 6 after infusion of 31 Jan 2024",
        "month 6 after infusion of 2024-01-31; window about a month",
        "month six after infusion of 2024-01-31",
        "month 6 after infusion of 2024-02-30",  # no such day
        "day 7 after flare on 2025-03-02; started by flare on 2025-13-01",
        "month 6 after infusion of 2024-01-31; window −0/+30 days",
        "1 days before infusion of 2024-01-31",  # the engine writes "1 day"
        "2 day before infusion of 2024-01-31",
        "1th birthday (born 2023-01-01)",
        "day 7 after something the engine never writes",
        "day 7 after flare on 2025-03-02; started by nobody knows",
        "typed by hand: see the protocol",
    ],
)
def test_any_other_text_is_shown_as_stored(stored: str) -> None:
    assert reasons.parse(stored) is None
    for locale in i18n.LOCALES:
        assert reasons.localized(stored, locale) == stored


def test_every_event_of_the_bundled_protocols_has_words() -> None:
    kinds = {kind.replace("_", " ") for p in REGISTRY.all() for kind in p.events}
    assert kinds - set(reasons.EVENT_WORDS) == set()
