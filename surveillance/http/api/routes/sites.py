"""Sites: the ones you may see, their due lists (JSON pages or CSV), their calendar feed."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from sqlmodel import Session

from surveillance.accounts.models import CLINICAL_ROLES, Role
from surveillance.errors import NotFound, Unauthorized
from surveillance.http.api.schemas import DueListQuery, DuePagePublic, SitePublic
from surveillance.http.deps import CurrentUser, State, checked_token, client_address
from surveillance.http.downloads import attachment
from surveillance.kit.bounds import check_as_of
from surveillance.patients import due_csv
from surveillance.patients.due_list import (
    DueCursor,
    DuePage,
    DueState,
    DueWindow,
    due_page,
)
from surveillance.patients.site_feed import site_calendar
from surveillance.records.sites import get_site, list_sites

router = APIRouter(prefix="/sites", tags=["sites"])
DEFAULT_PAGE = 50
MAX_PAGE = 5000


@router.get("", response_model=list[SitePublic])
def read_sites(state: State, user: CurrentUser) -> list[dict[str, Any]]:
    """The sites you work at (admin and pharmacovigilance: every site)."""
    every = user.is_admin or user.role is Role.pharmacovigilance
    with state.read() as session:
        return [
            {"id": site.id, "name": site.name, "timezone": site.timezone}
            for site in list_sites(session)
            if every or user.works_at(site.id)
        ]


@router.get(
    "/{site}/due",
    response_model=DuePagePublic,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "JSON page, or CSV (?format=csv): the layout of docs/csv.md",
        }
    },
)
async def read_due_list(
    site: str, state: State, user: CurrentUser, query: Annotated[DueListQuery, Query()]
) -> Response:
    """Overdue first (longest overdue first), then due (closing soonest), then upcoming.

    ``async``: the read runs where the store answers fastest (``AppState.run_read``); this
    is the page every nurse keeps open, so it is the one measured by benchmarks/api.py.
    """
    user.require_role(*CLINICAL_ROLES, to="read a site's due list")
    user.require_site(site)
    after = DueCursor.decode(query.cursor) if query.cursor else None
    limit = query.limit or (MAX_PAGE if query.format == "csv" else DEFAULT_PAGE)
    states = tuple(DueState(s) for s in query.status) or tuple(DueState)

    def read(session: Session) -> tuple[date, DuePage]:
        today = state.today_at(state.site(session, site))
        day = check_as_of(query.on, today) if query.on else today
        window = DueWindow.around(day, query.from_, query.to)
        page = due_page(
            session,
            site_id=site,
            window=window,
            registry=state.registry,
            states=states,
            limit=limit,
            after=after,
        )
        return day, page

    day, page = await state.run_read(read, rows=limit, statements_alone=True)
    if query.format == "csv":
        return _csv_response(page, site, day)
    # Validated from the items' attributes and dumped by pydantic-core in one pass: no
    # intermediate dicts, and no second validation by FastAPI.
    body = DuePagePublic.model_validate(page, from_attributes=True).model_dump_json()
    return Response(body, media_type="application/json")


def _csv_response(page: DuePage, site: str, day: date) -> Response:
    """The file every export writes (``due_csv``); a cut-short list says where to go on."""
    body = due_csv.due_csv(page.items, site_id=site)
    headers = {"Content-Disposition": attachment(due_csv.filename(site, day))}
    if page.next_cursor:
        headers["X-Next-Cursor"] = page.next_cursor
    return Response(body, media_type=due_csv.MEDIA_TYPE, headers=headers)


_CALENDAR_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/calendar": {}}, "description": "iCalendar (RFC 5545)"},
    304: {"description": "Not modified (If-None-Match or If-Modified-Since)."},
}


# Two routes, not one with two methods: each gets its own OpenAPI operation id.
@router.head("/{site}/calendar.ics", response_class=Response, responses=_CALENDAR_RESPONSES)
@router.get("/{site}/calendar.ics", response_class=Response, responses=_CALENDAR_RESPONSES)
def read_site_calendar(
    site: str,
    request: Request,
    state: State,
    token: Annotated[str | None, Query(description="A feed token for this site.")] = None,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
    if_modified_since: Annotated[str | None, Header(alias="If-Modified-Since")] = None,
) -> Response:
    """Overdue assessments, and due and upcoming ones of the next 180 days, for a calendar
    app to subscribe to. Completed (or otherwise closed) assessments leave the feed.

    Authenticated by a read-only feed token in the URL (calendar apps cannot send
    headers): `surveillance tokens create --email E --feed-site S`. The token is
    redacted from the access log. ``ETag`` and ``Last-Modified`` let a client poll with
    ``If-None-Match`` / ``If-Modified-Since`` and get a 304 when nothing changed.
    """
    if not token:
        raise Unauthorized(
            "add ?token=<feed token> (create one with `surveillance tokens create --feed-site`)"
        )
    grant = checked_token(state, token, client_address(request), kind="feed")
    with state.read() as session:
        if grant.feed_site_id != site or not grant.principal.works_at(site):
            raise NotFound(f"no site {site!r}")
        site_row = get_site(session, site)
        feed = site_calendar(
            session, site=site_row, on=site_row.today(state.now()), registry=state.registry
        )
    tag = f'"{hashlib.sha256(feed.body).hexdigest()[:32]}"'
    headers = {
        "Cache-Control": "private, max-age=300",
        "ETag": tag,
        "Last-Modified": format_datetime(feed.last_modified.astimezone(UTC), usegmt=True),
    }
    if _not_modified(tag, feed.last_modified, if_none_match, if_modified_since):
        return Response(status_code=304, headers=headers)
    media_type = "text/calendar; charset=utf-8"
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(feed.body))
        return Response(media_type=media_type, headers=headers)
    return Response(feed.body, media_type=media_type, headers=headers)


def _not_modified(
    tag: str, last_modified: datetime, if_none_match: str | None, if_modified_since: str | None
) -> bool:
    """RFC 9110 13.2.2: If-None-Match decides when present; else If-Modified-Since."""
    if if_none_match is not None:
        tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
        return "*" in tags or tag in tags
    if if_modified_since is None:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False  # an unparseable date is ignored (RFC 9110 13.1.3)
    if since.tzinfo is None:
        return False
    return last_modified.replace(microsecond=0) <= since
