"""The investigator dashboard: per site, how well follow-up is kept and who is slipping away.

Investigators and admins land here; nurses may open it too, for their own sites only
(the same figures help them plan the week). Pharmacovigilance may not (clinical, per site).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from dateutil.relativedelta import relativedelta
from fastapi import APIRouter, Request, Response
from sqlmodel import Session

from surveillance.accounts.models import CLINICAL_ROLES
from surveillance.http.deps import State, visible_sites
from surveillance.http.web.ae_views import dashboard_serious_cases
from surveillance.http.web.render import PageRoute, parse_day, render
from surveillance.http.web.routes.escalations import dashboard_escalations
from surveillance.http.web.session import CurrentWebUser
from surveillance.kit.i18n import N_
from surveillance.patients import compliance
from surveillance.patients.results_to_review import count_results_to_review
from surveillance.records.patients import Site

router = APIRouter(route_class=PageRoute, include_in_schema=False)
OLDEST_PER_SITE = 5
# The on-time rate counts the windows that closed in this many months before the day shown.
RATE_MONTHS = 12


@dataclass(frozen=True)
class SitePanel:
    site: Site
    on: date
    figures: compliance.SiteCompliance
    at_risk: list[compliance.AtRiskPatient]
    oldest: list[compliance.OverdueItem]


@router.get("/dashboard")
def dashboard_page(request: Request, state: State, user: CurrentWebUser, on: str = "") -> Response:
    user.principal.require_role(*CLINICAL_ROLES, to=N_("see the sites' dashboard"))
    chosen = parse_day(on)
    with state.read() as session:
        sites = visible_sites(session, user.principal)
        # "Today" is local to each site: group sites by their date, one set of queries per date.
        by_day: dict[date, list[Site]] = defaultdict(list)
        for site in sites:
            by_day[chosen or site.today(state.now())].append(site)
        panels: list[SitePanel] = []
        for day, group in by_day.items():
            panels += _panels(session, state, group, day)
        escalations = dashboard_escalations(
            request, session, user, [(p.site, p.on) for p in panels]
        )
        serious = dashboard_serious_cases(request, session, [(p.site, p.on) for p in panels])
        # Results stored as free text that need a typed value: a link per site when any.
        to_review = count_results_to_review(session, [site.id for site in sites])
    panels.sort(key=lambda p: p.site.id)
    context = {
        "title": N_("Dashboard"),
        "panels": panels,
        "chosen": chosen,
        "oldest_per_site": OLDEST_PER_SITE,
        "escalations": escalations,
        "serious": serious,
        "to_review": to_review,
    }
    return render(request, "dashboard.html", context, user=user)


def _panels(session: Session, state: State, sites: list[Site], day: date) -> list[SitePanel]:
    ids = [site.id for site in sites]
    since = day - relativedelta(months=RATE_MONTHS)
    figures = compliance.site_compliance(session, site_ids=ids, on=day, since=since)
    at_risk = compliance.at_risk_of_loss(session, site_ids=ids, on=day)
    oldest = compliance.oldest_overdue(
        session, site_ids=ids, on=day, registry=state.registry, per_site=OLDEST_PER_SITE
    )
    return [
        SitePanel(
            site=site,
            on=day,
            figures=figure,
            at_risk=[p for p in at_risk if p.site_id == site.id],
            oldest=[o for o in oldest if o.site_id == site.id],
        )
        for site, figure in zip(sites, figures, strict=True)
    ]
