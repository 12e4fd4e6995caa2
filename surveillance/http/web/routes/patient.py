"""The patient page: facts, status, adverse events, the calendar as a picture and a table,
the newest rows of the audit trail (the whole trail: ``patient_audit``)."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta
from fastapi import APIRouter, Request, Response

import rules
from surveillance.accounts.models import CLINICAL_ROLES
from surveillance.adverse_events.queries import case_summaries
from surveillance.http.deps import AppState, State, visible_patient
from surveillance.http.web.ae_form import blank_form
from surveillance.http.web.audit_trail import audit_row
from surveillance.http.web.render import NO_SUCH_PATIENT, PageRoute, parse_day, render
from surveillance.http.web.routes.assessment_page import with_reason
from surveillance.http.web.session import CurrentWebUser, WebUser
from surveillance.http.web.timeline import (
    STATE_LABELS,
    STATES,
    TimelineItem,
    build_timeline,
    lane_order,
)
from surveillance.kit.audit import patient_trail, patient_trail_count
from surveillance.kit.bounds import check_as_of
from surveillance.kit.i18n import N_
from surveillance.patients.views import calendar_dicts, patient_dict
from surveillance.protocols.registry import get_protocol
from surveillance.records.sites import get_site

router = APIRouter(route_class=PageRoute, include_in_schema=False)
AUDIT_LIMIT = 50  # the newest; the whole trail has its own page, 100 rows a page


@router.get("/patients/{study_id}")
def patient_page(
    request: Request, study_id: str, state: State, user: CurrentWebUser, on: str = ""
) -> Response:
    return render(request, "patient.html", patient_context(state, user, study_id, on), user=user)


def patient_context(state: AppState, user: WebUser, study_id: str, on: str = "") -> dict[str, Any]:
    """The page's content (also re-shown, with the entries kept, when the AE form is refused)."""
    user.principal.require_role(*CLINICAL_ROLES, to=N_("open a patient's page"))
    with state.read() as session:
        patient = visible_patient(session, user.principal, study_id, missing=NO_SUCH_PATIENT)
        site = get_site(session, patient.site_id)
        assert patient.id is not None
        today = site.today(state.now())
        asked = parse_day(on)
        day = check_as_of(asked, today) if asked else today
        facts = patient_dict(session, patient)
        calendar = [
            with_reason(row)
            for row in calendar_dicts(session, patient, on=day, registry=state.registry)
        ]
        audit = patient_trail(session, patient_id=patient.id, newest_first=True, limit=AUDIT_LIMIT)
        audit_count = (
            len(audit)
            if len(audit) < AUDIT_LIMIT
            else patient_trail_count(session, patient_id=patient.id)
        )
        ae_cases = case_summaries(session, patient_id=patient.id)
    protocol = get_protocol(state.registry, patient.protocol_id, patient.protocol_version)
    context: dict[str, Any] = {
        "title": f"Patient {patient.study_id}",
        "patient": facts,
        "site": site,
        "protocol": protocol,
        "diagnosis": protocol.spec.diagnoses.get(patient.diagnosis, patient.diagnosis),
        "follow_up_ends": rules.end_of_follow_up(protocol, facts["infusions"]),
        "on": day,
        "today": today,
        "calendar": calendar,
        "counts": Counter(row["state"] for row in calendar),
        "states": STATES,
        "state_labels": STATE_LABELS,
        "timelines": _timelines(
            calendar, facts["infusions"], rules.end_of_follow_up(protocol, facts["infusions"]), day
        ),
        "audit": [audit_row(entry) for entry in audit],
        "audit_count": audit_count,
        "ae_cases": ae_cases,
        "ae_values": blank_form(today),
        "ae_errors": None,
        "correction": None,  # a correction form re-shown: what was typed, the error, the preview
    }
    return context


def _timelines(
    calendar: list[dict[str, Any]], infusions: list[date], ends: date, day: date
) -> list[tuple[str, Any]]:
    items = [
        TimelineItem(row["category"], row["state"], row["due"], row["key"], row) for row in calendar
    ]
    lanes = lane_order(items)
    first = min(infusions)
    whole = build_timeline(
        items,
        lanes=lanes,
        start=first - timedelta(days=30),
        end=ends,
        today=day,
        scale="years",
        anchor=first,
    )
    near = build_timeline(
        items,
        lanes=lanes,
        start=day - relativedelta(months=6),
        end=day + relativedelta(months=6),
        today=day,
        scale="months",
        anchor=first,
    )
    return [
        (N_("The whole follow-up"), whole),
        (N_("Six months either side of the day shown"), near),
    ]
