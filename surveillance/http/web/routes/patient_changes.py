"""Changing a patient from the patient page: a re-infusion (with the calendar difference
shown before saving) and a status change (investigators and admins).

Both call the API's services (``patients.changes``), with the version the form was loaded
at: if someone changed the patient meanwhile, nothing is saved and the form says so.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request, Response

from surveillance.accounts.models import Role
from surveillance.errors import Conflict, Forbidden, InvalidInput, NotFound, PreconditionFailed
from surveillance.http.deps import AppState, State, visible_patient, visible_sites
from surveillance.http.web.effects_text import calendar_sentence
from surveillance.http.web.patient_forms import (
    ONLY_INVESTIGATORS,
    STATUS_CHOICES,
    FormEntry,
    change_lines,
    form_day,
    form_version,
    sentence,
)
from surveillance.http.web.render import (
    NO_SUCH_PATIENT,
    PageRoute,
    Sentence,
    redirect,
    render,
    set_flash,
    translate,
)
from surveillance.http.web.session import CurrentWebUser, WebUser, check_csrf
from surveillance.kit.i18n import N_, Later
from surveillance.kit.status_reasons import PATIENT_STATUS_LABELS
from surveillance.patients.changes import add_infusion, change_status
from surveillance.patients.previews import preview_infusion
from surveillance.patients.views import patient_dict
from surveillance.records.sites import get_site

router = APIRouter(route_class=PageRoute, include_in_schema=False)
Text = Annotated[str, Form()]
REINFUSION, STATUS = N_("Record a re-infusion"), N_("Change the patient's status")
_TITLES = {
    REINFUSION: N_("Record a re-infusion · {study_id}"),
    STATUS: N_("Change the patient's status · {study_id}"),
}
CHANGED_MEANWHILE = N_(
    "Nothing was saved: someone changed {study_id} after you opened this form. "
    "The form now shows the patient as it is; check it, then submit again."
)


@router.get("/patients/{study_id}/infusions/new")
def reinfusion_page(
    request: Request, study_id: str, state: State, user: CurrentWebUser
) -> Response:
    context = _context(state, user, study_id, FormEntry(), REINFUSION)
    return render(request, "reinfusion.html", context, user=user)


@router.post("/patients/{study_id}/infusions")
def reinfusion_form(
    request: Request,
    study_id: str,
    state: State,
    user: CurrentWebUser,
    csrf_token: Text = "",
    version: Text = "",
    infusion_date: Text = "",
    intent: Text = "preview",
) -> Response:
    """The "Preview the changes" button shows what the calendar gains, moves and loses."""
    check_csrf(user.csrf_token, csrf_token)
    values = {"infusion_date": infusion_date}
    try:
        with state.write() as session:
            patient = visible_patient(session, user.principal, study_id, missing=NO_SUCH_PATIENT)
            args: dict[str, Any] = {
                "study_id": patient.study_id,
                "on": form_day(infusion_date, "infusion_date", "infusion date"),
                "actor": user.principal.email,
                "registry": state.registry,
                "now": state.now(),
                "expected_version": form_version(version),
            }
            protocol_id = patient.protocol_id
            if intent == "preview":
                change = preview_infusion(session, **args)
            else:
                change = add_infusion(session, **args)
    except (InvalidInput, Conflict, PreconditionFailed) as exc:
        return _again(request, state, user, study_id, REINFUSION, values, exc)
    lines = change_lines(change, state.registry, protocol_id)
    if intent == "preview":
        entry = FormEntry(values)
        context = _context(state, user, study_id, entry, REINFUSION)
        context |= {"change": change, "lines": lines, "version": version}
        return render(request, "reinfusion.html", context, user=user)
    message = N_("Re-infusion on {on_day} saved for {study_id}.")
    said = [(message, {"on_day": args["on"].isoformat(), "study_id": study_id})]
    return _saved(request, study_id, [*said, calendar_sentence(change)])


@router.get("/patients/{study_id}/status")
def status_page(request: Request, study_id: str, state: State, user: CurrentWebUser) -> Response:
    _require_investigator(user)
    context = _context(state, user, study_id, FormEntry(), STATUS)
    return render(request, "patient_status.html", context, user=user)


@router.post("/patients/{study_id}/status")
def status_form(
    request: Request,
    study_id: str,
    state: State,
    user: CurrentWebUser,
    csrf_token: Text = "",
    version: Text = "",
    status: Text = "",
    date: Text = "",
    reason: Text = "",
    to_site: Text = "",
) -> Response:
    """Deceased, withdrawn, lost to follow-up, transferred or active again, with a reason."""
    check_csrf(user.csrf_token, csrf_token)
    values = {"status": status, "date": date, "reason": reason, "to_site": to_site}
    try:
        with state.write() as session:
            visible_patient(session, user.principal, study_id, missing=NO_SUCH_PATIENT)
            _require_investigator(user)
            if status not in STATUS_CHOICES:
                raise InvalidInput("choose the new status", field="status")
            if status == "transferred" and to_site:
                _require_destination(user, to_site)
            change = change_status(
                session,
                study_id=study_id,
                status=status,
                on=form_day(date, "date", "date of the change"),
                reason=reason.strip(),
                actor=user.principal.email,
                registry=state.registry,
                now=state.now(),
                to_site=(to_site or None) if status == "transferred" else None,
                expected_version=form_version(version),
            )
    except (InvalidInput, Conflict, PreconditionFailed) as exc:
        return _again(request, state, user, study_id, STATUS, values, exc)
    values = {
        "study_id": study_id,
        "status_label": PATIENT_STATUS_LABELS[status],
        "since_day": date,
    }
    said: list[Sentence] = [(N_("{study_id}: {status_label} since {since_day}."), values)]
    if not change.is_empty():
        said.append(calendar_sentence(change))
    return _saved(request, study_id, said)


def _require_investigator(user: WebUser) -> None:
    if user.role not in (Role.investigator, Role.admin):
        raise Forbidden(ONLY_INVESTIGATORS)


def _require_destination(user: WebUser, to_site: str) -> None:
    """A transfer goes to a site the user works at (as the API requires)."""
    try:
        user.principal.require_site(to_site)
    except NotFound as exc:
        raise InvalidInput(f"you do not work at a site {to_site!r}", field="to_site") from exc


def _context(
    state: AppState, user: WebUser, study_id: str, entry: FormEntry, title: str
) -> dict[str, Any]:
    with state.read() as session:
        patient = visible_patient(session, user.principal, study_id, missing=NO_SUCH_PATIENT)
        site = get_site(session, patient.site_id)
        facts = patient_dict(session, patient)
        others = [s for s in visible_sites(session, user.principal) if s.id != patient.site_id]
    return {
        "title": _TITLES[title],
        "title_args": {"study_id": patient.study_id},
        "heading": title,
        "patient": facts,
        "site": site,
        "today": site.today(state.now()),
        "entry": entry,
        "v": entry.values,
        "version": facts["version"],
        "statuses": STATUS_CHOICES,
        "other_sites": others,
        "change": None,
        "lines": [],
    }


def _again(
    request: Request,
    state: AppState,
    user: WebUser,
    study_id: str,
    title: str,
    values: dict[str, str],
    exc: InvalidInput | Conflict | PreconditionFailed,
) -> Response:
    """The form again, as typed, with the error beside its field (or above the form)."""
    if isinstance(exc, PreconditionFailed):
        meanwhile = Later(lambda: translate(CHANGED_MEANWHILE, {"study_id": study_id}))
        entry = FormEntry(values, meanwhile)
    else:
        field = exc.field if isinstance(exc, InvalidInput) else None
        entry = FormEntry(values, sentence(exc.message), field)
    template = "reinfusion.html" if title == REINFUSION else "patient_status.html"
    context = _context(state, user, study_id, entry, title)
    return render(request, template, context, user=user, status_code=exc.status_code)


def _saved(request: Request, study_id: str, message: list[Sentence]) -> Response:
    response = redirect(f"/patients/{quote(study_id)}")
    set_flash(request, response, "success", message)
    return response
