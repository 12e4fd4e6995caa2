"""A site's patients (search and filters) and enrolling one, with a preview of the calendar.

Enrolment calls the API's service (``patients.enrolment.enroll``); its preview runs the
same call in a savepoint that is rolled back (``patients.previews``).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Request, Response

from surveillance.accounts.models import CLINICAL_ROLES
from surveillance.errors import Conflict, InvalidInput, NotFound, UnknownProtocol
from surveillance.http.deps import AppState, State, visible_site, visible_sites
from surveillance.http.web.patient_forms import (
    FormEntry,
    calendar_preview,
    form_day,
    sentence,
)
from surveillance.http.web.render import PageRoute, redirect, render, set_flash
from surveillance.http.web.session import CurrentWebUser, WebUser, check_csrf
from surveillance.kit.i18n import N_
from surveillance.patients.enrolment import SEXES, Enrolment, enroll
from surveillance.patients.patient_list import PatientFilter, patient_page
from surveillance.patients.previews import preview_enrolment
from surveillance.records.patients import PatientStatus

router = APIRouter(route_class=PageRoute, include_in_schema=False)
Text = Annotated[str, Form()]
# A transfer is stored as "active" at the new site (see ``changes.change_status``).
LISTED_STATUSES = [s.value for s in PatientStatus if s is not PatientStatus.transferred]
ENROL_FIELDS = ("study_id", "site", "birth_date", "sex", "diagnosis", "protocol", "infusion_date")


@router.get("/sites/{site_id}/patients")
def patients_page(
    request: Request,
    site_id: str,
    state: State,
    user: CurrentWebUser,
    q: str = "",
    status: str = "",
    protocol: str = "",
    overdue: str = "",
    after: str = "",
) -> Response:
    """The site's patients by study id: search, filters, overdue and due counts per row."""
    user.principal.require_role(*CLINICAL_ROLES)
    wanted = PatientFilter(
        search=q,
        status=status if status in LISTED_STATUSES else "",
        protocol=protocol if protocol in state.registry.ids() else "",
        overdue_only=bool(overdue),
    )
    with state.read() as session:
        site = visible_site(session, user.principal, site_id)
        today = site.today(state.now())
        page = patient_page(
            session,
            site_id=site.id,
            on=today,
            reporting=state.registry.reporting_categories(),
            wanted=wanted,
            after=after or None,
        )
    filters = {"q": q, "status": wanted.status, "protocol": wanted.protocol}
    filters |= {"overdue": "1"} if wanted.overdue_only else {}
    query = urlencode({k: v for k, v in filters.items() if v})
    context = {
        "title": N_("Patients · {site}"),
        "title_args": {"site": site.id},
        "site": site,
        "today": today,
        "page": page,
        "wanted": wanted,
        "statuses": LISTED_STATUSES,
        "protocols": state.registry.ids(),
        "after": after,
        "first_url": f"/sites/{quote(site.id)}/patients" + (f"?{query}" if query else ""),
        "next_url": (
            f"/sites/{quote(site.id)}/patients?{urlencode({**filters, 'after': page.next_after})}"
            if page.next_after
            else None
        ),
    }
    return render(request, "patients.html", context, user=user)


@router.get("/patients/new")
def enrol_page(request: Request, state: State, user: CurrentWebUser, site: str = "") -> Response:
    """The enrolment form, the site preselected."""
    entry = FormEntry({"site": site, "sex": "", "protocol": ""})
    return render(request, "enrol.html", _enrol_context(state, user, entry), user=user)


@router.post("/patients/new")
def enrol_form(
    request: Request,
    state: State,
    user: CurrentWebUser,
    csrf_token: Text = "",
    study_id: Text = "",
    site: Text = "",
    birth_date: Text = "",
    sex: Text = "",
    diagnosis: Text = "",
    protocol: Text = "",
    infusion_date: Text = "",
    intent: Text = "preview",
) -> Response:
    """The "Preview calendar" button shows what enrolling stores; "Enrol" stores it."""
    check_csrf(user.csrf_token, csrf_token)
    user.principal.require_role(*CLINICAL_ROLES)
    typed = (study_id, site, birth_date, sex, diagnosis, protocol, infusion_date)
    values = dict(zip(ENROL_FIELDS, typed, strict=True))
    try:
        enrolment = _enrolment(user, values)
        with state.write() as session:
            visible_site(session, user.principal, enrolment.site_id)
            args: dict[str, Any] = {
                "registry": state.registry,
                "now": state.now(),
                "actor": user.principal.email,
            }
            if intent == "preview":
                calendar = preview_enrolment(session, enrolment, **args)
            else:
                enroll(session, [enrolment], **args)
                calendar = None
    except (InvalidInput, Conflict, NotFound) as exc:
        entry = FormEntry(values, sentence(exc.message), _field_of(exc))
        context = _enrol_context(state, user, entry)
        return render(request, "enrol.html", context, user=user, status_code=exc.status_code)
    if calendar is not None:
        context = _enrol_context(state, user, FormEntry(values)) | {
            "preview": calendar_preview(calendar)
        }
        return render(request, "enrol.html", context, user=user)
    response = redirect(f"/patients/{quote(enrolment.study_id)}")
    said = N_("Enrolled {study_id} at {site}.")
    set_flash(request, response, "success", said, study_id=enrolment.study_id, site=site)
    return response


def _enrolment(user: WebUser, values: dict[str, str]) -> Enrolment:
    """The form's values for ``enroll``; what cannot be read is an error beside its field."""
    study_id = values["study_id"].strip().upper()
    if not study_id:
        raise InvalidInput("give the patient's study id", field="study_id")
    if not values["site"]:
        raise InvalidInput("choose the site that follows the patient", field="site")
    if values["sex"] not in SEXES:
        raise InvalidInput("choose F or M", field="sex")
    if not values["protocol"]:
        raise InvalidInput("choose the protocol", field="protocol")
    if not values["diagnosis"]:
        raise InvalidInput("choose the diagnosis", field="diagnosis")
    return Enrolment(
        study_id,
        values["site"],
        form_day(values["birth_date"], "birth_date", "birth date"),
        values["sex"],
        values["diagnosis"],
        values["protocol"],
        form_day(values["infusion_date"], "infusion_date", "infusion date"),
    )


def _field_of(exc: Exception) -> str | None:
    if isinstance(exc, UnknownProtocol):
        return "protocol"
    if isinstance(exc, Conflict):  # one patient at a time: only the study id can clash
        return "study_id"
    if isinstance(exc, NotFound):  # a site the user does not work at
        return "site"
    return exc.field if isinstance(exc, InvalidInput) else None


def _enrol_context(state: AppState, user: WebUser, entry: FormEntry) -> dict[str, Any]:
    user.principal.require_role(*CLINICAL_ROLES)
    with state.read() as session:
        sites = visible_sites(session, user.principal)
        today = {site.id: site.today(state.now()) for site in sites}
    protocols = [state.registry.get(pid) for pid in state.registry.ids()]
    return {
        "title": N_("Enrol a patient"),
        "entry": entry,
        "v": entry.values,
        "sites": sites,
        "today": max(today.values()) if today else None,
        "protocols": protocols,
        "sexes": SEXES,
        "preview": None,
    }
