"""Why an assessment is due, in the reader's language.

The rules engine writes each planned assessment's reason as English text ("month 6 after
infusion of 2024-01-31; window −30/+30 days") and the database keeps it so. Here a stored
reason is read back into its parts with anchored patterns, one per form the engine writes
(``rules/_engine.py``: ``_reason``, ``_triggered``, ``_planned``, the causes of events and
``_branch_firings``; ``Offset.describe``, ``Window.describe``, ``Condition.describe``), and
written again from catalog messages, with dates as the page writes them.

English is written back exactly as stored (ISO dates included): a parse is only accepted
if writing it in English gives the stored text again, byte for byte. Text of any other
shape (an older engine's, a hand-edited row) is shown as stored, never lost or broken.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Literal, cast

from babel.numbers import format_decimal

from surveillance.kit import i18n
from surveillance.kit.i18n import N_

Unit = Literal["day", "week", "month", "year"]

_DATE = r"\d{4}-\d{2}-\d{2}"
_UNIT = r"(?P<unit>day|week|month|year)"
_ID = r"[a-z][a-z0-9_]*"

# The first part: where the date comes from (anchor and time point).
_BIRTHDAY = re.compile(rf"^(?P<n>\d+)(?:st|nd|rd|th) birthday \(born (?P<on>{_DATE})\)$")
_AFTER_BIRTH = re.compile(rf"^{_UNIT} (?P<n>\d+) after birth on (?P<on>{_DATE})$")
_AFTER_INFUSION = re.compile(rf"^{_UNIT} (?P<n>\d+) after infusion of (?P<on>{_DATE})$")
_BEFORE_INFUSION = re.compile(rf"^(?P<n>\d+) {_UNIT}s? before infusion of (?P<on>{_DATE})$")
_AFTER_CAUSE = re.compile(rf"^{_UNIT} (?P<n>\d+) after (?P<cause>.+)$")
# What started a series or switched a rule on: an event, one result, all results.
_EVENT = re.compile(rf"^(?P<kind>[a-z][a-z0-9 ]*?)(?: \((?P<source>.+)\))? on (?P<on>{_DATE})$")
_RESULT = re.compile(
    rf"^result '(?P<value>.*)' of (?P<rule>{_ID}) #(?P<number>\d+) on (?P<on>{_DATE})$"
)
_ALL_RESULTS = re.compile(
    rf"^all (?P<rule>{_ID}) results (?P<condition>.+) \(last on (?P<on>{_DATE})\)$"
)
_BOUND = re.compile(r"^(?P<op>below|at most|above|at least) (?P<x>-?\d[\d.e+-]*)$")
_CASE = re.compile(r"^adverse event (?P<case>\S+)$")
# The whole text: the first part, then what the engine appends, each optional (a page may
# show the first part alone).
_WHOLE = re.compile(
    r"^(?P<head>.+?)"
    r"(?:; window (?P<before>0|−\d+)/\+(?P<after>\d+) days"
    r"(?P<closing>, closing at the end of follow-up)?)?"
    rf"(?:; after the end of study follow-up on (?P<study_end>{_DATE}) \(hand-over\))?"
    r"(?:; started by (?P<started_by>.+))?$"
)

_POINTS = {
    "day": N_("day %(n)s"),
    "week": N_("week %(n)s"),
    "month": N_("month %(n)s"),
    "year": N_("year %(n)s"),
}
# The engine writes an event's kind with spaces for underscores; these are the kinds the
# bundled protocols declare (a test checks every one is here). Another kind reads as written.
EVENT_WORDS = {
    "new malignancy": N_("new malignancy"),
    "unexplained illness": N_("unexplained illness"),
    "death": N_("death"),
    "serious adverse event": N_("serious adverse event"),
    "unexpected fatal or life threatening reaction": N_(
        "unexpected fatal or life threatening reaction"
    ),
    "unexpected serious reaction": N_("unexpected serious reaction"),
    "withdrawal": N_("withdrawal"),
}
_BOUNDS = {
    "below": N_("below %(x)s"),
    "at most": N_("at most %(x)s"),
    "above": N_("above %(x)s"),
    "at least": N_("at least %(x)s"),
}
# English ordinal suffixes; translators give each its own form ("18°", "18.").
_ORDINALS = {
    "st": N_("%(n)sst"),
    "nd": N_("%(n)snd"),
    "rd": N_("%(n)srd"),
    "th": N_("%(n)sth"),
}


@dataclass(frozen=True)
class Event:
    kind: str  # as the engine wrote it: "new malignancy"
    source: str | None  # "adverse event ROM-001-AE01"
    on: date


@dataclass(frozen=True)
class Result:
    value: str
    rule: str
    number: int
    on: date


@dataclass(frozen=True)
class AllResults:
    rule: str
    condition: str  # as the engine described it: "negative", "below 400", "a or b"
    last: date


Cause = Event | Result | AllResults


@dataclass(frozen=True)
class Anchor:
    """What the time point counts from: an infusion, birth (a birthday for years), or the
    cause of a triggered series."""

    kind: Literal["infusion", "birthday", "birth", "cause"]
    on: date | None = None
    cause: Cause | None = None


@dataclass(frozen=True)
class Reason:
    unit: Unit
    amount: int  # below 0: before the anchor
    anchor: Anchor
    window: tuple[int, int] | None = None  # days before (<= 0) and after the due date
    closing: bool = False  # the window is cut at the end of follow-up
    study_end: date | None = None  # scheduled past the end of the study (hand-over)
    started_by: Cause | None = None


@lru_cache(maxsize=8192)
def parse(text: str) -> Reason | None:
    """The parts of a stored reason, or ``None`` if it is not a form the engine writes."""
    try:
        return _parse(text)
    except ValueError:  # a date that is not one: "2024-02-30"
        return None


def _parse(text: str) -> Reason | None:
    whole = _WHOLE.match(text)
    if whole is None:
        return None
    point = _parse_head(whole["head"])
    started_by = _parse_cause(whole["started_by"]) if whole["started_by"] else None
    if point is None or (whole["started_by"] and started_by is None):
        return None
    unit, amount, anchor = point
    window = None
    if whole["before"] is not None:
        window = (-int(whole["before"].lstrip("−")), int(whole["after"]))
    study_end = whole["study_end"]
    reason = Reason(
        unit,
        amount,
        anchor,
        window,
        closing=whole["closing"] is not None,
        study_end=date.fromisoformat(study_end) if study_end else None,
        started_by=started_by,
    )
    # Loose patterns, exact check: only what writes back to the very same text is read.
    return reason if _Writer("en").reason(reason) == text else None


def localized(text: str, locale: str | None = None) -> str:
    """``text`` (a stored reason, or its first part) in ``locale`` (default: the current
    rendering's); as stored if it is not a form the engine writes."""
    return _localized(text, locale or i18n.current_locale())


@lru_cache(maxsize=8192)  # the same page asked for again writes nothing again
def _localized(text: str, locale: str) -> str:
    reason = parse(text)
    return text if reason is None else _Writer(locale).reason(reason)


def _parse_head(head: str) -> tuple[Unit, int, Anchor] | None:
    if found := _BIRTHDAY.match(head):
        return "year", int(found["n"]), Anchor("birthday", _day(found["on"]))
    if found := _AFTER_BIRTH.match(head):
        return _unit(found), int(found["n"]), Anchor("birth", _day(found["on"]))
    if found := _AFTER_INFUSION.match(head):
        return _unit(found), int(found["n"]), Anchor("infusion", _day(found["on"]))
    if found := _BEFORE_INFUSION.match(head):
        return _unit(found), -int(found["n"]), Anchor("infusion", _day(found["on"]))
    if (found := _AFTER_CAUSE.match(head)) and (cause := _parse_cause(found["cause"])):
        return _unit(found), int(found["n"]), Anchor("cause", cause=cause)
    return None


def _parse_cause(text: str) -> Cause | None:
    if found := _RESULT.match(text):
        return Result(found["value"], found["rule"], int(found["number"]), _day(found["on"]))
    if found := _ALL_RESULTS.match(text):
        return AllResults(found["rule"], found["condition"], _day(found["on"]))
    if found := _EVENT.match(text):
        return Event(found["kind"], found["source"], _day(found["on"]))
    return None


def _unit(found: re.Match[str]) -> Unit:
    return cast(Unit, found["unit"])


def _day(text: str) -> date:
    return date.fromisoformat(text)


class _Writer:
    """Writes a parsed reason in one language (English: the engine's own text)."""

    def __init__(self, locale: str) -> None:
        self.locale = i18n.supported(locale) or i18n.DEFAULT_LOCALE
        self.catalog = i18n.translations(self.locale)

    def _(self, message: str, **values: object) -> str:
        return self.catalog.gettext(message) % values

    def day(self, on: date) -> str:
        """ISO in English, as stored; the page's spelled-out dates in the other languages."""
        if self.locale == i18n.DEFAULT_LOCALE:
            return on.isoformat()
        if i18n.current_locale() == self.locale:  # a page's rendering: already in force
            return i18n.format_day(on)
        with i18n.use_locale(self.locale):
            return i18n.format_day(on)

    def reason(self, reason: Reason) -> str:
        parts = [self.head(reason)]
        if reason.window is not None:
            window = self.window(*reason.window)
            if reason.closing:
                window = self._("%(window)s, closing at the end of follow-up", window=window)
            parts.append(window)
        if reason.study_end is not None:
            parts.append(
                self._(
                    "after the end of study follow-up on %(date)s (hand-over)",
                    date=self.day(reason.study_end),
                )
            )
        if reason.started_by is not None:
            parts.append(self.started_by(reason.started_by))
        return "; ".join(parts)

    def head(self, reason: Reason) -> str:
        anchor, unit, amount = reason.anchor, reason.unit, reason.amount
        if anchor.kind == "birthday" and anchor.on is not None:
            return self._(
                "%(ordinal)s birthday (born %(date)s)",
                ordinal=self.ordinal(amount),
                date=self.day(anchor.on),
            )
        if anchor.kind == "infusion" and anchor.on is not None and amount < 0:
            return self.before_infusion(unit, -amount, anchor.on)
        point = self._(_POINTS[unit], n=amount)
        if anchor.kind == "infusion" and anchor.on is not None:
            return self._(
                "%(point)s after infusion of %(date)s", point=point, date=self.day(anchor.on)
            )
        if anchor.kind == "birth" and anchor.on is not None:
            return self._(
                "%(point)s after birth on %(date)s", point=point, date=self.day(anchor.on)
            )
        assert anchor.cause is not None
        return self.after(point, anchor.cause)

    def after(self, point: str, cause: Cause) -> str:
        """A triggered series' time point: "day 14 after <cause>"."""
        if isinstance(cause, Result):
            return self._(
                "%(point)s after result '%(value)s' of %(rule)s #%(number)s on %(date)s",
                point=point,
                **self.result(cause),
            )
        if isinstance(cause, AllResults):
            return self._(
                "%(point)s after all %(rule)s results %(condition)s (last on %(date)s)",
                point=point,
                **self.all_results(cause),
            )
        if cause.source is not None:
            return self._(
                "%(point)s after %(event)s (%(source)s) on %(date)s",
                point=point,
                **self.event(cause),
            )
        return self._("%(point)s after %(event)s on %(date)s", point=point, **self.event(cause))

    def started_by(self, cause: Cause) -> str:
        """What switched a conditional rule on: "started by <cause>"."""
        if isinstance(cause, Result):
            return self._(
                "started by result '%(value)s' of %(rule)s #%(number)s on %(date)s",
                **self.result(cause),
            )
        if isinstance(cause, AllResults):
            return self._(
                "started by all %(rule)s results %(condition)s (last on %(date)s)",
                **self.all_results(cause),
            )
        if cause.source is not None:
            return self._("started by %(event)s (%(source)s) on %(date)s", **self.event(cause))
        return self._("started by %(event)s on %(date)s", **self.event(cause))

    def event(self, cause: Event) -> dict[str, str]:
        words = EVENT_WORDS.get(cause.kind)
        values = {"event": self._(words) if words else cause.kind, "date": self.day(cause.on)}
        if cause.source is not None:
            case = _CASE.match(cause.source)
            values["source"] = (
                self._("adverse event %(case)s", case=case["case"]) if case else cause.source
            )
        return values

    def result(self, cause: Result) -> dict[str, object]:
        return {
            "value": cause.value,
            "rule": cause.rule,
            "number": cause.number,
            "date": self.day(cause.on),
        }

    def all_results(self, cause: AllResults) -> dict[str, str]:
        return {
            "rule": cause.rule,
            "condition": self.condition(cause.condition),
            "date": self.day(cause.last),
        }

    def condition(self, text: str) -> str:
        """``Condition.describe``'s text: a bound with its number, choices, or one value."""
        if bound := _BOUND.match(text):
            operator, limit = bound.group("op", "x")
            return self._(_BOUNDS[operator], x=self.number(limit))
        choices = text.split(" or ")
        written = choices[0]
        for choice in choices[1:]:
            written = self._("%(choices)s or %(last)s", choices=written, last=choice)
        return written

    def number(self, text: str) -> str:
        """As the engine wrote it in English ("1.5"); "1,5" in Italian and German."""
        if self.locale == i18n.DEFAULT_LOCALE:
            return text
        try:
            return str(format_decimal(float(text), locale=self.locale))
        except ValueError:
            return text

    def window(self, before: int, after: int) -> str:
        if before == 0:
            return self._("window 0/+%(after)s days", after=after)
        return self._("window −%(before)s/+%(after)s days", before=-before, after=after)

    def before_infusion(self, unit: Unit, count: int, on: date) -> str:
        ngettext = self.catalog.ngettext  # called with literal forms: Babel extracts them
        if unit == "day":
            text = ngettext(
                "%(count)s day before infusion of %(date)s",
                "%(count)s days before infusion of %(date)s",
                count,
            )
        elif unit == "week":
            text = ngettext(
                "%(count)s week before infusion of %(date)s",
                "%(count)s weeks before infusion of %(date)s",
                count,
            )
        elif unit == "month":
            text = ngettext(
                "%(count)s month before infusion of %(date)s",
                "%(count)s months before infusion of %(date)s",
                count,
            )
        else:
            text = ngettext(
                "%(count)s year before infusion of %(date)s",
                "%(count)s years before infusion of %(date)s",
                count,
            )
        return text % {"count": count, "date": self.day(on)}

    def ordinal(self, n: int) -> str:
        suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
        return self._(_ORDINALS[suffix], n=n)
