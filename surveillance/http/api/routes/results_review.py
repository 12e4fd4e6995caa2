"""A site's results that need a typed value (stored as free text before results were
typed, matching no declared value), for its investigators to correct."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from surveillance.accounts.models import CLINICAL_ROLES
from surveillance.http.api.schemas import ResultToReviewPublic
from surveillance.http.deps import CurrentUser, State, visible_site
from surveillance.patients.results_to_review import results_to_review

router = APIRouter(prefix="/sites", tags=["sites"])


@router.get("/{site}/results-to-review", response_model=list[ResultToReviewPublic])
def read_results_to_review(site: str, state: State, user: CurrentUser) -> list[dict[str, Any]]:
    """Oldest performed first. Each is resolved by a correction to a typed value, with a
    reason (``POST /api/v1/assessments/{key}/corrections``)."""
    user.require_role(*CLINICAL_ROLES, to="review a site's results")
    with state.read() as session:
        visible_site(session, user, site)
        items = results_to_review(session, site_id=site, registry=state.registry)
    return [item.as_dict() for item in items]
