"""The site's results that need a typed value: free text stored before results were typed
that matched no declared value, each linked to the patient page where it is corrected."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from surveillance.accounts.models import CLINICAL_ROLES
from surveillance.http.deps import State, visible_site
from surveillance.http.web.render import PageRoute, render
from surveillance.http.web.session import CurrentWebUser
from surveillance.kit.i18n import N_
from surveillance.patients.results_to_review import DEFAULT_LIMIT, results_to_review

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/sites/{site_id}/results-to-review")
def results_to_review_page(
    request: Request, site_id: str, state: State, user: CurrentWebUser
) -> Response:
    user.principal.require_role(*CLINICAL_ROLES, to=N_("review a site's results"))
    with state.read() as session:
        site = visible_site(session, user.principal, site_id)
        items = results_to_review(session, site_id=site.id, registry=state.registry)
    context = {
        "title": N_("Results to review · {site}"),
        "title_args": {"site": site.id},
        "site": site,
        "items": items,
        "truncated": len(items) >= DEFAULT_LIMIT,
        "limit": DEFAULT_LIMIT,
    }
    return render(request, "results_to_review.html", context, user=user)
