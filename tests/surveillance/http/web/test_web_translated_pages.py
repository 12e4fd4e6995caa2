"""The pages added for sites, admins and pharmacovigilance, in Italian and German: their
own words, the labels of stored values, dates in words, and no English left in the page's
main content. The clock stands at 2026-11-25 (Rome); ROM-101 is a Rome patient."""

from __future__ import annotations

import re
from datetime import date, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from support.web_support import NOW, USERS, SiteDb, csrf_of, sign_in_as

import rules
from notifications import _urls
from surveillance.accounts.auth import Refused
from surveillance.accounts.models import Role
from surveillance.adverse_events.cases import create_case
from surveillance.adverse_events.facts import CaseFacts
from surveillance.http.web.routes.webhooks import URL_REFUSALS
from surveillance.kit import i18n
from surveillance.kit.db import write_session
from surveillance.records.adverse_event_vocabulary import (
    CaseOutcome,
    Category,
    GradeScale,
    Relatedness,
    Seriousness,
)

HEADERS = {
    "it": {"Accept-Language": "it-IT,it;q=0.9"},
    "de": {"Accept-Language": "de-DE,de;q=0.9"},
}
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
SEPSIS = CaseFacts(
    onset_date=date(2026, 11, 20),
    awareness_date=date(2026, 11, 21),
    term="Sepsis",
    category=Category.infection,
    grade=4,
    grade_scale=GradeScale.ctcae_v5,
    serious=True,
    seriousness_criteria=(Seriousness.life_threatening,),
    relatedness=Relatedness.possibly_related,
    expected=False,
    outcome=CaseOutcome.recovering,
)


def _main(page: httpx.Response) -> str:
    """The visible text of the page's main content (no tags, no header or footer)."""
    found = re.search(r"<main\b.*?</main>", page.text, re.DOTALL)
    assert found is not None
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(0)))


def _hidden(page: httpx.Response, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page.text)
    assert found is not None, name
    return found.group(1)


def _no_english(page: httpx.Response, *phrases: str) -> None:
    text = _main(page)
    assert [phrase for phrase in phrases if phrase in text] == []


@pytest.fixture
def case(site_db: SiteDb) -> str:
    with write_session(site_db.engine) as session:
        return create_case(
            session,
            study_id="ROM-101",
            facts=SEPSIS,
            actor=USERS["nurse"][0],
            registry=rules.ProtocolRegistry.from_directory(),
            now=NOW - timedelta(days=1),
        ).case.case_id


CASE_PAGE = {
    "it": ["Evento avverso", "Infezione", "Perché è grave", "Pericolo di vita", "20 nov 2026"],
    "de": [
        "Unerwünschtes Ereignis",
        "Infektion",
        "Warum schwerwiegend",
        "Lebensbedrohlich",
        "20. Nov. 2026",
    ],
}
CASE_ENGLISH = (
    "What happened",
    "Why it is serious",
    "Life-threatening",
    "Reporting deadlines",
    "Add a follow-up",
    "Nullify this case",
    "Possibly related",
    "Pending",
    "Open",
    "2026-11-20",
    "2026-11-22",
)


@pytest.mark.parametrize("locale", ["it", "de"])
def test_the_case_page(pages: TestClient, case: str, locale: str) -> None:
    sign_in_as(pages, "nurse")
    page = pages.get(f"/adverse-events/{case}", headers=HEADERS[locale])
    assert page.status_code == 200
    assert f'<html lang="{locale}">' in page.text
    assert [word for word in CASE_PAGE[locale] if word not in page.text] == []
    _no_english(page, *CASE_ENGLISH)
    assert 'value="2026-11-20"' in page.text  # the follow-up form keeps ISO dates


SITE_CASES = {"it": ["Eventi avversi · Rome", "Solo gravi"], "de": ["Nur schwerwiegende"]}


@pytest.mark.parametrize("locale", ["it", "de"])
def test_the_sites_cases(pages: TestClient, case: str, locale: str) -> None:
    sign_in_as(pages, "nurse")
    page = pages.get("/sites/Rome/adverse-events", headers=HEADERS[locale])
    assert [word for word in SITE_CASES[locale] if word not in page.text] == []
    _no_english(page, "Serious only", "What happened", "every case", "Non-serious")


SAFETY = {
    "it": ["Casi di sicurezza", "Solo non confermati", "anni all'insorgenza", "femmina"],
    "de": ["Sicherheitsfälle", "Nur unbestätigte", "Jahre bei Beginn", "weiblich"],
}


@pytest.mark.parametrize("locale", ["it", "de"])
def test_the_safety_view(pages: TestClient, case: str, locale: str) -> None:
    sign_in_as(pages, "pharmacovigilance")
    listed = pages.get("/safety", headers=HEADERS[locale])
    assert listed.status_code == 200
    _no_english(listed, "Serious only", "Latest version", "Every adverse event case")
    page = pages.get(f"/safety/cases/{case}", headers=HEADERS[locale])
    assert page.status_code == 200
    assert [word for word in SAFETY[locale] if word not in page.text + listed.text] == []
    _no_english(page, *CASE_ENGLISH, "Acknowledgements", "years at onset")


WEBHOOKS = {
    "it": ["Endpoint webhook", "Aggiungi un endpoint", "Segreto di firma", "attivo"],
    "de": ["Webhook-Endpunkte", "Endpunkt hinzufügen", "Signaturgeheimnis", "aktiviert"],
}


@pytest.mark.parametrize("locale", ["it", "de"])
def test_the_webhooks_admin(pages: TestClient, locale: str) -> None:
    sign_in_as(pages, "admin")
    page = pages.get("/admin/webhooks", headers=HEADERS[locale])
    added = pages.post(
        "/admin/webhooks",
        data={
            "csrf_token": csrf_of(page),
            "url": "https://93.184.216.34/ltfu",
            "events": "assessment.overdue",
            "site": "",
        },
        headers=HEADERS[locale],
    )
    assert added.status_code == 201
    assert [word for word in WEBHOOKS[locale] if word not in added.text] == []
    _no_english(added, "Signing secret", "Copy it now", "Add an endpoint", "Rotate secret")
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", _main(added)) is None  # dates in words


URL_REFUSED = {
    "it": ("sono ammessi solo URL http e https", "è un indirizzo privato"),
    "de": ("nur http- und https-URLs sind erlaubt", "ist eine private, Loopback-"),
}


@pytest.mark.parametrize("locale", ["it", "de"])
def test_a_refused_webhook_url_is_said_in_the_admins_language(
    pages: TestClient, locale: str
) -> None:
    sign_in_as(pages, "admin")
    page = pages.get("/admin/webhooks", headers=HEADERS[locale])
    urls = ("ftp://receiver.example/x", "http://127.0.0.1/x")
    for url, said in zip(urls, URL_REFUSED[locale], strict=True):
        data = {"csrf_token": csrf_of(page), "url": url, "events": "assessment.overdue"}
        refused = pages.post("/admin/webhooks", data=data, headers=HEADERS[locale])
        assert refused.status_code == 422
        error = re.search(r'id="wh-url-error">([^<]*)<', refused.text)
        assert error is not None
        assert said in error.group(1)
        assert repr(url) in error.group(1).replace("&#39;", "'")
        _no_english(refused, "only http and https", "is a private")


def test_the_catalogs_know_every_reason_notifications_gives() -> None:
    """The page translates notifications' own templates: the two lists stay the same."""
    given = {value for name, value in vars(_urls).items() if name.startswith("URL_")}
    assert set(URL_REFUSALS) == given


PATIENTS = {
    "it": ["Pazienti · Rome", "Arruola un paziente", "Codice studio", "attivo", "25 nov 2026"],
    "de": ["Patienten · Rome", "Patienten einschließen", "Studien-ID", "aktiv", "25. Nov. 2026"],
}


@pytest.mark.parametrize("locale", ["it", "de"])
def test_the_patient_list(pages: TestClient, locale: str) -> None:
    sign_in_as(pages, "nurse")
    page = pages.get("/sites/Rome/patients", headers=HEADERS[locale])
    assert page.status_code == 200
    assert [word for word in PATIENTS[locale] if word not in page.text] == []
    _no_english(page, "Enrol a patient", "Study id", "Any status", "Due now", "2026-11-25")


ENROL = {
    "it": ["Arruola un paziente", "Data di nascita", "Anteprima del calendario", "femmina"],
    "de": ["Patienten einschließen", "Geburtsdatum", "Kalendervorschau", "weiblich"],
}


@pytest.mark.parametrize("locale", ["it", "de"])
def test_the_enrolment_form_and_its_preview(pages: TestClient, locale: str) -> None:
    sign_in_as(pages, "nurse")
    form = pages.get("/patients/new?site=Rome", headers=HEADERS[locale])
    assert [word for word in ENROL[locale] if word not in form.text] == []
    _no_english(form, "Birth date", "Preview calendar", "Infusion date", "Choose…")
    values = {
        "csrf_token": csrf_of(form),
        "study_id": "ROM-120",
        "site": "Rome",
        "birth_date": "2015-02-01",
        "sex": "F",
        "protocol": "cd19-car-t-pediatric-autoimmune",
        "diagnosis": "sle",
        "infusion_date": "2026-11-02",
        "intent": "preview",
    }
    preview = pages.post("/patients/new", data=values, headers=HEADERS[locale])
    assert preview.status_code == 200, _main(preview)
    said = {"it": "Non è ancora stato salvato nulla", "de": "Es wurde noch nichts gespeichert"}
    assert said[locale] in preview.text
    assert {"it": "2 nov 2026", "de": "2. Nov. 2026"}[locale] in preview.text
    _no_english(preview, "Nothing has been saved yet", "By category", "State today")


ERRORS = {
    "it": ("Non trovato", "Vai alla tua pagina iniziale", "Non consentito", "Solo gli"),
    "de": ("Nicht gefunden", "Zu Ihrer Startseite", "Nicht erlaubt", "Nur "),
}


@pytest.mark.parametrize("locale", ["it", "de"])
def test_the_error_pages(pages: TestClient, locale: str) -> None:
    not_found, start, not_allowed, only = ERRORS[locale]
    sign_in_as(pages, "nurse")
    headers = {**HEADERS[locale], "Accept": BROWSER}
    missing = pages.get("/no-such-page", headers=headers)
    assert missing.status_code == 404
    assert not_found in missing.text
    assert start in missing.text
    _no_english(missing, "There is no page", "Go to your start page", "Error 404")
    patient = pages.get("/patients/XYZ-999", headers=headers)
    assert patient.status_code == 404
    _no_english(patient, "There is no patient")
    refused = pages.get("/admin/webhooks", headers=headers)
    assert refused.status_code == 403
    assert not_allowed in refused.text
    assert only in _main(refused)
    _no_english(refused, "Only ", "You are signed in", "See what your role can do")


def test_the_refusal_stays_english_outside_the_pages() -> None:
    """The API's problem details carry the English sentence; only pages translate it."""
    refused = Refused((Role.investigator, Role.admin), Role.nurse, "change a patient's status")
    with i18n.use_locale("it"):
        assert refused.message == (
            "Only investigators and administrators can change a patient's status. "
            "You are signed in as a nurse."
        )


CALENDAR_SAID = {
    "it": r"Il calendario: 0 aggiunte, .* annullate",
    "de": r"Der Kalender: 0 hinzugefügt",
}
MONTHS = {"it": ("dic", "gen"), "de": ("Dez", "Jan")}


@pytest.mark.parametrize("locale", ["it", "de"])
def test_a_status_change_and_the_calendar_picture(pages: TestClient, locale: str) -> None:
    """What the change did to the calendar is said in the page's language, and the months
    under the calendar picture are named in it."""
    sign_in_as(pages, "investigator")
    form = pages.get("/patients/ROM-101/status", headers=HEADERS[locale])
    values = {
        "csrf_token": csrf_of(form),
        "version": _hidden(form, "version"),
        "status": "withdrawn",
        "date": "2026-11-25",
        "reason": "Consent withdrawn",
    }
    saved = pages.post("/patients/ROM-101/status", data=values, headers=HEADERS[locale])
    assert saved.status_code == 303, _main(saved)
    done = pages.get(saved.headers["location"], headers=HEADERS[locale])
    flash = re.search(r'class="flash flash-success"[^>]*>(.*?)</', done.text, re.DOTALL)
    assert flash is not None
    assert re.search(CALENDAR_SAID[locale], flash.group(1)), flash.group(1)
    assert " added, " not in flash.group(1)
    months = re.findall(r'<text class="tick-label"[^>]*>([^<]+)</text>', done.text)
    assert set(MONTHS[locale]) <= set(months), months
    assert "Dec" not in months or locale == "de"


@pytest.mark.parametrize(
    ("locale", "words"), [("it", "sicurezza del vettore"), ("de", "Vektorsicherheit")]
)
def test_categories_in_the_readers_language(pages: TestClient, locale: str, words: str) -> None:
    """The due list and the patient page (its table and calendar lanes) name categories
    in the reader's language, from the protocol file's ``categories``."""
    sign_in_as(pages, "nurse")
    for url in ("/sites/Rome/due", "/patients/ROM-101"):
        page = pages.get(url, headers=HEADERS[locale])
        assert words in page.text, url
        assert "vector-safety" not in _main(page), url
    english = pages.get("/patients/ROM-101")
    assert "vector-safety" in _main(english)
