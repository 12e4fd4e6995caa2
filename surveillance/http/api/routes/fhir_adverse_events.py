"""The FHIR read of one adverse event, where the feed Bundle's ``fullUrl`` points:
``[base]/fhir/AdverseEvent/[id]`` (the latest version) and
``[base]/fhir/AdverseEvent/[id]/_history/[vid]`` (one version, as each history entry's
``response.location`` names it). The same resource the feed carries for that version,
for the feed's roles (pharmacovigilance, admin).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from surveillance.accounts.auth import Principal
from surveillance.accounts.models import Role
from surveillance.adverse_events.feed import case_entries
from surveillance.adverse_events.fhir import adverse_event
from surveillance.errors import NotFound
from surveillance.http.deps import AppState, CurrentUser, State

router = APIRouter(prefix="/fhir", tags=["pharmacovigilance feed"])
FHIR_JSON = "application/fhir+json"
_CONSUMERS = (Role.pharmacovigilance, Role.admin)
_CONTENT: dict[int | str, dict[str, Any]] = {
    200: {"content": {FHIR_JSON: {}}, "description": "An R4 AdverseEvent."}
}


@router.get("/AdverseEvent/{resource_id}", response_class=JSONResponse, responses=_CONTENT)
def read_adverse_event(resource_id: str, state: State, user: CurrentUser) -> JSONResponse:
    """The case's latest version, as the feed sent it."""
    return _read(state, user, resource_id, None)


@router.get(
    "/AdverseEvent/{resource_id}/_history/{version_id}",
    response_class=JSONResponse,
    responses=_CONTENT,
)
def read_adverse_event_version(
    resource_id: str, version_id: str, state: State, user: CurrentUser
) -> JSONResponse:
    """One version of the case (R4 vread), as the feed sent it."""
    return _read(state, user, resource_id, version_id)


def _read(
    state: AppState, user: Principal, resource_id: str, version_id: str | None
) -> JSONResponse:
    user.require_role(*_CONSUMERS)
    # A case id is its own FHIR id: study ids are [A-Z0-9-] (enrolment), so the feed's
    # fhir_id never has to hash one.
    with state.read() as session:
        entries = case_entries(session, resource_id, registry=state.registry)
    if version_id is not None:
        entries = [e for e in entries if str(e["version"]) == version_id]
    if not entries:
        what = f"AdverseEvent {resource_id!r}"
        raise NotFound(f"no {what}" + ("" if version_id is None else f" version {version_id}"))
    entry = entries[-1]
    resource = adverse_event(entry["case"], change=entry["change"], base_url=state.base_url)
    version = entry["version"]
    headers = {
        "ETag": f'W/"{version}"',
        "Content-Location": f"/fhir/AdverseEvent/{resource['id']}/_history/{version}",
        "Cache-Control": "private, no-cache",
    }
    return JSONResponse(resource, media_type=FHIR_JSON, headers=headers)
