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
from datetime import date, timedelta

from dateutil.relativedelta import relativedelta

from ._errors import InvalidFacts
from ._facts import PatientFacts, PlannedAssessment, RecordedEvent, RecordedResult
from ._protocol import Protocol, Rule, TimePoint
from ._schema import Anchor, Branch

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


@dataclass(frozen=True)
class _Candidate:
    occurrence: int
    point: TimePoint
    due: date
    reason: str
    triggered_on: date | None = None  # the start of its series, for triggered rules


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
        for rule_id in self.protocol.order:
            rule = self.protocol.rules[rule_id]
            for segment in self.segments:
                candidates = self._candidates(rule, segment)
                self._apply_branches(rule, segment, candidates)
                planned.extend(self._keep(rule, segment, candidates))
        planned.sort(key=lambda a: (a.due, a.assessment, a.infusion, a.occurrence))
        return planned

    # -- time points -------------------------------------------------------------------

    def _candidates(self, rule: Rule, segment: _Segment) -> list[_Candidate]:
        if rule.spec.anchor is Anchor.trigger:
            return self._triggered(rule, segment)
        anchor = self.patient.birth_date if rule.spec.anchor is Anchor.birth else segment.start
        out: list[_Candidate] = []
        for point in rule.points:
            due = point.offset.apply(anchor)
            if not self._in_segment(rule, segment, point, due):
                continue
            out.append(_Candidate(point.number, point, due, self._reason(rule, point, segment)))
        return out

    def _in_segment(self, rule: Rule, segment: _Segment, point: TimePoint, due: date) -> bool:
        if rule.spec.anchor is Anchor.birth and due < segment.start:
            return False
        before_next = segment.next_start is None or due < segment.next_start
        # Pre-infusion (baseline) points belong to their own infusion even if they fall
        # before it; later points of an earlier infusion give way to the next one.
        return before_next or (rule.spec.anchor is Anchor.infusion and point.offset.amount < 0)

    def _triggered(self, rule: Rule, segment: _Segment) -> list[_Candidate]:
        """One series per start; occurrence numbers carry the trigger date (YYYYMMDDnn),
        so a late-recorded, earlier-dated trigger never renumbers stored series."""
        out: list[_Candidate] = []
        starts = [a for a in self.actions[(segment.number, rule.id)] if a.verb == "start"]
        per_day = (TRIGGERED_SERIES_SPAN - 1) // len(rule.points)  # n stays within 1..99
        for action, series in _series_numbers(rule, segment, starts, per_day):
            base = int(action.on.strftime("%Y%m%d")) * TRIGGERED_SERIES_SPAN
            for point in rule.points:
                due = point.offset.apply(action.on)
                occurrence = base + series * len(rule.points) + point.number
                reason = f"{_describe(point)} after {action.cause}"
                out.append(_Candidate(occurrence, point, due, reason, action.on))
        return out

    def _reason(self, rule: Rule, point: TimePoint, segment: _Segment) -> str:
        offset = point.offset
        if rule.spec.anchor is Anchor.birth:
            born = self.patient.birth_date.isoformat()
            if offset.unit == "Y":
                return f"{_ordinal(offset.amount)} birthday (born {born})"
            return f"{offset.describe()} after birth on {born}"
        joiner = " " if offset.amount < 0 else " after "
        return f"{offset.describe()}{joiner}infusion of {segment.start.isoformat()}"

    # -- branches ----------------------------------------------------------------------

    def _apply_branches(self, rule: Rule, segment: _Segment, candidates: list[_Candidate]) -> None:
        """Turn this rule's recorded results into start/stop actions on other rules."""
        results = self.results.get((segment.number, rule.id), [])
        if not results:
            return
        planned = {c.occurrence for c in candidates if self._active(rule, segment, c)}
        for branch in rule.spec.on_result:
            for on, cause in _branch_firings(rule, branch, results, planned):
                for target in branch.start:
                    self.actions[(segment.number, target)].append(_Action(on, "start", cause))
                for target in branch.stop:
                    self.actions[(segment.number, target)].append(_Action(on, "stop", cause))

    def _active(self, rule: Rule, segment: _Segment, candidate: _Candidate) -> bool:
        """Whether the rule is switched on at this candidate's due date."""
        actions = self.actions.get((segment.number, rule.id), [])
        if candidate.triggered_on is not None:
            # A triggered series runs until the first stop after it began.
            began = candidate.triggered_on
            return not any(a.verb == "stop" and began <= a.on < candidate.due for a in actions)
        state = rule.spec.starts == "with_infusion"
        for action in sorted(actions, key=lambda a: a.on):
            if action.on >= candidate.due:
                break
            state = action.verb == "start"
        return state

    def _started_by(self, rule: Rule, segment: _Segment, due: date) -> str | None:
        """The cause that switched a conditional rule on, for the reason text."""
        if rule.spec.starts == "with_infusion" or rule.spec.anchor is Anchor.trigger:
            return None
        earlier = [a for a in self.actions[(segment.number, rule.id)] if a.on < due]
        return max(earlier, key=lambda a: a.on).cause if earlier else None

    # -- filters -----------------------------------------------------------------------

    def _keep(
        self, rule: Rule, segment: _Segment, candidates: list[_Candidate]
    ) -> list[PlannedAssessment]:
        kept: list[PlannedAssessment] = []
        for candidate in candidates:
            if self._ended_before(rule, candidate):
                continue
            if not self._applies(rule, candidate.due) or not self._active(rule, segment, candidate):
                continue
            kept.append(self._planned(rule, segment, candidate))
        return kept

    def _ended_before(self, rule: Rule, candidate: _Candidate) -> bool:
        """Whether follow-up ends before this candidate is due (and that drops it)."""
        if rule.spec.after_study:  # past the study's end, but not past a death or withdrawal
            return self.ended_on is not None and candidate.due > self.ended_on
        last_day = min(self.last_day, self.follow_up_end)
        if rule.spec.after_follow_up_ends and candidate.triggered_on is not None:
            return candidate.triggered_on > last_day  # started in time: still owed
        return candidate.due > last_day

    def _applies(self, rule: Rule, due: date) -> bool:
        applies = rule.spec.applies_to
        if applies.diagnoses is not None and self.patient.diagnosis not in applies.diagnoses:
            return False
        if applies.age_from is None and applies.age_below is None:
            return True
        age = relativedelta(due, self.patient.birth_date).years
        if applies.age_from is not None and age < applies.age_from:
            return False
        return applies.age_below is None or age < applies.age_below

    def _planned(self, rule: Rule, segment: _Segment, candidate: _Candidate) -> PlannedAssessment:
        window = candidate.point.window
        window_end = candidate.due + timedelta(days=window.after)
        reason = f"{candidate.reason}; window {window.describe()}"
        outlasts = rule.spec.after_follow_up_ends or rule.spec.after_study
        if window_end > self.follow_up_end and not outlasts:
            window_end = self.follow_up_end
            reason += ", closing at the end of follow-up"
        if rule.spec.after_study and candidate.due > self.follow_up_end:
            end = self.follow_up_end.isoformat()
            reason += f"; after the end of study follow-up on {end} (hand-over)"
        started_by = self._started_by(rule, segment, candidate.due)
        if started_by is not None:
            reason += f"; started by {started_by}"
        return PlannedAssessment(
            infusion=segment.number,
            assessment=rule.id,
            occurrence=candidate.occurrence,
            name=rule.spec.name,
            category=rule.spec.category,
            due=candidate.due,
            window_start=candidate.due + timedelta(days=window.before),
            window_end=window_end,
            protocol=self.protocol.id,
            protocol_version=self.protocol.version,
            reason=reason,
            basis=rule.spec.evidence.basis.value,
        )


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
    rule: Rule, branch: Branch, results: list[RecordedResult], planned: set[int]
) -> list[tuple[date, str]]:
    """When a branch fires on these results, and why (oldest first)."""
    name = rule.id
    if branch.when is not None:
        condition = branch.when
        if branch.only_at is not None:
            points = {p.number for p in rule.points if p.offset in branch.only_at}
            results = [r for r in results if r.occurrence in points]
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


def _describe(point: TimePoint) -> str:
    return point.offset.describe()


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
