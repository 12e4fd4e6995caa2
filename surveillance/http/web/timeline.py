"""The geometry of the patient's calendar picture (an SVG drawn by the template).

Pure: assessments in, lanes, markers and axis ticks out, in the SVG's own units. One
lane per category; x is time. The state decides the marker's colour and shape (see
``static/style.css`` and ``templates/_timeline.html``), never its position. Assessments of
one lane due on the same day are one marker with their count, so none hides another; each
marker is focusable and shows its details in the strip above the lanes (``TIP``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import partial
from typing import Any, Literal

from dateutil.relativedelta import relativedelta

from surveillance.kit.i18n import Later, format_month

WIDTH = 1000.0
LEFT = 170.0  # lane labels
RIGHT = 16.0
TIP = 36.0  # the strip where a focused or hovered marker's details show
TOP = TIP + 30.0  # the "today" label
LANE = 22.0
AXIS = 38.0
# Drawn last = on top: what needs attention must not hide under what is done.
_PAINT_ORDER = (
    "not_required",
    "cancelled",
    "upcoming",
    "completed",
    "not_done",
    "due",
    "missed",
    "overdue",
)
STATES = (
    "completed",
    "missed",
    "overdue",
    "due",
    "upcoming",
    "not_done",
    "cancelled",
    "not_required",
)
STATE_LABELS = {
    "completed": "Completed",
    "missed": "Missed",
    "overdue": "Overdue",
    "due": "Due now",
    "upcoming": "Upcoming",
    "not_done": "Not done",
    "cancelled": "Cancelled",
    "not_required": "Not required",
}


@dataclass(frozen=True)
class TimelineItem:
    category: str
    state: str
    due: date
    title: str
    data: Any = None  # what the template writes the details from (the calendar row)


@dataclass(frozen=True)
class Lane:
    label: str
    y: float
    band_top: float


@dataclass(frozen=True)
class Marker:
    """One marker: the assessments of one lane due on one day (usually one). ``state`` is
    the one that most needs attention; ``tip_x`` centres the details strip on it."""

    x: float
    y: float
    state: str
    title: str
    items: tuple[TimelineItem, ...] = ()

    @property
    def count(self) -> int:
        return len(self.items)


@dataclass(frozen=True)
class Tick:
    x: float
    label: str | Later  # a month's name is written in the language of the page
    sublabel: str


@dataclass(frozen=True)
class Timeline:
    start: date
    end: date
    width: float
    height: float
    plot_left: float
    plot_right: float
    plot_top: float
    plot_bottom: float
    lane_height: float
    lanes: tuple[Lane, ...]
    markers: tuple[Marker, ...]
    ticks: tuple[Tick, ...]
    today_x: float | None
    today: date


def lane_order(items: Sequence[TimelineItem]) -> list[str]:
    """Categories in the order their first assessment falls due."""
    first: dict[str, date] = {}
    for item in items:
        if item.category not in first or item.due < first[item.category]:
            first[item.category] = item.due
    return sorted(first, key=lambda c: (first[c], c))


def build_timeline(
    items: Sequence[TimelineItem],
    *,
    lanes: Sequence[str],
    start: date,
    end: date,
    today: date,
    scale: Literal["years", "months"],
    anchor: date,
) -> Timeline:
    """Place ``items`` due between ``start`` and ``end`` (years are counted from ``anchor``)."""
    span = max((end - start).days, 1)
    plot_right = WIDTH - RIGHT

    def x_of(day: date) -> float:
        return round(LEFT + (plot_right - LEFT) * (day - start).days / span, 1)

    lane_y = {name: TOP + LANE * i + LANE / 2 for i, name in enumerate(lanes)}
    plot_bottom = TOP + LANE * len(lanes)
    visible = [i for i in items if start <= i.due <= end and i.category in lane_y]
    same_day: dict[tuple[str, date], list[TimelineItem]] = {}
    for item in visible:
        same_day.setdefault((item.category, item.due), []).append(item)
    groups = [
        (max(group, key=lambda i: _paint_rank(i.state)), tuple(group))
        for group in same_day.values()
    ]
    groups.sort(key=lambda g: (_paint_rank(g[0].state), g[0].due))
    ticks: Sequence[tuple[date, str | Later, str]] = (
        _year_ticks(start, end, anchor) if scale == "years" else _month_ticks(start, end)
    )
    return Timeline(
        start=start,
        end=end,
        width=WIDTH,
        height=plot_bottom + AXIS,
        plot_left=LEFT,
        plot_right=plot_right,
        plot_top=TOP,
        plot_bottom=plot_bottom,
        lane_height=LANE,
        lanes=tuple(Lane(name, y, y - LANE / 2) for name, y in lane_y.items()),
        markers=tuple(
            Marker(
                x_of(top.due),
                lane_y[top.category],
                top.state,
                "; ".join(i.title for i in group),
                group,
            )
            for top, group in groups
        ),
        ticks=tuple(Tick(x_of(day), label, sub) for day, label, sub in ticks),
        today_x=x_of(today) if start <= today <= end else None,
        today=today,
    )


def _paint_rank(state: str) -> int:
    return _PAINT_ORDER.index(state) if state in _PAINT_ORDER else 0


def _year_ticks(start: date, end: date, anchor: date) -> list[tuple[date, str, str]]:
    ticks: list[tuple[date, str, str]] = []
    year = 0
    while (day := anchor + relativedelta(years=year)) <= end:
        if day >= start:
            ticks.append((day, f"Y{year}", str(day.year)))
        year += 1
    return ticks


def _month_ticks(start: date, end: date) -> list[tuple[date, str | Later, str]]:
    ticks: list[tuple[date, str | Later, str]] = []
    day = date(start.year, start.month, 1) + relativedelta(months=1)
    while day <= end:
        name = Later(partial(format_month, day))
        ticks.append((day, name, str(day.year) if day.month == 1 or not ticks else ""))
        day += relativedelta(months=1)
    return ticks
