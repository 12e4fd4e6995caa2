"""The site due list: overdue, due now and upcoming, each row with its record forms
(posted to ``routes.outcomes``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request, Response

from surveillance.errors import InvalidInput
from surveillance.http.deps import AppState, State, visible_site
from surveillance.http.web.outcome_entry import OUTCOMES, OutcomeEntry
from surveillance.http.web.render import PageRoute, render
from surveillance.http.web.session import CurrentWebUser, WebUser
from surveillance.kit.bounds import check_as_of
from surveillance.patients.due_list import DueItem, DueState, due_list
from surveillance.patients.undo import UNDO_MINUTES, undoable_by
from surveillance.patients.visits import Visit, group_visits
from surveillance.protocols.views import categories, result_types

router = APIRouter(route_class=PageRoute, include_in_schema=False)
LIMIT = 500
HORIZON_DAYS = 30


@dataclass(frozen=True)
class DueRow:
    item: DueItem
    version: int
    days: (
        int  # overdue: days since the window closed; due: days left; upcoming: days until it opens
    )


@dataclass(frozen=True)
class VisitRows:
    """One visit of a section: its header (patient, time point, window) and its rows."""

    visit: Visit
    rows: list[DueRow]


@dataclass(frozen=True)
class Filters:
    state: str
    on: date
    category: str
    error: str | None


@router.get("/sites/{site_id}/due")
def due_page(
    request: Request,
    site_id: str,
    state: State,
    user: CurrentWebUser,
    status: str = "",
    on: str = "",
    category: str = "",
) -> Response:
    """Overdue first, then due now, then the next 30 days; filters; a record form per row."""
    context = due_context(state, user, site_id, status=status, on=on, category=category)
    return render(request, "due_list.html", context, user=user)


def due_context(
    state: AppState,
    user: WebUser,
    site_id: str,
    *,
    status: str = "",
    on: str = "",
    category: str = "",
    entry: OutcomeEntry | None = None,
) -> dict[str, Any]:
    """The page's content; ``entry`` re-shows one row's form as the nurse typed it, with
    the error beside its field, what saving would start, or the early-completion question."""
    with state.read() as session:
        site = visible_site(session, user.principal, site_id)
        today = site.today(state.now())
        filters = _filters(status, on, category, today, categories(state.registry))
        wanted = tuple(s for s in DueState if filters.state in ("", s.value))
        items = due_list(
            session,
            site_id=site.id,
            on=filters.on,
            registry=state.registry,
            states=wanted,
            horizon_days=HORIZON_DAYS,
            limit=LIMIT,
        )
        truncated = len(items) >= LIMIT
        if filters.category:  # narrowed after the limit: see "truncated" on the page
            items = [item for item in items if item.category == filters.category]
        undoable = undoable_by(
            session,
            site_id=site.id,
            actor=user.principal.email,
            registry=state.registry,
            now=state.now(),
        )
    sections = {
        # The list's own query read each row's version (the ETag a form sends back).
        s: [_row(item, item.version, filters.on) for item in items if item.state is s]
        for s in DueState
    }
    visits = {
        s: [
            VisitRows(visit, [_row(item, item.version, filters.on) for item in visit.items])
            for visit in group_visits(item for item in items if item.state is s)
        ]
        for s in DueState
    }
    context = {
        "title": f"Due list · {site.id}",
        "site": site,
        "today": today,
        "filters": filters,
        "sections": sections,
        "visits": visits,
        "shown": wanted,
        "categories": categories(state.registry),
        "truncated": truncated,
        "limit": LIMIT,
        "horizon": HORIZON_DAYS,
        "outcomes": OUTCOMES,
        "result_types": result_types(state.registry),
        "return_to": f"/sites/{quote(site.id)}/due"
        + (f"?{urlencode(query)}" if (query := _query(status, on, category)) else ""),
        "entry": entry,
        "undoable": undoable,
        "undo_minutes": UNDO_MINUTES,
        "bulk_error": None,
        "bulk_reason": "",
    }
    return context


def _query(status: str, on: str, category: str) -> dict[str, str]:
    return {k: v for k, v in (("status", status), ("on", on), ("category", category)) if v}


def _filters(status: str, on: str, category: str, today: date, known: list[str]) -> Filters:
    error = None
    day = today
    if on:
        try:
            day = check_as_of(date.fromisoformat(on), today)
        except ValueError:
            error = f"{on!r} is not a date (use YYYY-MM-DD); showing today, {today.isoformat()}."
        except InvalidInput as exc:
            day = today
            error = f"{exc.message}; showing today, {today.isoformat()}."
    state = status if status in {s.value for s in DueState} else ""
    return Filters(state, day, category if category in known else "", error)


def _row(item: DueItem, version: int, on: date) -> DueRow:
    if item.state is DueState.overdue:
        days = item.days_overdue
    elif item.state is DueState.due:
        days = (item.window_end - on).days
    else:
        days = (item.window_start - on).days
    return DueRow(item, version, days)
