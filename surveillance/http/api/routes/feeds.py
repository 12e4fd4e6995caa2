"""The pharmacovigilance feed: every case creation, follow-up and nullification, in
commit order, cursor-paged, as JSON or a FHIR R4 Bundle; and acknowledgements.

Entries never change once written, so a page is identified by its cursor, its size, its
format and its last sequence: that is its ETag, and ``If-None-Match`` gets a 304. A
consumer that has caught up is told when to come back (``Retry-After``); asking for the
same caught-up page again sooner than ``SURVEILLANCE_FEED_MIN_POLL_SECONDS`` is a 429.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.responses import JSONResponse

from surveillance.accounts.models import Role
from surveillance.adverse_events.acks import record_ack
from surveillance.adverse_events.feed import (
    DEFAULT_PAGE,
    MAX_PAGE,
    FeedPage,
    feed_page,
    parse_cursor,
)
from surveillance.adverse_events.fhir import adverse_event_bundle_json
from surveillance.errors import TooManyRequests
from surveillance.http.api.adverse_event_schemas import AckCreate, AckPublic, FeedPagePublic
from surveillance.http.app_settings import AppSettings
from surveillance.http.cache import TtlCache
from surveillance.http.deps import CurrentUser, State

router = APIRouter(prefix="/feeds", tags=["pharmacovigilance feed"])
FHIR_JSON = "application/fhir+json"
_CONSUMERS = (Role.pharmacovigilance, Role.admin)


def _wants_fhir(format_: str | None, accept: str | None) -> bool:
    if format_ is not None:
        return format_ == "fhir"
    return FHIR_JSON in (accept or "")


# (consumer, cursor, FHIR?) -> when it was told it had everything.
Pacing = TtlCache[tuple[str, int, bool], float]


def _pacing(request: Request, seconds: float) -> Pacing:
    """Per process: which consumer was told it had caught up at which cursor, and when."""
    cache: Pacing | None = getattr(request.app.state, "feed_pacing", None)
    if cache is None:
        cache = request.app.state.feed_pacing = TtlCache(seconds, max_entries=10_000)
    return cache


@router.get(
    "/adverse-events",
    response_model=FeedPagePublic,
    responses={
        200: {
            "content": {
                FHIR_JSON: {
                    "schema": {"type": "object", "description": "A FHIR R4 Bundle (type history)."}
                }
            }
        },
        304: {"description": "Not modified (If-None-Match matched the page's ETag)."},
        429: {"description": "Polled the caught-up end too soon; see Retry-After."},
    },
)
def read_feed(
    request: Request,
    state: State,
    user: CurrentUser,
    settings: AppSettings,
    cursor: Annotated[
        str | None, Query(description="next_cursor of the previous page; none: the start.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    format: Annotated[Literal["json", "fhir"] | None, Query()] = None,
    accept: Annotated[str | None, Header()] = None,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
) -> Response:
    """Entries after ``cursor``, oldest first; ``Accept: application/fhir+json`` (or
    ``?format=fhir``) returns a FHIR R4 Bundle of AdverseEvent resources instead."""
    user.require_role(*_CONSUMERS, to="read the safety feed")
    after = parse_cursor(cursor)
    fhir = _wants_fhir(format, accept)
    pacing = _pacing(request, settings.feed_min_poll_seconds)
    told_at = pacing.get((user.email, after, fhir))
    if told_at is not None:
        wait = math.ceil(settings.feed_min_poll_seconds - (state.clock().timestamp() - told_at))
        raise TooManyRequests(
            f"you have every entry after {after}; poll again in {max(wait, 1)} s",
            retry_after=max(wait, 1),
        )
    with state.read() as session:
        page = feed_page(session, after=after, limit=limit, registry=state.registry)
    tag = f'"feed-{after}-{limit}-{page.next_cursor}-{"fhir" if fhir else "json"}"'
    headers = {"ETag": tag, "Cache-Control": "private, no-cache", "Vary": "Accept"}
    if page.caught_up:
        headers["Retry-After"] = str(settings.feed_poll_seconds)
        if settings.feed_min_poll_seconds > 0:
            pacing.put((user.email, after, fhir), state.clock().timestamp())
    if if_none_match is not None and tag in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    if fhir:
        body = "".join(_bundle(settings.base_url, page, limit, cursor)).encode()
        return Response(body, headers=headers, media_type=FHIR_JSON)
    return JSONResponse({"entries": page.entries, "next_cursor": page.next_cursor}, headers=headers)


def _bundle(base_url: str, page: FeedPage, limit: int, cursor: str | None) -> Iterator[str]:
    """The page as a Bundle; every URL in it from SURVEILLANCE_BASE_URL, never the request's
    Host (behind a proxy, or with a forged Host, identifier systems would change)."""
    base = base_url.rstrip("/")
    path = f"{base}/api/v1/feeds/adverse-events"

    def url(at: str | None) -> str:
        query = {"limit": limit, "format": "fhir", **({"cursor": at} if at else {})}
        return f"{path}?{urlencode(query)}"

    return adverse_event_bundle_json(
        page.entries,
        base_url=base,
        self_url=url(cursor),
        next_url=None if page.caught_up else url(page.next_cursor),
    )


@router.post("/adverse-events/acks", status_code=status.HTTP_201_CREATED, response_model=AckPublic)
def acknowledge(body: AckCreate, state: State, user: CurrentUser) -> dict[str, Any]:
    """A safety system's answer to one case version: AA accepted, AE accepted with
    errors, AR rejected (AE and AR need a message). Later answers are added, not replaced;
    the latest counts. A serious case's latest version not accepted by every registered
    safety system within 24 hours alerts the site's investigators."""
    user.require_role(Role.pharmacovigilance, to="acknowledge a safety report")
    with state.write() as session:
        ack = record_ack(
            session,
            consumer=user.email,
            case_id=body.case_id,
            version=body.version,
            status=body.status.value,
            message=body.message,
            now=state.now(),
        )
        return {
            "case_id": ack.case_id,
            "version": ack.version,
            "status": ack.status,
            "message": ack.message,
            "consumer": ack.consumer,
            "received_at": ack.received_at,
        }
