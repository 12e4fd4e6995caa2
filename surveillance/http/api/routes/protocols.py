"""Protocols: what each requires and why, and the calendar one would give (any signed-in role)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import JSONResponse

from surveillance.http.api.schemas import (
    PlannedAssessmentPublic,
    ProtocolPublic,
    ProtocolSummaryPublic,
)
from surveillance.http.deps import CurrentUser, State
from surveillance.http.inputs import Day
from surveillance.protocols.fhir_plan import FHIR_JSON, plan_definition, wants_fhir
from surveillance.protocols.registry import get_protocol
from surveillance.protocols.views import preview_calendar, protocol_detail, protocol_summary

router = APIRouter(prefix="/protocols", tags=["protocols"])


@router.get("", response_model=list[ProtocolSummaryPublic])
def read_protocols(state: State, user: CurrentUser) -> list[dict[str, Any]]:
    """Every protocol version this installation knows."""
    return [protocol_summary(protocol) for protocol in state.registry.all()]


@router.get(
    "/{protocol_id}",
    response_model=ProtocolPublic,
    responses={
        200: {
            "content": {FHIR_JSON: {}},
            "description": "The protocol, or a FHIR R4 PlanDefinition (?format=fhir).",
        }
    },
)
def read_protocol(
    protocol_id: str,
    state: State,
    user: CurrentUser,
    response: Response,
    version: Annotated[str | None, Query(description="Default: the newest.")] = None,
    format: Literal["json", "fhir"] | None = None,
    accept: Annotated[str | None, Header()] = None,
) -> Any:
    """The protocol's assessments: schedule, windows, conditions and the evidence cited;
    ``?format=fhir`` (or ``Accept: application/fhir+json``): the same as a FHIR R4
    PlanDefinition."""
    protocol = get_protocol(state.registry, protocol_id, version)
    response.headers["Vary"] = "Accept"
    if wants_fhir(format, accept):
        body = plan_definition(protocol, base_url=state.base_url)
        return JSONResponse(body, media_type=FHIR_JSON, headers={"Vary": "Accept"})
    return protocol_detail(protocol)


@router.get("/{protocol_id}/calendar", response_model=list[PlannedAssessmentPublic])
def preview_protocol_calendar(
    protocol_id: str,
    state: State,
    user: CurrentUser,
    infusion: Annotated[Day, Query(description="From 1990-01-01.")],
    birth: Annotated[
        Day | None, Query(description="Default: 10 years before the infusion.")
    ] = None,
    diagnosis: Annotated[str | None, Query(description="Default: the protocol's first.")] = None,
    sex: Literal["F", "M"] = "F",
    version: Annotated[str | None, Query(description="Default: the newest.")] = None,
) -> list[dict[str, object]]:
    """The calendar for one infusion, as `surveillance calendar --format json` prints it."""
    preview = preview_calendar(
        state.registry,
        protocol_id,
        infusion=infusion,
        birth=birth,
        diagnosis=diagnosis,
        sex=sex,
        version=version,
    )
    return preview.as_list()
