"""Every definition our FHIR output names under SURVEILLANCE_BASE_URL, at its URL, so a
validator or a consumer resolving a ``system``, an extension ``url``, a canonical or an
identifier system finds a definition, not a 404:

* ``/fhir/CodeSystem/{id}``: the feed's, the assessment categories, each protocol's
  assessments and each coded result;
* ``/fhir/StructureDefinition/{id}``: every extension the feed, the PlanDefinition and the
  CarePlan's ServiceRequests use;
* ``/fhir/PlanDefinition/{id}``: a protocol (the newest version by its canonical, one
  version by its resource id);
* ``/{system}`` (``/study-ids``, ``/adverse-events``...): each identifier system we issue,
  as a NamingSystem.

Public, like a terminology server: validators resolve canonicals without the site's
tokens. Nothing here is about a patient or a case: the protocols are the follow-up
plans the package ships (the same for every patient, citing public guidance). The URLs
inside are built from ``SURVEILLANCE_BASE_URL``, as in the feed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from surveillance.adverse_events import fhir_definitions as feed_terms
from surveillance.errors import NotFound
from surveillance.http.app_settings import AppSettings
from surveillance.http.deps import State
from surveillance.kit.fhir_conformance import IdentifierSystem, naming_system
from surveillance.patients import fhir_careplan as care_plan_terms
from surveillance.protocols import fhir_terms as protocol_terms

router = APIRouter(prefix="/fhir", tags=["FHIR definitions"])
identifier_systems = APIRouter(tags=["FHIR definitions"])
FHIR_JSON = "application/fhir+json"
_CONTENT: dict[int | str, dict[str, Any]] = {
    200: {"content": {FHIR_JSON: {}}, "description": "The FHIR R4 resource."}
}
IDENTIFIER_SYSTEMS: dict[str, IdentifierSystem] = {
    **feed_terms.IDENTIFIER_SYSTEMS,
    **protocol_terms.IDENTIFIER_SYSTEMS,
    **care_plan_terms.IDENTIFIER_SYSTEMS,
}


def _answer(resource: dict[str, Any] | None, what: str) -> JSONResponse:
    if resource is None:
        raise NotFound(f"no {what}")
    headers = {"Cache-Control": "public, max-age=3600"}
    return JSONResponse(resource, media_type=FHIR_JSON, headers=headers)


@router.get("/CodeSystem/{system_id}", response_class=JSONResponse, responses=_CONTENT)
def read_code_system(system_id: str, settings: AppSettings, state: State) -> JSONResponse:
    """A code system of the adverse-event feed (category, causality, seriousness criteria)
    or of the protocols (assessment categories, a protocol's assessments, coded results)."""
    resource = feed_terms.code_system(settings.base_url, system_id) or protocol_terms.code_system(
        state.registry, settings.base_url, system_id
    )
    return _answer(resource, f"CodeSystem {system_id!r}")


@router.get("/StructureDefinition/{extension_id}", response_class=JSONResponse, responses=_CONTENT)
def read_structure_definition(extension_id: str, settings: AppSettings) -> JSONResponse:
    """The definition of an extension the feed, the PlanDefinition or the CarePlan uses."""
    resource = (
        feed_terms.structure_definition(settings.base_url, extension_id)
        or protocol_terms.structure_definition(settings.base_url, extension_id)
        or care_plan_terms.structure_definition(settings.base_url, extension_id)
    )
    return _answer(resource, f"StructureDefinition {extension_id!r}")


@router.get("/PlanDefinition/{plan_id}", response_class=JSONResponse, responses=_CONTENT)
def read_plan_definition(plan_id: str, settings: AppSettings, state: State) -> JSONResponse:
    """A protocol as a PlanDefinition: ``{protocol id}`` (the canonical URL a CarePlan
    instantiates) is the newest version, ``{protocol id}-{version}`` that version."""
    resource = protocol_terms.plan_definition_resource(state.registry, settings.base_url, plan_id)
    return _answer(resource, f"PlanDefinition {plan_id!r}")


def _naming_system_route(path: str, spec: IdentifierSystem) -> Callable[..., JSONResponse]:
    def read(settings: AppSettings) -> JSONResponse:
        return _answer(naming_system(settings.base_url, path, spec), path)

    read.__name__ = f"read_{path.replace('-', '_')}_identifier_system"
    read.__doc__ = f"The identifier system {spec.name!r}, as an R4 NamingSystem."
    return read


for _path, _spec in IDENTIFIER_SYSTEMS.items():
    identifier_systems.add_api_route(
        f"/{_path}",
        _naming_system_route(_path, _spec),
        methods=["GET"],
        response_class=JSONResponse,
        responses=_CONTENT,
    )
