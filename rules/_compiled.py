"""A rule resolved once for the engine: what ``build_calendar`` would otherwise work out
again for every patient and every time point.

Offsets become whole months or a ``timedelta``, windows become ``timedelta``s, the text of
each point's reason is formatted up to the one date it names (the infusion, the birth or
the cause of a series), and applicability becomes plain values. The engine reads these;
what a rule means stays in ``_schema``/``_protocol``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from ._schema import Anchor

if TYPE_CHECKING:
    from ._protocol import Rule, TimePoint


@dataclass(frozen=True, slots=True)
class CompiledPoint:
    number: int
    months: int | None  # calendar months (M, Y), or None: then ``days`` (D, W)
    days: timedelta
    # Belongs to its own infusion even past the next one (a pre-infusion baseline point).
    crosses_next_infusion: bool
    before: timedelta
    after: timedelta
    # The reason is head + the date or cause it names + tail ("; window ...").
    head: str
    tail: str


@dataclass(frozen=True, slots=True)
class CompiledRule:
    id: str
    name: str
    category: str
    basis: str
    by_birth: bool
    triggered: bool
    with_infusion: bool  # on from the infusion (else only once started)
    after_study: bool
    after_follow_up_ends: bool
    outlasts_follow_up: bool  # its windows are not closed at the end of follow-up
    diagnoses: frozenset[str] | None
    age_from: int | None
    age_below: int | None
    points: tuple[CompiledPoint, ...]
    # Per branch (as in ``on_result``): the point numbers its ``only_at`` names, or None.
    branch_points: tuple[frozenset[int] | None, ...]
    # Whole years every point stays within, before and after its anchor (rounded out):
    # an anchor whose year is this far from 1 and 9999 cannot overflow.
    years_before: int
    years_after: int

    def cannot_overflow(self, anchor_year: int) -> bool:
        return anchor_year - self.years_before > 1 and anchor_year + self.years_after < 9999


def compile_rule(rule: Rule) -> CompiledRule:
    spec = rule.spec
    applies = spec.applies_to
    points = tuple(_compile_point(rule, point) for point in rule.points)
    years = [point.offset.approximate_days() / 365 for point in rule.points]
    branch_points = tuple(
        None
        if branch.only_at is None
        else frozenset(p.number for p in rule.points if p.offset in branch.only_at)
        for branch in spec.on_result
    )
    return CompiledRule(
        id=spec.id,
        name=spec.name,
        category=spec.category,
        basis=spec.evidence.basis.value,
        by_birth=spec.anchor is Anchor.birth,
        triggered=spec.anchor is Anchor.trigger,
        with_infusion=spec.starts == "with_infusion",
        after_study=spec.after_study,
        after_follow_up_ends=spec.after_follow_up_ends,
        outlasts_follow_up=spec.after_follow_up_ends or spec.after_study,
        diagnoses=None if applies.diagnoses is None else frozenset(applies.diagnoses),
        age_from=applies.age_from,
        age_below=applies.age_below,
        points=points,
        branch_points=branch_points,
        years_before=max(0, math.ceil(-min(years, default=0))) + 1,
        years_after=max(0, math.ceil(max(years, default=0))) + 1,
    )


def _compile_point(rule: Rule, point: TimePoint) -> CompiledPoint:
    offset, window, anchor = point.offset, point.window, rule.spec.anchor
    tail = f"; window {window.describe()}"
    if anchor is Anchor.birth:
        if offset.unit == "Y":
            head, tail = f"{_ordinal(offset.amount)} birthday (born ", ")" + tail
        else:
            head = f"{offset.describe()} after birth on "
    elif anchor is Anchor.trigger:
        head = f"{offset.describe()} after "
    else:
        joiner = " " if offset.amount < 0 else " after "
        head = f"{offset.describe()}{joiner}infusion of "
    months = offset.months
    return CompiledPoint(
        number=point.number,
        months=months,
        days=offset.days if months is None else timedelta(0),
        crosses_next_infusion=anchor is Anchor.infusion and offset.amount < 0,
        before=timedelta(days=window.before),
        after=timedelta(days=window.after),
        head=head,
        tail=tail,
    )


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
