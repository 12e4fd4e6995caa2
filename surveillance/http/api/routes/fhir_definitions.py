"""The FHIR feed's own CodeSystems and extension StructureDefinitions, at their canonical
URLs (``/fhir/CodeSystem/{id}``, ``/fhir/StructureDefinition/{id}``), so a validator or a
consumer resolving a ``system`` or an extension ``url`` finds a definition, not a 404.

Public: terminology and structure only, nothing about any patient or case. The URLs
inside are built from ``SURVEILLANCE_BASE_URL``, as in the feed.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from surveillance.adverse_events.fhir_definitions import code_system, structure_definition
from surveillance.errors import NotFound
from surveillance.http.app_settings import AppSettings

router = APIRouter(prefix="/fhir", tags=["FHIR definitions"])
FHIR_JSON = "application/fhir+json"
_CONTENT: dict[int | str, dict[str, Any]] = {
    200: {"content": {FHIR_JSON: {}}, "description": "The FHIR R4 resource."}
}


def _answer(resource: dict[str, Any] | None, what: str) -> JSONResponse:
    if resource is None:
        raise NotFound(f"no {what}")
    headers = {"Cache-Control": "public, max-age=3600"}
    return JSONResponse(resource, media_type=FHIR_JSON, headers=headers)


@router.get("/CodeSystem/{system_id}", response_class=JSONResponse, responses=_CONTENT)
def read_code_system(system_id: str, settings: AppSettings) -> JSONResponse:
    """A code system of the adverse-event feed (category, causality, seriousness criteria)."""
    return _answer(code_system(settings.base_url, system_id), f"CodeSystem {system_id!r}")


@router.get("/StructureDefinition/{extension_id}", response_class=JSONResponse, responses=_CONTENT)
def read_structure_definition(extension_id: str, settings: AppSettings) -> JSONResponse:
    """The definition of an extension the adverse-event feed uses."""
    resource = structure_definition(settings.base_url, extension_id)
    return _answer(resource, f"StructureDefinition {extension_id!r}")
