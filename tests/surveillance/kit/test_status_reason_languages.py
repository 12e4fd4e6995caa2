"""Why an assessment was cancelled, moved or marked, in Italian and German (issue 14).

The texts come from the services themselves, on a real SQLite database: a legacy result
mapped, flagged and moved to its note, an amendment (with rows never owed), outcomes
recorded, undone and corrected (with the done work they had started marked), a
re-infusion, an event, a withdrawal, a fatal adverse event. Every text they wrote into an
assessment's reason, its corrected-result mark, a patient's status reason or the audit
trail's reason is read back; the reasons typed here by a person stay as typed.
"""

from __future__ import annotations

import re
import shutil
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session
from support.factories import (
    ACTOR,
    CAR_T,
    add_sites,
    enroll_committed,
    record,
    replace_once,
    rows_of,
)
from support.legacy import store_free_text

import rules
from surveillance.adverse_events.cases import create_case
from surveillance.adverse_events.facts import CaseFacts
from surveillance.adverse_events.legacy_results import map_stored_results
from surveillance.adverse_events.results import correct_outcome
from surveillance.calendar import sync
from surveillance.calendar.sync import CalendarChange
from surveillance.kit import i18n, migrate, status_reasons
from surveillance.kit.audit import AuditEntry
from surveillance.kit.db import make_engine, read_session, write_session
from surveillance.patients.amendments import amend
from surveillance.patients.changes import add_infusion, change_status, record_event
from surveillance.patients.undo import undo_outcome
from surveillance.records.adverse_event_vocabulary import (
    CaseOutcome,
    Category,
    Relatedness,
    Seriousness,
)
from surveillance.records.patients import Assessment, Patient

IGG = "ROM-101:1:immunoglobulins:1"
# What a person typed: shown as typed, in every language.
TYPED = {"moved abroad", "the family could not come", "lab closed that week"}


def _note_registry(folder: Path) -> rules.ProtocolRegistry:
    """CAR-T 1.0 only, its lymphocyte subsets recording no result (to move a stored text
    to its note)."""
    folder.mkdir()
    path = folder / f"{CAR_T}.yaml"
    shutil.copy(rules.BUNDLED_PROTOCOLS / f"{CAR_T}.yaml", path)
    path.write_text(
        replace_once(
            path.read_text(encoding="utf-8"),
            "    name: CD3/CD4/CD8/NK lymphocyte subsets\n",
            "    name: CD3/CD4/CD8/NK lymphocyte subsets\n    result: {type: none}\n",
        ),
        encoding="utf-8",
    )
    return rules.ProtocolRegistry.from_directory(folder)


def _written(tmp_path: Path, causes: list[str]) -> set[str]:
    """Run the services; every reason text they stored (and every cause they gave a
    re-plan, into ``causes``: it is stored on the rows the re-plan changes)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'surveillance.db'}")
    migrate.upgrade(engine)
    registry = rules.ProtocolRegistry.from_directory()
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    old = _note_registry(tmp_path / "old")
    add_sites(engine)
    for study_id in ["ROM-101", "ROM-102", "ROM-103", "ROM-104"]:
        enroll_committed(engine, old, now, study_id=study_id)
    # Results stored as free text before typed results: read, flagged, moved to a note.
    store_free_text(engine, old, now, "ROM-102:1:rcl_test:1", "Positive")
    store_free_text(engine, old, now, "ROM-103:1:rcl_test:1", "Positive by qPCR")
    store_free_text(engine, old, now, "ROM-104:1:cd4_subsets:1", "CD4 180/uL")
    with write_session(engine) as session:
        map_stored_results(session, registry=old, now=now)
    with write_session(engine) as session:  # 1.1 adds a pre-infusion sample: never owed
        amend(
            session,
            protocol_id=CAR_T,
            to_version="1.1",
            registry=registry,
            actor=ACTOR,
            now=now,
            apply=True,
        )

    with write_session(engine) as session:  # IgG below 400 starts IVIG; one course is given
        record(session, registry, now, IGG, result="350 mg/dL")
    ivig = _first_row(engine, "ROM-101", "ivig_course")
    with write_session(engine) as session:
        record(session, registry, now, ivig, on=_window_start(engine, ivig))
    with write_session(engine) as session:  # the IgG was a slip: undone, the IVIG marked
        undo_outcome(
            session, key=IGG, actor=ACTOR, registry=registry, now=now, expected_version=None
        )
    with write_session(engine) as session:  # recorded again, then corrected to normal
        record(session, registry, now, IGG, result="350 mg/dL")
    with write_session(engine) as session:
        correct_outcome(
            session,
            key=IGG,
            reason="lab closed that week",
            actor=ACTOR,
            registry=registry,
            now=now,
            expected_version=None,
            result="500 mg/dL",
        )
    with write_session(engine) as session:  # missed, then corrected to not done
        record(
            session,
            registry,
            now,
            "ROM-101:1:rcl_test:1",
            outcome="missed",
            reason="the family could not come",
        )
    with write_session(engine) as session:
        correct_outcome(
            session,
            key="ROM-101:1:rcl_test:1",
            reason="the family could not come",
            outcome="not_done",
            actor=ACTOR,
            registry=registry,
            now=now,
            expected_version=None,
        )
    with write_session(engine) as session:
        add_infusion(
            session,
            study_id="ROM-101",
            on=date(2025, 6, 2),
            actor=ACTOR,
            registry=registry,
            now=now,
        )
    with write_session(engine) as session:
        record_event(
            session,
            study_id="ROM-101",
            kind="new_malignancy",
            on=date(2026, 3, 2),
            note=None,
            actor=ACTOR,
            registry=registry,
            now=now,
        )
    with write_session(engine) as session:
        change_status(
            session,
            study_id="ROM-102",
            status="withdrawn",
            on=date(2026, 4, 1),
            reason="moved abroad",
            actor=ACTOR,
            registry=registry,
            now=now,
        )
    with write_session(engine) as session:
        create_case(
            session,
            study_id="ROM-103",
            facts=CaseFacts(
                onset_date=date(2026, 5, 1),
                awareness_date=date(2026, 5, 2),
                term="Sepsis",
                category=Category.infection,
                serious=True,
                seriousness_criteria=(Seriousness.death,),
                relatedness=Relatedness.not_related,
                expected=True,
                outcome=CaseOutcome.fatal,
            ),
            actor=ACTOR,
            registry=registry,
            now=now,
        )
    found: set[str] = set()
    with read_session(engine) as session:
        for column in [
            Assessment.status_reason,
            Assessment.started_by_corrected_result,
            Patient.status_reason,
            AuditEntry.reason,
        ]:
            found.update(filter(None, session.execute(select(column).distinct()).scalars()))
    engine.dispose()
    return found


def _first_row(engine: Engine, study_id: str, assessment: str) -> str:
    with read_session(engine) as session:
        row = rows_of(session, study_id, assessment)[0]
    return f"{study_id}:{row.infusion_number}:{assessment}:{row.occurrence}"


def _window_start(engine: Engine, key: str) -> date:
    study_id, infusion, assessment, occurrence = key.rsplit(":", 3)
    with read_session(engine) as session:
        for row in rows_of(session, study_id, assessment):
            if (row.infusion_number, row.occurrence) == (int(infusion), int(occurrence)):
                return row.window_start
    raise AssertionError(key)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    causes: list[str] = []
    apply_change = sync.apply_change

    def spy(session: Session, patient: Patient, change: CalendarChange, **kwargs: Any) -> None:
        causes.append(kwargs["cause"])
        apply_change(session, patient, change, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sync, "apply_change", spy)
        stored = _written(tmp_path_factory.mktemp("status-reasons"), causes)
    assert causes
    return sorted(stored | set(causes))


# The English of the sentences (the words of their msgids); "a" is Italian too.
ENGLISH = {
    word
    for message in status_reasons.MESSAGES
    for word in re.findall(r"[^\W\d_]+", re.sub(r"%\(\w+\)s", " ", message))
} - {"a"} | {"completed", "deceased", "withdrawn", "new", "malignancy", "created"}
# Data quoted as stored: assessment keys, case ids, protocol ids and versions, results.
_DATA = re.compile(r"'[^']*'|\S+:\S+:\S+:\d+|\b[A-Z]+-\d+-AE\d+\b|\b[a-z0-9]+(?:-[a-z0-9]+){2,}\b")


def _english_words(text: str) -> set[str]:
    for typed in TYPED | {"Sepsis"}:
        text = text.replace(typed, " ")
    return set(re.findall(r"[^\W\d_]+", _DATA.sub(" ", text))) & ENGLISH


def test_the_services_wrote_every_sentence(written: list[str]) -> None:
    """Each sentence this module reads was written by a service above (and nothing else)."""
    read = {parsed.message for text in written if (parsed := status_reasons.parse(text))}
    assert set(status_reasons.MESSAGES) - read == set()
    nested = [t for t in written if t.startswith("deceased on ") and "fatal adverse event" in t]
    assert nested


def test_every_written_reason_is_read_and_english_is_as_stored(written: list[str]) -> None:
    unread = [t for t in written if t not in TYPED and status_reasons.parse(t) is None]
    assert unread == []
    assert [t for t in written if status_reasons.localized(t, "en") != t] == []


@pytest.mark.parametrize("locale", ["it", "de"])
def test_no_english_is_left_and_dates_are_the_pages(written: list[str], locale: str) -> None:
    left = {}
    for text in written:
        shown = status_reasons.localized(text, locale)
        if text in TYPED:
            assert shown == text
            continue
        if words := _english_words(shown):
            left[text] = (shown, sorted(words))
        assert not re.search(r"\d{4}-\d{2}-\d{2}", shown), shown
        with i18n.use_locale(locale):
            days = [i18n.format_day(d) for d in re.findall(r"\d{4}-\d{2}-\d{2}", text)]
        assert all(day in shown for day in days), shown
    assert left == {}


def test_the_check_sees_english() -> None:
    assert _english_words("infusione 2 on 2 gen 2026") == {"on"}
    assert _english_words("esito registrato per ROM-101:1:rcl_test:1 'positive'") == set()


@pytest.mark.parametrize(
    ("stored", "italian", "german"),
    [
        (
            "infusion 2 on 2025-06-02",
            "infusione 2 del 2 giu 2025",
            "Infusion 2 vom 2. Juni 2025",
        ),
        (
            "death on 2026-01-02",
            "evento «decesso» del 2 gen 2026",
            "Ereignis „Tod“ vom 2. Jan. 2026",
        ),
        (
            "deceased on 2026-05-01: fatal adverse event ROM-103-AE01: Sepsis",
            "deceduto il 1 mag 2026: evento avverso fatale ROM-103-AE01: Sepsis",
            "verstorben am 1. Mai 2026: tödliches unerwünschtes Ereignis ROM-103-AE01: Sepsis",
        ),
        (
            "withdrawn on 2026-04-01: moved abroad",
            "ritirato il 1 apr 2026: moved abroad",
            "ausgeschieden am 1. Apr. 2026: moved abroad",
        ),
        (
            "completed recorded for ROM-101:1:immunoglobulins:1 with result '350'",
            "esito «eseguita» registrato per ROM-101:1:immunoglobulins:1, risultato '350'",
            "Ausgang „erledigt“ erfasst für ROM-101:1:immunoglobulins:1, Ergebnis '350'",
        ),
    ],
)
def test_what_a_reader_reads(stored: str, italian: str, german: str) -> None:
    assert status_reasons.localized(stored, "it") == italian
    assert status_reasons.localized(stored, "de") == german
    assert status_reasons.localized(stored, "en") == stored
    with i18n.use_locale("de"):  # the filter's way: the language of the rendering
        assert status_reasons.localized(stored) == german


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "Infusion 2 on 2025-06-02",
        "infusion 2 on 2025-02-30",  # no such day
        "infusion 2 on 2 Jun 2025",
        "protocol x amended from 1.0 to 1.1 yesterday",
        "adverse event ROM-101-AE01 deleted",
        "missed recorded for a key with spaces",
        "completed recorded for ROM-101:1:cbc:1 with result positive",  # not quoted
        "the family could not come",
    ],
)
def test_any_other_text_is_shown_as_stored(stored: str) -> None:
    assert status_reasons.parse(stored) is None
    for locale in i18n.LOCALES:
        assert status_reasons.localized(stored, locale) == stored
