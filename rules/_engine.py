"""The calendar as a pure function of facts.

``build_calendar(protocol, patient, infusions, results, events)`` returns every planned
assessment, sorted by due date. No database, no clock: the same facts always give the
same calendar, and adding a result dated D changes only assessments due after D.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from operator import attrgetter

from dateutil.relativedelta import relativedelta

from ._compiled import CompiledPoint, CompiledRule
from ._errors import InvalidFacts
from ._facts import PatientFacts, PlannedAssessment, RecordedEvent, RecordedResult
from ._offsets import add_months
from ._protocol import Protocol, Rule
from ._schema import Branch

# Occurrences of triggered assessments are YYYYMMDD * 100 + n (n < 100, see _validate).
TRIGGERED_SERIES_SPAN = 100


@dataclass(frozen=True)
class _Action:
    on: date
    verb: str  # "start" or "stop"
    cause: str
    series: int | None = None  # a fixed series number for what it starts (see RecordedEvent)


@dataclass(frozen=True)
class _Segment:
    """The part of follow-up anchored on one infusion: [start, next_start)."""

    number: int
    start: date
    next_start: date | None


# A time point that may become a row: occurrence, point, due date, and for a triggered
# series the day it started and its cause (what the reason names).
_Candidate = tuple[int, CompiledPoint, date, date | None, str | None]

_ON = attrgetter("on")
_ROW_ORDER = attrgetter("due", "assessment", "infusion", "occurrence")


def build_calendar(
    protocol: Protocol,
    patient: PatientFacts,
    infusions: Sequence[date],
    results: Iterable[RecordedResult] = (),
    events: Iterable[RecordedEvent] = (),
) -> list[PlannedAssessment]:
    """Every assessment the protocol requires for these facts, sorted by due date.

    Time points are computed from their anchor in one step, so month ends clip:
    an infusion on 2024-01-31 has its month-1 visit on 2024-02-29.

    Raises ``InvalidFacts`` for facts that cannot be planned from (an infusion before
    birth, a diagnosis the protocol does not cover, an unknown event kind, ...).
    """
    return _Planner(protocol, patient, infusions, tuple(results), tuple(events)).plan()


def end_of_follow_up(protocol: Protocol, infusions: Sequence[date]) -> date:
    """The last day of scheduled follow-up: duration after the anchoring infusion.

    ``infusions`` may come in any order (as for ``build_calendar``).
    """
    if not infusions:
        raise InvalidFacts("at least one infusion date is needed")
    last_infusion = protocol.spec.follow_up.anchor == "last_infusion"
    anchor = max(infusions) if last_infusion else min(infusions)
    return protocol.spec.follow_up.duration.apply(anchor)


class _Planner:
    def __init__(
        self,
        protocol: Protocol,
        patient: PatientFacts,
        infusions: Sequence[date],
        results: tuple[RecordedResult, ...],
        events: tuple[RecordedEvent, ...],
    ) -> None:
        self.protocol = protocol
        self.patient = patient
        self.segments = _segments(protocol, patient, infusions)
        self._check(results, events)
        self.follow_up_end = end_of_follow_up(protocol, [s.start for s in self.segments])
        self.last_day = self.follow_up_end
        self.ended_on: date | None = None  # death or withdrawal (the earliest)
        self.actions: dict[tuple[int, str], list[_Action]] = defaultdict(list)
        self.results: dict[tuple[int, str], list[RecordedResult]] = defaultdict(list)
        for result in sorted(results, key=lambda r: (r.on, r.occurrence)):
            self.results[(result.infusion, result.assessment)].append(result)
        self._apply_events(events)
        # Formatted once per calendar, not once per row.
        self.born = patient.birth_date.isoformat()
        self.follow_up_end_text = self.follow_up_end.isoformat()
        self.birthdays: dict[int, date | None] = {}  # age -> the day it is reached (see _turns)

    def _check(
        self, results: tuple[RecordedResult, ...], events: tuple[RecordedEvent, ...]
    ) -> None:
        for event in events:
            if event.kind not in self.protocol.events:
                known = ", ".join(sorted(self.protocol.events))
                raise InvalidFacts(
                    f"unknown event {event.kind!r} for {self.protocol.id}; known: {known}"
                )
        for result in results:
            if result.assessment not in self.protocol.rules:
                raise InvalidFacts(f"result for unknown assessment {result.assessment!r}")
            if not 1 <= result.infusion <= len(self.segments):
                raise InvalidFacts(f"result for infusion {result.infusion}, which does not exist")

    def _segment_of(self, day: date) -> _Segment:
        starts = [segment.start for segment in self.segments]
        return self.segments[max(bisect_right(starts, day) - 1, 0)]

    def _apply_events(self, events: tuple[RecordedEvent, ...]) -> None:
        for event in sorted(events, key=lambda e: (e.on, e.kind, e.source or "")):
            rule = self.protocol.events[event.kind]
            if rule.end_follow_up:
                self.last_day = min(self.last_day, event.on)
                self.ended_on = min(self.ended_on or event.on, event.on)
            cause = f"{event.kind.replace('_', ' ')} on {event.on.isoformat()}"
            if event.source:
                cause = f"{event.kind.replace('_', ' ')} ({event.source}) on {event.on.isoformat()}"
            segment = self._segment_of(event.on).number
            for target in rule.start:
                self.actions[(segment, target)].append(
                    _Action(event.on, "start", cause, event.series)
                )
            for target in rule.stop:
                self.actions[(segment, target)].append(_Action(event.on, "stop", cause))

    def plan(self) -> list[PlannedAssessment]:
        planned: list[PlannedAssessment] = []
        rules = self.protocol.rules
        for rule_id in self.protocol.order:
            rule = rules[rule_id]
            compiled = rule.compiled
            for segment in self.segments:
                results = self.results.get((segment.number, rule_id))
                if compiled.triggered:
                    candidates = self._triggered(rule, compiled, segment)
                elif results or self._may_plan(compiled, segment):
                    candidates = self._scheduled(compiled, segment)
                else:
                    continue
                if results:
                    self._apply_branches(rule, compiled, segment, candidates, results)
                self._keep(compiled, segment, candidates, planned)
        planned.sort(key=_ROW_ORDER)
        return planned

    def _may_plan(self, rule: CompiledRule, segment: _Segment) -> bool:
        """Whether the scheduled rule can give this segment a row; if not, its dates are
        skipped (unless computing them could fail: an error stays an error)."""
        never_on = not rule.with_infusion and not self.actions.get((segment.number, rule.id))
        excluded = rule.diagnoses is not None and self.patient.diagnosis not in rule.diagnoses
        if not never_on and not excluded:
            return True
        anchor = self.patient.birth_date if rule.by_birth else segment.start
        return not rule.cannot_overflow(anchor.year)

    # -- time points -------------------------------------------------------------------

    def _scheduled(self, rule: CompiledRule, segment: _Segment) -> list[_Candidate]:
        start, next_start = segment.start, segment.next_start
        by_birth = rule.by_birth
        anchor = self.patient.birth_date if by_birth else start
        out: list[_Candidate] = []
        for point in rule.points:
            months = point.months
            due = add_months(anchor, months) if months is not None else anchor + point.days
            if by_birth and due < start:
                continue
            # Pre-infusion (baseline) points belong to their own infusion even if they fall
            # before it; later points of an earlier infusion give way to the next one.
            if next_start is not None and due >= next_start and not point.crosses_next_infusion:
                continue
            out.append((point.number, point, due, None, None))
        return out

    def _triggered(self, rule: Rule, compiled: CompiledRule, segment: _Segment) -> list[_Candidate]:
        """One series per start; occurrence numbers carry the trigger date (YYYYMMDDnn),
        so a late-recorded, earlier-dated trigger never renumbers stored series."""
        out: list[_Candidate] = []
        actions = self.actions.get((segment.number, rule.id))
        if not actions:
            return out
        starts = [a for a in actions if a.verb == "start"]
        points = compiled.points
        per_day = (TRIGGERED_SERIES_SPAN - 1) // len(points)  # n stays within 1..99
        for action, series in _series_numbers(rule, segment, starts, per_day):
            on = action.on
            base = (on.year * 10000 + on.month * 100 + on.day) * TRIGGERED_SERIES_SPAN
            base += series * len(points)
            for point in points:
                months = point.months
                due = add_months(on, months) if months is not None else on + point.days
                out.append((base + point.number, point, due, on, action.cause))
        return out

    # -- branches ----------------------------------------------------------------------

    def _apply_branches(
        self,
        rule: Rule,
        compiled: CompiledRule,
        segment: _Segment,
        candidates: list[_Candidate],
        results: list[RecordedResult],
    ) -> None:
        """Turn this rule's recorded results into start/stop actions on other rules."""
        actions = self.actions.get((segment.number, rule.id)) or []
        ordered = sorted(actions, key=_ON)
        planned = {c[0] for c in candidates if _active(compiled, actions, ordered, c[2], c[3])}
        for branch, only_at in zip(rule.spec.on_result, compiled.branch_points, strict=True):
            for on, cause in _branch_firings(rule, branch, only_at, results, planned):
                for target in branch.start:
                    self.actions[(segment.number, target)].append(_Action(on, "start", cause))
                for target in branch.stop:
                    self.actions[(segment.number, target)].append(_Action(on, "stop", cause))

    def _started_by(self, actions: list[_Action], due: date) -> str | None:
        """The cause that switched a conditional rule on, for the reason text."""
        earlier = [a for a in actions if a.on < due]
        return max(earlier, key=_ON).cause if earlier else None

    # -- filters -----------------------------------------------------------------------

    def _keep(
        self,
        rule: CompiledRule,
        segment: _Segment,
        candidates: list[_Candidate],
        planned: list[PlannedAssessment],
    ) -> None:
        """Append the candidates that are owed, as planned assessments."""
        if rule.diagnoses is not None and self.patient.diagnosis not in rule.diagnoses:
            return
        actions = self.actions.get((segment.number, rule.id)) or []
        if not actions and not rule.with_infusion and not rule.triggered:
            return  # never switched on
        ordered = sorted(actions, key=_ON)
        by_age = rule.age_from is not None or rule.age_below is not None
        shows_start = not rule.with_infusion and not rule.triggered
        # The date each reason names, for scheduled rules.
        named = self.born if rule.by_birth else segment.start.isoformat()
        follow_up_end, ended_on = self.follow_up_end, self.ended_on
        last_day = min(self.last_day, follow_up_end)
        protocol_id, version = self.protocol.id, self.protocol.version
        for occurrence, point, due, triggered_on, cause in candidates:
            # Follow-up ends before this candidate is due (and that drops it).
            if rule.after_study:  # past the study's end, but not past a death or withdrawal
                if ended_on is not None and due > ended_on:
                    continue
            elif rule.after_follow_up_ends and triggered_on is not None:
                if triggered_on > last_day:  # started in time: still owed
                    continue
            elif due > last_day:
                continue
            if by_age and not self._of_age(rule, due):
                continue
            if actions and not _active(rule, actions, ordered, due, triggered_on):
                continue
            window_end = due + point.after
            reason = point.head + (named if cause is None else cause) + point.tail
            if window_end > follow_up_end and not rule.outlasts_follow_up:
                window_end = follow_up_end
                reason += ", closing at the end of follow-up"
            if rule.after_study and due > follow_up_end:
                reason += (
                    f"; after the end of study follow-up on {self.follow_up_end_text} (hand-over)"
                )
            if shows_start:
                started_by = self._started_by(actions, due)
                if started_by is not None:
                    reason += f"; started by {started_by}"
            planned.append(
                PlannedAssessment(
                    infusion=segment.number,
                    assessment=rule.id,
                    occurrence=occurrence,
                    name=rule.name,
                    category=rule.category,
                    due=due,
                    window_start=due + point.before,
                    window_end=window_end,
                    protocol=protocol_id,
                    protocol_version=version,
                    reason=reason,
                    basis=rule.basis,
                )
            )

    def _of_age(self, rule: CompiledRule, due: date) -> bool:
        """Whether the patient's age in whole years on ``due`` is within the rule's range."""
        birth = self.patient.birth_date
        if due < birth:  # (not reached from an infusion after birth; exact all the same)
            age = relativedelta(due, birth).years
            if rule.age_from is not None and age < rule.age_from:
                return False
            return rule.age_below is None or age < rule.age_below
        # Age N is reached on the birthday N years on (29 February: the 28th), exactly
        # where relativedelta(due, birth).years becomes N.
        if rule.age_from is not None:
            reached = self._turns(rule.age_from)
            if reached is None or due < reached:
                return False
        if rule.age_below is not None:
            reached = self._turns(rule.age_below)
            return reached is None or due < reached
        return True

    def _turns(self, age: int) -> date | None:
        """The day the patient turns ``age``, or None: after the last representable day."""
        if age not in self.birthdays:
            try:
                self.birthdays[age] = add_months(self.patient.birth_date, 12 * age)
            except ValueError:
                self.birthdays[age] = None
        return self.birthdays[age]


def _active(
    rule: CompiledRule,
    actions: list[_Action],
    ordered: list[_Action],
    due: date,
    triggered_on: date | None,
) -> bool:
    """Whether the rule is switched on at this due date (``ordered``: ``actions`` by date)."""
    if triggered_on is not None:
        # A triggered series runs until the first stop after it began.
        return not any(a.verb == "stop" and triggered_on <= a.on < due for a in actions)
    state = rule.with_infusion
    for action in ordered:
        if action.on >= due:
            break
        state = action.verb == "start"
    return state


def _series_numbers(
    rule: Rule, segment: _Segment, starts: list[_Action], per_day: int
) -> list[tuple[_Action, int]]:
    """The series number of each start within its day.

    A start with a fixed number (an adverse-event case's) keeps it, modulo the day's
    room, so removing another start that day never renumbers it; the others take the
    lowest free numbers, in order of their causes.
    """
    numbered: list[tuple[_Action, int]] = []
    taken: dict[date, set[int]] = defaultdict(set)
    for action in sorted((a for a in starts if a.series is not None), key=lambda a: a.cause):
        assert action.series is not None
        series = action.series % per_day
        if series in taken[action.on]:
            raise InvalidFacts(
                f"two series of {rule.id} on {action.on.isoformat()} need number {series} "
                f"(infusion {segment.number}); {action.cause}"
            )
        taken[action.on].add(series)
        numbered.append((action, series))
    for action in sorted((a for a in starts if a.series is None), key=lambda a: (a.on, a.cause)):
        free = next((n for n in range(per_day) if n not in taken[action.on]), None)
        if free is None:
            # More would spill into the next day's numbers and share its keys.
            raise InvalidFacts(
                f"more than {per_day} series of {rule.id} started on "
                f"{action.on.isoformat()} (infusion {segment.number})"
            )
        taken[action.on].add(free)
        numbered.append((action, free))
    return sorted(numbered, key=lambda pair: (pair[0].on, pair[1]))


def _segments(
    protocol: Protocol, patient: PatientFacts, infusions: Sequence[date]
) -> list[_Segment]:
    if not infusions:
        raise InvalidFacts("at least one infusion date is needed")
    ordered = sorted(infusions)
    if len(set(ordered)) != len(ordered):
        raise InvalidFacts("two infusions on the same day")
    if ordered[0] < patient.birth_date:
        first, born = ordered[0].isoformat(), patient.birth_date.isoformat()
        raise InvalidFacts(f"infusion on {first} is before birth on {born}")
    if patient.diagnosis not in protocol.spec.diagnoses:
        known = ", ".join(protocol.spec.diagnoses)
        raise InvalidFacts(
            f"diagnosis {patient.diagnosis!r} is not covered by {protocol.id}; known: {known}"
        )
    if protocol.spec.follow_up.anchor == "first_infusion":
        ordered = ordered[:1]
    nexts: list[date | None] = [*ordered[1:], None]
    return [
        _Segment(i + 1, start, nxt)
        for i, (start, nxt) in enumerate(zip(ordered, nexts, strict=True))
    ]


def _branch_firings(
    rule: Rule,
    branch: Branch,
    only_at: frozenset[int] | None,
    results: list[RecordedResult],
    planned: set[int],
) -> list[tuple[date, str]]:
    """When a branch fires on these results, and why (oldest first); ``only_at``: the
    point numbers the branch's ``only_at`` names."""
    name = rule.id
    if branch.when is not None:
        condition = branch.when
        if only_at is not None:
            results = [r for r in results if r.occurrence in only_at]
        return [
            (r.on, f"result '{r.value}' of {name} #{r.occurrence} on {r.on.isoformat()}")
            for r in results
            if condition.matches(r.value)
        ]
    assert branch.when_all is not None
    matching = {r.occurrence: r for r in results if branch.when_all.matches(r.value)}
    if not planned or not planned <= matching.keys():
        return []
    last = max(matching[o].on for o in planned)
    return [(last, f"all {name} results {branch.when_all.describe()} (last on {last.isoformat()})")]
