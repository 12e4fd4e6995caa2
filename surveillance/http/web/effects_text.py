"""What a result starts and stops, in the language of the page that shows it.

``Effects.summary`` (``adverse_events.effects``) is the English of the API and the command
line; a page says the same clauses through the catalogs, with the assessments' names in
the page's language and dates in words. Call it while rendering (``use_locale``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from surveillance.adverse_events.effects import Effects, Moved, OpenedCase, Planned
from surveillance.calendar.sync import CalendarChange
from surveillance.kit.i18n import N_, format_day, term
from surveillance.kit.i18n import gettext as _

# A recorded row's outcome when it has no result (the same words as its status elsewhere).
OUTCOME_WORDS = {"completed": N_("done"), "missed": N_("missed"), "not_done": N_("not done")}
# What a change did to the calendar, counted (``CalendarChange.summary`` is the English of
# the command line and the API); a flash sentence, translated when the next page shows it.
CALENDAR_COUNTS = N_(
    "The calendar: {added} added, {moved} moved, {cancelled} cancelled, "
    "{reinstated} reinstated, {relabelled} relabelled."
)


def effects_summary(effects: Effects) -> str:
    """ "positivo: avvia 3 × …; apre un caso di sicurezza grave (…)" — one line."""
    label = effects.result or _(OUTCOME_WORDS.get(effects.outcome, effects.outcome))
    if effects.result and effects.result_unit:
        label = f"{effects.result} {effects.result_unit}"
    if effects.corrected:
        label = _("corrected to %(label)s") % {"label": label}
    case = effects.safety_case
    # The case's reporting clocks are said once, with the case, not among what starts.
    reports = {d.key for d in case.deadlines} if case else set()
    starts = _grouped(p for p in effects.starts if p.key not in reports)
    clauses = []
    if starts:
        clauses.append(_("starts %(what)s") % {"what": ", ".join(starts)})
    if effects.stops:
        clauses.append(_("stops %(what)s") % {"what": ", ".join(_grouped(effects.stops))})
    if len(effects.moves) == 1:
        [move] = effects.moves
        old, new = format_day(move.from_due), format_day(move.to_due)
        moved = {"name": _name(move.name), "old": old, "new": new}
        clauses.append(_("moves %(name)s from %(old)s to %(new)s") % moved)
    elif effects.moves:
        clauses.append(_("moves %(what)s") % {"what": ", ".join(_grouped(effects.moves))})
    if not (effects.starts or effects.stops or effects.moves):
        clauses.append(_("nothing else changes in the calendar"))
    if case is not None:
        clauses.append(_opened(case))
    if effects.protocol_deviation:
        window = {
            "on": format_day(effects.performed_on),
            "start": format_day(effects.window_start),
            "end": format_day(effects.window_end),
        }
        clauses.append(
            _("%(on)s is outside the window %(start)s to %(end)s (protocol deviation)") % window
        )
    return f"{label}: " + "; ".join(clauses)


def _opened(case: OpenedCase) -> str:
    if case.serious:
        text = _("opens a serious safety case (%(term)s)") % {"term": case.term}
    else:
        text = _("opens a safety case (%(term)s)") % {"term": case.term}
    if not case.deadlines:
        return text
    first = format_day(min(d.due for d in case.deadlines))
    last = format_day(max(d.due for d in case.deadlines))
    if len(case.deadlines) == 1:
        return _("%(case)s with a report due %(due)s") % {"case": text, "due": first}
    values = {"case": text, "n": len(case.deadlines), "first": first, "last": last}
    return _("%(case)s with %(n)s reports due %(first)s to %(last)s") % values


def _name(name: str) -> str:
    # Clauses are separated by semicolons: a name's own afterthought ("...; hold further
    # dosing") would read as another clause.
    return term(name).split(";", 1)[0].strip()


def _grouped(items: Iterable[Planned | Moved]) -> list[str]:
    """One entry per rule, in the order first due: "3 × RCL test, intensified ..."."""
    counts: dict[str, int] = {}
    names: dict[str, str] = {}
    for item in items:
        counts[item.assessment] = counts.get(item.assessment, 0) + 1
        names.setdefault(item.assessment, _name(item.name))
    return [f"{n} × {names[rule]}" if n > 1 else names[rule] for rule, n in counts.items()]


def calendar_sentence(change: CalendarChange) -> tuple[str, dict[str, Any]]:
    """``CALENDAR_COUNTS`` with ``change``'s counts: a sentence for ``set_flash``."""
    counts = {
        "added": len(change.added),
        "moved": len(change.moved),
        "cancelled": len(change.cancelled),
        "reinstated": len(change.reinstated),
        "relabelled": len(change.relabelled),
    }
    return (CALENDAR_COUNTS, counts)
