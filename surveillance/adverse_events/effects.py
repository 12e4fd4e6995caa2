"""What a result starts and stops, in the nurse's words: the description a preview and a
real save both give (built by ``previews.effects_of``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

NOTHING = "nothing else changes in the calendar"


@dataclass(frozen=True)
class Planned:
    """One assessment the save starts (added or reinstated) or stops (cancelled)."""

    key: str
    assessment: str
    name: str
    due: date
    window_start: date
    window_end: date


@dataclass(frozen=True)
class Moved:
    key: str
    assessment: str
    name: str
    from_due: date
    to_due: date


@dataclass(frozen=True)
class Deadline:
    """A reporting clock of the case the result opens (a reporting-category assessment)."""

    key: str
    name: str
    due: date


@dataclass(frozen=True)
class OpenedCase:
    term: str
    serious: bool
    deadlines: tuple[Deadline, ...]


@dataclass(frozen=True)
class Effects:
    """What recording (or correcting) one result does beyond the row itself."""

    key: str
    outcome: str  # completed, missed or not_done
    result: str | None  # as stored: the code the engine branches on
    performed_on: date | None
    corrected: bool
    starts: tuple[Planned, ...]
    stops: tuple[Planned, ...]
    moves: tuple[Moved, ...]
    safety_case: OpenedCase | None
    protocol_deviation: bool  # a completed date outside the assessment's window
    window_start: date
    window_end: date
    result_unit: str | None = None  # a quantity's canonical unit: "350 mg/dL", not "350"
    # One line: "positive: starts ...; opens a serious safety case (...)". Derived, so it
    # can never disagree with the lists above.
    summary: str = field(init=False, default="")

    def __post_init__(self) -> None:
        object.__setattr__(self, "summary", summary_of(self))


def summary_of(effects: Effects) -> str:
    label = effects.result or effects.outcome.replace("_", " ")
    if effects.result and effects.result_unit:
        label = f"{effects.result} {effects.result_unit}"
    if effects.corrected:
        label = f"corrected to {label}"
    case = effects.safety_case
    # The case's reporting clocks are said once, with the case, not among what starts.
    reports = {d.key for d in case.deadlines} if case else set()
    clauses = [
        clause
        for clause in (
            _listed("starts", _grouped(p for p in effects.starts if p.key not in reports)),
            _listed("stops", _grouped(effects.stops)),
            _listed("moves", _moved(effects.moves)),
        )
        if clause
    ]
    if not (effects.starts or effects.stops or effects.moves):
        clauses.append(NOTHING)
    if case is not None:
        clauses.append(_opened(case))
    if effects.protocol_deviation:
        clauses.append(
            f"{effects.performed_on} is outside the window {effects.window_start} to "
            f"{effects.window_end} (protocol deviation)"
        )
    return f"{label}: " + "; ".join(clauses)


def _opened(case: OpenedCase) -> str:
    text = f"opens a {'serious ' if case.serious else ''}safety case ({case.term})"
    if not case.deadlines:
        return text
    first = min(d.due for d in case.deadlines)
    last = max(d.due for d in case.deadlines)
    if len(case.deadlines) == 1:
        return f"{text} with a report due {first}"
    return f"{text} with {len(case.deadlines)} reports due {first} to {last}"


def _short(name: str) -> str:
    # Clauses are separated by semicolons: a name's own afterthought ("...; hold further
    # dosing") would read as another clause.
    return name.split(";", 1)[0].strip()


def _grouped(items: Iterable[Planned | Moved]) -> list[str]:
    """One entry per rule, in the order first due: "3 × RCL test, intensified ..."."""
    counts: dict[str, int] = {}
    names: dict[str, str] = {}
    for item in items:
        counts[item.assessment] = counts.get(item.assessment, 0) + 1
        names.setdefault(item.assessment, _short(item.name))
    return [f"{n} × {names[rule]}" if n > 1 else names[rule] for rule, n in counts.items()]


def _moved(moves: tuple[Moved, ...]) -> list[str]:
    if len(moves) == 1:
        [move] = moves
        return [f"{_short(move.name)} from {move.from_due} to {move.to_due}"]
    return _grouped(moves)


def _listed(verb: str, entries: list[str]) -> str:
    return f"{verb} {', '.join(entries)}" if entries else ""
