"""Checks that span fields and assessments of a protocol, run once at load time.

After these pass, ``build_calendar`` cannot fail on the protocol's content.
"""

from __future__ import annotations

from collections.abc import Iterator

from ._errors import ProtocolError
from ._offsets import Offset
from ._protocol import Protocol, Rule, TimePoint, expand_time_points
from ._results import condition_problem, parse_unit
from ._schema import Anchor, AssessmentRule, ProtocolFile, QuantityResult

_END_EVENTS = ("death", "withdrawal")
# Triggered occurrences are numbered YYYYMMDDnn: a few series a day of at most this many.
MAX_TRIGGERED_POINTS = 24
_MIN_DAYS = {"D": 1, "W": 7, "M": 28, "Y": 365}
_MAX_DAYS = {"D": 1, "W": 7, "M": 31, "Y": 366}
# Longer spans are typos (and overflow date arithmetic: Y99999 is past the year 9999).
_MAX_SPAN = Offset("Y", 120)


def _earliest_days(offset: Offset) -> int:
    """The fewest days after its anchor an offset can land (M1: 28, M-1: -31)."""
    return min(offset.amount * _MIN_DAYS[offset.unit], offset.amount * _MAX_DAYS[offset.unit])


def _latest_days(offset: Offset) -> int:
    """The most days after its anchor an offset can land (M1: 31, M-1: -28)."""
    return max(offset.amount * _MIN_DAYS[offset.unit], offset.amount * _MAX_DAYS[offset.unit])


def compile_protocol(spec: ProtocolFile, source: str) -> Protocol:
    """Validate ``spec`` as a whole and expand its time points; raise ``ProtocolError``."""
    check = _Checker(spec, source)
    check.follow_up()
    rules = {rule.id: Rule(rule, check.time_points(rule)) for rule in check.unique_rules()}
    check.references()
    starters = check.starters()
    order = check.branch_order()
    check.end_events()
    check.reporting_category()
    check.result_types()
    return Protocol(spec=spec, source=source, rules=rules, order=order, starters=starters)


class _Checker:
    def __init__(self, spec: ProtocolFile, source: str) -> None:
        self.spec = spec
        self.source = source
        self.ids = [rule.id for rule in spec.assessments]

    def fail(self, reason: str, assessment: str | None = None, field: str | None = None) -> None:
        raise ProtocolError(self.source, reason, assessment=assessment, field=field)

    def follow_up(self) -> None:
        duration = self.spec.follow_up.duration
        if duration.amount <= 0 or duration.approximate_days() > _MAX_SPAN.approximate_days():
            self.fail(
                f"the follow-up lasts {duration}: give a positive duration of at most 120 years",
                None,
                "follow_up.duration",
            )

    def unique_rules(self) -> Iterator[AssessmentRule]:
        seen: set[str] = set()
        for index, rule in enumerate(self.spec.assessments):
            if rule.id in seen:
                self.fail(f"duplicate assessment id (item {index + 1})", rule.id, "id")
            seen.add(rule.id)
            yield rule

    def time_points(self, rule: AssessmentRule) -> tuple[TimePoint, ...]:
        points: list[TimePoint] = []
        for index, entry in enumerate(rule.schedule):
            where = f"schedule[{index}]"
            window = entry.window or rule.window
            if window is None:
                self.fail(
                    "no window: give 'window' on the assessment or on this entry", rule.id, where
                )
                raise AssertionError  # unreachable; keeps mypy sure window is set
            if not window.before <= 0 <= window.after:
                self.fail(
                    f"window [{window.before}, {window.after}] does not contain the due date: "
                    "write [days before (<= 0), days after (>= 0)]",
                    rule.id,
                    f"{where}.window" if entry.window else "window",
                )
            try:
                offsets = expand_time_points(entry)
            except ValueError as exc:
                self.fail(str(exc), rule.id, where)
                raise AssertionError from exc
            for offset in offsets:
                self._check_offset(rule, offset, window.before, where)
                points.append(TimePoint(len(points) + 1, offset, window))
        if rule.anchor is Anchor.trigger and len(points) > MAX_TRIGGERED_POINTS:
            self.fail(
                f"a triggered assessment may have at most {MAX_TRIGGERED_POINTS} time points "
                f"(it has {len(points)})",
                rule.id,
                "schedule",
            )
        return tuple(points)

    def _check_offset(self, rule: AssessmentRule, offset: Offset, before: int, where: str) -> None:
        follow_up = self.spec.follow_up
        if abs(offset.approximate_days()) > _MAX_SPAN.approximate_days():
            self.fail(f"time point {offset} is more than 120 years from its anchor", rule.id, where)
        if rule.anchor is Anchor.birth:
            if offset.amount < 0:
                self.fail(f"time point {offset} is before birth", rule.id, where)
            return
        if rule.anchor is Anchor.trigger:
            if offset.amount < 0 or _earliest_days(offset) + before < 0:
                self.fail(
                    f"time point {offset} with {before} days before opens its window before "
                    "the result or event that starts it",
                    rule.id,
                    where,
                )
            return
        if rule.after_study:
            pass  # the hand-over past the study's end: checked against the 120-year span only
        elif offset.approximate_days() > follow_up.duration.approximate_days():
            self.fail(
                f"time point {offset} is after the end of follow-up ({follow_up.duration})",
                rule.id,
                where,
            )
        # Whatever the anchor date, the window must not open before the baseline.
        if _earliest_days(offset) + before < _latest_days(follow_up.baseline_from):
            self.fail(
                f"time point {offset} with {before} days before opens its window before the "
                f"protocol's baseline ({follow_up.baseline_from})",
                rule.id,
                where,
            )

    def _assessment_ref(self, target: str, assessment: str | None, field: str) -> None:
        if target not in self.ids:
            self.fail(
                f"unknown assessment '{target}'{_did_you_mean(target, self.ids)}", assessment, field
            )

    def references(self) -> None:
        known_sources = list(self.spec.references)
        diagnoses = list(self.spec.diagnoses)
        for rule in self.spec.assessments:
            if rule.anchor is Anchor.trigger and rule.starts == "with_infusion":
                self.fail(
                    "an assessment anchored on its trigger must say 'starts: when_started'",
                    rule.id,
                    "starts",
                )
            if rule.after_follow_up_ends and rule.anchor is not Anchor.trigger:
                self.fail(
                    "only an assessment anchored on its trigger can outlast follow-up",
                    rule.id,
                    "after_follow_up_ends",
                )
            if rule.after_study and rule.anchor is not Anchor.infusion:
                self.fail(
                    "only an assessment anchored on the infusion can be scheduled past the "
                    "study's end (a triggered one outlasts it with 'after_follow_up_ends')",
                    rule.id,
                    "after_study",
                )
            if rule.yearly_contact and rule.anchor is Anchor.trigger:
                self.fail(
                    "a yearly contact is a scheduled visit: it cannot be anchored on a trigger",
                    rule.id,
                    "yearly_contact",
                )
            for i, source in enumerate(rule.evidence.sources):
                if source not in known_sources:
                    self.fail(
                        f"unknown reference '{source}'{_did_you_mean(source, known_sources)}; "
                        "add it under 'references'",
                        rule.id,
                        f"evidence.sources[{i}]",
                    )
            for i, diagnosis in enumerate(rule.applies_to.diagnoses or ()):
                if diagnosis not in diagnoses:
                    listed = ", ".join(diagnoses)
                    self.fail(
                        f"unknown diagnosis '{diagnosis}'; the protocol lists {listed}",
                        rule.id,
                        f"applies_to.diagnoses[{i}]",
                    )
            for b, branch in enumerate(rule.on_result):
                self._only_at(rule, b, branch.only_at)
                for verb in ("start", "stop"):
                    for i, target in enumerate(getattr(branch, verb)):
                        self._assessment_ref(target, rule.id, f"on_result[{b}].{verb}[{i}]")
        for kind, event in self.spec.events.items():
            for verb in ("start", "stop"):
                for i, target in enumerate(getattr(event, verb)):
                    self._assessment_ref(target, None, f"events.{kind}.{verb}[{i}]")

    def _only_at(self, rule: AssessmentRule, b: int, only_at: tuple[Offset, ...] | None) -> None:
        if only_at is None:
            return
        field = f"on_result[{b}].only_at"
        if rule.anchor is Anchor.trigger:
            self.fail(
                "'only_at' names time points of a scheduled assessment; a triggered one's "
                "time points move with its trigger",
                rule.id,
                field,
            )
        offsets = [offset for entry in rule.schedule for offset in expand_time_points(entry)]
        for i, offset in enumerate(only_at):
            if offset not in offsets:
                listed = ", ".join(str(o) for o in offsets)
                self.fail(
                    f"{offset} is not one of its time points ({listed})", rule.id, f"{field}[{i}]"
                )

    def starters(self) -> dict[str, tuple[str, ...]]:
        """Which assessments' results start each assessment (rule id -> starter ids)."""
        started_by: dict[str, list[str]] = {rule_id: [] for rule_id in self.ids}
        for rule in self.spec.assessments:
            for branch in rule.on_result:
                for target in (*branch.start, *branch.stop):
                    if rule.id not in started_by[target]:
                        started_by[target].append(rule.id)
        started_by_event = {t for event in self.spec.events.values() for t in event.start}
        started_by_result = {t for r in self.spec.assessments for b in r.on_result for t in b.start}
        for rule in self.spec.assessments:
            if (
                rule.starts == "when_started"
                and rule.id not in started_by_event | started_by_result
            ):
                self.fail(
                    "'starts: when_started' but no result branch or event starts it",
                    rule.id,
                    "starts",
                )
        return {rule_id: tuple(ids) for rule_id, ids in started_by.items()}

    def branch_order(self) -> tuple[str, ...]:
        """Rule ids, each after the rules whose results start or stop it; refuse cycles."""
        edges = {
            rule.id: [t for b in rule.on_result for t in (*b.start, *b.stop)]
            for rule in self.spec.assessments
        }
        order: list[str] = []
        state: dict[str, str] = {}

        def visit(rule_id: str, path: list[str]) -> None:
            if state.get(rule_id) == "done":
                return
            if state.get(rule_id) == "open":
                cycle = [*path[path.index(rule_id) :], rule_id]
                self.fail(f"branches form a cycle: {' -> '.join(cycle)}", rule_id, "on_result")
            state[rule_id] = "open"
            for target in edges[rule_id]:
                if target != rule_id:  # a rule may stop itself (e.g. Tanner stage 5)
                    visit(target, [*path, rule_id])
            state[rule_id] = "done"
            order.append(rule_id)

        for rule_id in self.ids:
            visit(rule_id, [])
        for rule in self.spec.assessments:
            for b, branch in enumerate(rule.on_result):
                if rule.id in branch.start:
                    self.fail(
                        "branches form a cycle: an assessment's result starts itself",
                        rule.id,
                        f"on_result[{b}].start",
                    )
        return tuple(reversed(order))

    def end_events(self) -> None:
        for kind in _END_EVENTS:
            event = self.spec.events.get(kind)
            if event is None or not event.end_follow_up:
                self.fail(
                    f"every protocol must say what ends follow-up: add event '{kind}' "
                    "with 'end_follow_up: true'",
                    None,
                    f"events.{kind}",
                )

    def result_types(self) -> None:
        """Every result the engine branches on has a declared type, and every condition
        names a value that type can produce (a typo would silently never match)."""
        for rule in self.spec.assessments:
            conditions = [
                (f"on_result[{i}].{'when' if b.when else 'when_all'}", b.when or b.when_all)
                for i, b in enumerate(rule.on_result)
            ]
            if rule.opens_safety_case is not None:
                conditions.append(("opens_safety_case.when", rule.opens_safety_case.when))
            if rule.result is None:
                if conditions:
                    self.fail(
                        "declare what its result is ('result: {type: coded|quantity|ordinal"
                        "|date, ...}'): the engine branches on it",
                        rule.id,
                        "result",
                    )
                continue
            if isinstance(rule.result, QuantityResult):
                self._units(rule.id, rule.result)
            for field, condition in conditions:
                assert condition is not None
                reason = condition_problem(rule.result, condition)
                if reason is not None:
                    self.fail(reason, rule.id, field)

    def _units(self, rule_id: str, spec: QuantityResult) -> None:
        try:
            canonical = parse_unit(spec.unit)
        except ValueError as exc:
            self.fail(str(exc), rule_id, "result.unit")
        for i, text in enumerate(spec.accepts):
            try:
                unit = parse_unit(text)
            except ValueError as exc:
                self.fail(str(exc), rule_id, f"result.accepts[{i}]")
            if unit.dimensionality != canonical.dimensionality:
                self.fail(
                    f"{text!r} cannot be converted to {spec.unit!r}",
                    rule_id,
                    f"result.accepts[{i}]",
                )

    def reporting_category(self) -> None:
        declared = self.spec.reporting_category
        used = list(dict.fromkeys(rule.category for rule in self.spec.assessments))
        if declared is not None and declared not in used:
            self.fail(
                f"no assessment has category '{declared}'{_did_you_mean(declared, used)}",
                None,
                "reporting_category",
            )


def _did_you_mean(word: str, options: list[str]) -> str:
    from difflib import get_close_matches

    close = get_close_matches(word, options, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
