"""The safety view: read-only, for pharmacovigilance (and admins). Every case, latest
change first, with each safety system's acknowledgement; a case with its versions.

Pseudonymous as the feed: what these pages show comes from the feed's content
(``adverse_events.views.case_content``), never from the patient record, so no name,
birth date or infusion date can appear. Nothing here writes.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from surveillance.accounts.models import Role
from surveillance.adverse_events.cases import get_case
from surveillance.adverse_events.queries import case_detail
from surveillance.adverse_events.safety_view import acknowledgements_of, safety_cases
from surveillance.errors import NotFound
from surveillance.http.deps import State
from surveillance.http.web.ae_views import side_by_side
from surveillance.http.web.render import PageRoute, render
from surveillance.http.web.session import CurrentWebUser
from surveillance.kit.i18n import N_

router = APIRouter(route_class=PageRoute, include_in_schema=False)
READERS = (Role.pharmacovigilance, Role.admin)  # who reads the feed
LIMIT = 200


@router.get("/safety")
def safety_page(
    request: Request,
    state: State,
    user: CurrentWebUser,
    serious: str = "",
    unacknowledged: str = "",
) -> Response:
    """Latest change first; ``serious=1`` and ``unacknowledged=1`` narrow the list."""
    user.principal.require_role(*READERS)
    serious_only, open_only = serious == "1", unacknowledged == "1"
    with state.read() as session:
        found = safety_cases(
            session, serious_only=serious_only, unacknowledged_only=open_only, limit=LIMIT
        )
    context = {
        "title": N_("Safety cases"),
        "cases": found.cases,
        "more": found.more,
        "limit": LIMIT,
        "serious_only": serious_only,
        "unacknowledged_only": open_only,
    }
    return render(request, "safety_cases.html", context, user=user)


@router.get("/safety/cases/{case_id}")
def safety_case_page(
    request: Request, case_id: str, state: State, user: CurrentWebUser
) -> Response:
    """The case's versions side by side (as the feed carried each) and every answer."""
    user.principal.require_role(*READERS)
    with state.read() as session:
        try:
            case = get_case(session, case_id)
        except NotFound:
            missing = N_("There is no adverse event {case_id!r}.")
            raise NotFound(
                missing.format(case_id=case_id), template=missing, values={"case_id": case_id}
            ) from None
        today = state.today_at(state.site(session, case.site_id))
        detail = case_detail(session, case, state.registry, on=today)
        acks = acknowledgements_of(session, case_id)
    # Who recorded each version stays at the site (the feed does not carry it): no names.
    columns, rows = side_by_side(detail["versions"], {})
    context: dict[str, Any] = {
        "title": N_("Safety case {case_id}"),
        "title_args": {"case_id": case_id},
        "case": detail,  # case_id, version, status: not the stored row
        "current": detail["current"],
        "columns": columns,
        "rows": rows,
        "acks": acks,
    }
    return render(request, "safety_case.html", context, user=user)
