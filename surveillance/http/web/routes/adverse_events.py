"""Adverse-event pages: record a case from the patient page, the case with its versions
side by side (follow-up and nullify forms), and a site's list of cases.

Nurses, investigators and admins of the patient's site; another site's case is the same
404 as a missing one, and pharmacovigilance reads the feed, not these pages (403).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request, Response

from surveillance.accounts.models import CLINICAL_ROLES
from surveillance.adverse_events.cases import (
    CaseChange,
    add_follow_up,
    create_case,
    facts_of,
    nullify_case,
    versions_of,
)
from surveillance.adverse_events.queries import case_detail, case_summaries, recorded_by
from surveillance.errors import Conflict, InvalidInput, PreconditionFailed
from surveillance.http.deps import AppState, State, visible_patient, visible_site
from surveillance.http.web.ae_form import AeFormData, form_errors, form_of, reporter_of, to_facts
from surveillance.http.web.ae_labels import all_tables
from surveillance.http.web.ae_views import side_by_side, visible_case
from surveillance.http.web.render import (
    NO_SUCH_PATIENT,
    TEMPLATES,
    PageRoute,
    Sentence,
    redirect,
    render,
    set_flash,
)
from surveillance.http.web.routes.patient import patient_context
from surveillance.http.web.session import CurrentWebUser, WebUser, check_csrf
from surveillance.kit.i18n import N_
from surveillance.kit.sqltypes import MAX_INTEGER
from surveillance.records.adverse_event_vocabulary import CaseStatus
from surveillance.records.patients import Patient
from surveillance.records.sites import get_site

router = APIRouter(route_class=PageRoute, include_in_schema=False)
_WRITERS = CLINICAL_ROLES
SITE_LIMIT = 500
# A stale form: the page shows the newer version; the entries stay, re-based on it.
STALE = N_(
    "Nothing was saved: someone changed this case first. Reload the page to see the latest "
    "version; your entries are kept below, to check against the table and save again."
)
# The labels the AE templates read (patient page and dashboard included): this module is
# always installed with the pages.
TEMPLATES.env.globals["ae"] = all_tables()


@router.post("/patients/{study_id}/adverse-events")
def record_adverse_event_form(
    request: Request,
    study_id: str,
    state: State,
    user: CurrentWebUser,
    data: Annotated[AeFormData, Form()],
) -> Response:
    """Version 1 of a new case; refused entries come back on the patient page (422)."""
    check_csrf(user.csrf_token, data.csrf_token)
    user.principal.require_role(*_WRITERS, to=N_("work with a site's adverse events"))
    try:
        facts = to_facts(data, reporter_of(user.principal))
        with state.write() as session:
            visible_patient(session, user.principal, study_id, missing=NO_SUCH_PATIENT)
            change = create_case(
                session,
                study_id=study_id,
                facts=facts,
                actor=user.principal.email,
                registry=state.registry,
                now=state.now(),
            )
    except InvalidInput as exc:
        context = patient_context(state, user, study_id)
        context |= {"ae_values": data, "ae_errors": form_errors(exc.message)}
        return render(request, "patient.html", context, user=user, status_code=422)
    said = {"case_id": change.case.case_id, "term": change.case.term}
    return _saved(request, change, (N_("Recorded {case_id}: {term}."), said))


@router.get("/adverse-events/{case_id}")
def case_page(request: Request, case_id: str, state: State, user: CurrentWebUser) -> Response:
    return render(
        request, "adverse_event_case.html", _case_context(state, user, case_id), user=user
    )


@router.post("/adverse-events/{case_id}/versions")
def follow_up_form(
    request: Request,
    case_id: str,
    state: State,
    user: CurrentWebUser,
    data: Annotated[AeFormData, Form()],
) -> Response:
    """The whole case as now known becomes the next version, if nobody changed it first."""
    check_csrf(user.csrf_token, data.csrf_token)
    user.principal.require_role(*_WRITERS, to=N_("work with a site's adverse events"))
    try:
        facts = to_facts(data, reporter_of(user.principal))
        expected = _version(data.version)
        with state.write() as session:
            visible_case(session, user.principal, case_id)
            change = add_follow_up(
                session,
                case_id=case_id,
                facts=facts,
                actor=user.principal.email,
                registry=state.registry,
                now=state.now(),
                expected_version=expected,
            )
    except (PreconditionFailed, Conflict) as exc:
        context = _case_context(state, user, case_id, follow_up=data, stale=True)
        return _refused(request, user, context, _clash(exc, context), status_code=409)
    except InvalidInput as exc:
        context = _case_context(state, user, case_id, follow_up=data)
        context["follow_up_errors"] = form_errors(exc.message)
        return _refused(request, user, context, N_("Nothing was saved: see the form below."))
    version = change.version.version
    said = {"version": version, "case_id": case_id}
    return _saved(request, change, (N_("Saved version {version} of {case_id}."), said))


@router.post("/adverse-events/{case_id}/nullify")
def nullify_form(
    request: Request,
    case_id: str,
    state: State,
    user: CurrentWebUser,
    csrf_token: Annotated[str, Form()] = "",
    version: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> Response:
    """A case entered in error: a last version says so, with the reason; nothing is deleted."""
    check_csrf(user.csrf_token, csrf_token)
    user.principal.require_role(*_WRITERS, to=N_("work with a site's adverse events"))
    try:
        expected = _version(version)
        with state.write() as session:
            visible_case(session, user.principal, case_id)
            change = nullify_case(
                session,
                case_id=case_id,
                reason=reason,
                actor=user.principal.email,
                registry=state.registry,
                now=state.now(),
                expected_version=expected,
            )
    except (PreconditionFailed, Conflict) as exc:
        context = _case_context(state, user, case_id, reason=reason)
        return _refused(request, user, context, _clash(exc, context), status_code=409)
    except InvalidInput as exc:
        context = _case_context(state, user, case_id, reason=reason)
        context["nullify_error"] = exc.message.removeprefix("reason: ")
        not_nullified = N_("The case was not nullified: {problem}.")
        return _refused(request, user, context, (not_nullified, {"problem": exc.message}))
    said = (N_("Nullified {case_id}. Its versions stay readable below."), {"case_id": case_id})
    return _saved(request, change, said)


@router.get("/sites/{site_id}/adverse-events")
def site_cases_page(
    request: Request, site_id: str, state: State, user: CurrentWebUser, serious: str = ""
) -> Response:
    """Every case at the site, newest awareness first; ``?serious=1``: serious ones only."""
    user.principal.require_role(*_WRITERS, to=N_("work with a site's adverse events"))
    with state.read() as session:
        site = visible_site(session, user.principal, site_id)
        serious_only = serious not in ("", "0")
        cases = case_summaries(
            session, site_ids={site.id}, serious_only=serious_only, limit=SITE_LIMIT
        )
    truncated = len(cases) >= SITE_LIMIT
    context = {
        "title": N_("Adverse events · {site}"),
        "title_args": {"site": site.id},
        "site": site,
        "cases": cases,
        "serious_only": serious_only,
        "truncated": truncated,
        "limit": SITE_LIMIT,
    }
    return render(request, "adverse_events_site.html", context, user=user)


# -- the steps -----------------------------------------------------------------------------


def _case_context(
    state: AppState,
    user: WebUser,
    case_id: str,
    *,
    follow_up: AeFormData | None = None,
    stale: bool = False,
    reason: str = "",
) -> dict[str, Any]:
    """The case page; ``follow_up`` keeps refused entries (``stale``: against the latest)."""
    user.principal.require_role(*_WRITERS, to=N_("work with a site's adverse events"))
    with state.read() as session:
        case = visible_case(session, user.principal, case_id)
        patient = session.get(Patient, case.patient_id)
        site = get_site(session, case.site_id)
        assert patient is not None
        assert site is not None
        today = site.today(state.now())
        detail = case_detail(session, case, state.registry, on=today)
        who = recorded_by(session, case_id)
        latest = versions_of(session, case_id)[-1]
    columns, rows = side_by_side(detail["versions"], who)
    form = follow_up or form_of(facts_of(latest), case.version, today)
    if stale:  # saving again is a decision taken after seeing the newer version
        form = form.model_copy(update={"version": str(case.version)})
    return {
        "title": N_("Adverse event {case_id}"),
        "title_args": {"case_id": case.case_id},
        "case": case,
        "patient": patient,
        "site": site,
        "today": today,
        "current": detail["current"],
        "columns": columns,
        "rows": rows,
        "deadlines": detail["reporting_deadlines"],
        "follow_up": form,
        "follow_up_errors": None,
        "reason": reason,
        "nullify_error": None,
        "page_error": None,
    }


def _refused(
    request: Request,
    user: WebUser,
    context: dict[str, Any],
    message: str | Sentence,
    status_code: int = 422,
) -> Response:
    """The case page again, ``message`` above it (English, translated when shown)."""
    text, values = (message, {}) if isinstance(message, str) else message
    context["page_error"], context["page_error_args"] = text, values
    return render(request, "adverse_event_case.html", context, user=user, status_code=status_code)


def _clash(exc: PreconditionFailed | Conflict, context: dict[str, Any]) -> Sentence:
    """Why a change to a case that moved on was refused, as the page now shows it."""
    if context["case"].status == CaseStatus.nullified.value:
        meanwhile = N_("Nothing was saved: {case_id} was nullified meanwhile.")
        return meanwhile, {"case_id": context["case"].case_id}
    if isinstance(exc, PreconditionFailed):
        return STALE, {}
    return N_("Nothing was saved: {problem}."), {"problem": exc}


def _saved(request: Request, change: CaseChange, message: Sentence) -> Response:
    case = change.case
    said = [message]
    if change.version.version == 1 and case.serious:  # a new serious case alerts at once
        serious = N_(
            "It is serious: the site's investigators and the safety systems are alerted, and "
            "its reporting deadlines are listed below."
        )
        said.append((serious, {}))
    if change.deceased:
        said.append((N_("The patient is now recorded as deceased."), {}))
    response = redirect(f"/adverse-events/{quote(case.case_id)}")
    set_flash(request, response, "success", said)
    return response


def _version(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or len(value) > len(str(MAX_INTEGER)):
        raise InvalidInput("the form lost the case's version; reload the page and try again")
    return int(value)
