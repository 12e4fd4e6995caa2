"""Why an assessment was cancelled, moved or marked, in the reader's language.

The services write an assessment's ``status_reason`` (and the audit trail's reason, and the
mark of work a corrected result had started) as English text built from a few sentences:
the cause of a re-plan (``calendar.sync.rematerialize``'s ``cause``: a re-infusion, an
event, a status change, an amendment, an outcome recorded, corrected or undone, a legacy
result moved, an adverse-event case), an amendment's "not owed retroactively", an undo.
Here each sentence is one catalog message whose English is exactly what the services write;
a stored text is read with the pattern made from that message and written again in the
reader's language.

As in ``kit.reasons``, a parse is only accepted if writing it in English gives the stored
text again, byte for byte. What a person typed (a status change's reason, a result) is
quoted as typed; text of any other shape (a nurse's own reason, an older wording) is shown
as stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from surveillance.kit import i18n, reasons
from surveillance.kit.i18n import N_

# The kinds of value a message holds: how each is matched and written.
_SLOTS = {
    "date": r"\d{4}-\d{2}-\d{2}",  # written as the page writes dates
    "n": r"\d+",
    "key": r"[^\s()]+",  # an assessment key: ROM-001:1:cbc:3
    "case": r"[^\s:]+",  # an adverse-event case id: ROM-001-AE01
    "protocol": r"\S+",
    "old": r"\S+",
    "new": r"\S+",
    "outcome": r"completed|missed|not_done|pending|cancelled|not_required",
    "status": r"active|deceased|withdrawn|lost_to_follow_up|transferred|completed",
    "change": r"created|updated|nullified",
    "event": r"[a-z][a-z0-9 ]*?",  # the kind, spaces for underscores: "new malignancy"
    "result": r"'.*'|\".*\"",  # a result as Python quotes it: shown as stored
    "typed": r"'.*'|\".*\"",
    "text": r".+",  # what a person typed: shown as typed
}
# Stored values that are words (the stored value is English; a page shows its label).
_OUTCOMES = {
    "completed": N_("done"),
    "missed": N_("missed"),
    "not_done": N_("not done"),
    "pending": N_("pending"),
    "cancelled": N_("cancelled"),
    "not_required": N_("not required"),
}
# A patient's status as a page shows it (stored values stay English: the API, the exports).
PATIENT_STATUS_LABELS = {
    "active": N_("active"),
    "deceased": N_("deceased"),
    "withdrawn": N_("withdrawn"),
    "lost_to_follow_up": N_("lost to follow-up"),
    "transferred": N_("transferred"),
    "completed": N_("completed"),
}
_CHANGES = {"created": N_("created"), "updated": N_("updated"), "nullified": N_("nullified")}

# The reason a fatal adverse event gives its status change (inside that change's sentence).
FATAL = N_("fatal adverse event %(case)s: %(text)s")
# Every sentence the services write, most specific first (the first one that reads the
# text back exactly wins). The English msgid is the stored text.
MESSAGES = (
    N_("infusion %(n)s on %(date)s"),  # changes.add_infusion
    N_("%(status)s on %(date)s: %(text)s"),  # changes.change_status
    N_("%(event)s on %(date)s"),  # changes.record_event
    N_(  # amendments._not_required_if_past
        "protocol %(protocol)s amended from %(old)s to %(new)s on %(date)s, after its "
        "window had closed: not owed retroactively"
    ),
    N_("protocol %(protocol)s amended from %(old)s to %(new)s"),  # amendments.amend
    N_("%(outcome)s recorded for %(key)s with result %(result)s"),  # outcomes
    N_("%(outcome)s recorded for %(key)s"),
    N_("result corrected on %(date)s: %(key)s is now %(outcome)s with result %(result)s"),
    N_("result corrected on %(date)s: %(key)s is now %(outcome)s"),
    N_("recording undone on %(date)s: %(key)s (%(outcome)s) is pending again"),  # undo
    N_("stored result of %(key)s (%(result)s) moved to its note"),  # legacy_results
    N_("stored result of %(key)s (%(result)s) needs a typed value"),
    N_(  # legacy_results: what migration 0007 did with a stored free-text result
        "stored free text %(result)s read as its declared value %(typed)s (typed results, "
        "migration %(n)s)"
    ),
    N_("stored free text matches no declared value: needs a typed result"),
    N_("this assessment records no result: stored text kept as its note"),
    N_("adverse event %(case)s %(change)s"),  # adverse_events.cases._replan
    N_("started by the result of %(key)s, corrected on %(date)s"),  # the corrected mark
    N_("started by the recording of %(key)s, undone on %(date)s"),
    N_("undone by its author within %(n)s minutes"),  # undo.UNDO_REASON (audit)
    FATAL,
)
_SLOT = re.compile(r"%\((\w+)\)s")


def _pattern(message: str) -> re.Pattern[str]:
    parts = _SLOT.split(message)  # text, name, text, name, ..., text
    written = "".join(
        re.escape(part) if n % 2 == 0 else f"(?P<{part}>{_SLOTS[part]})"
        for n, part in enumerate(parts)
    )
    return re.compile(f"^{written}$", re.DOTALL)


_PATTERNS = tuple((message, _pattern(message)) for message in MESSAGES)


@dataclass(frozen=True)
class StatusReason:
    message: str  # one of MESSAGES
    values: tuple[tuple[str, str], ...]  # each slot's text as stored


@lru_cache(maxsize=8192)
def parse(text: str) -> StatusReason | None:
    """The sentence and its values, or ``None`` if it is not a sentence the services write."""
    for message, pattern in _PATTERNS:
        found = pattern.match(text)
        if found is None:
            continue
        parsed = StatusReason(message, tuple(found.groupdict().items()))
        try:
            if _write(parsed, i18n.DEFAULT_LOCALE) == text:  # loose pattern, exact check
                return parsed
        except ValueError:  # a date that is not one: "2024-02-30"
            return None
    return None


def localized(text: str | None, locale: str | None = None) -> str:
    """``text`` in ``locale`` (default: the current rendering's); as stored if it is not a
    sentence the services write. ``None`` reads as empty."""
    if not text:
        return ""
    return _localized(text, locale or i18n.current_locale())


@lru_cache(maxsize=8192)
def _localized(text: str, locale: str) -> str:
    parsed = parse(text)
    return text if parsed is None else _write(parsed, locale)


def _write(parsed: StatusReason, locale: str) -> str:
    locale = i18n.supported(locale) or i18n.DEFAULT_LOCALE
    catalog = i18n.translations(locale)
    english = locale == i18n.DEFAULT_LOCALE
    values = {}
    for name, value in parsed.values:
        if name == "date":
            on = date.fromisoformat(value)
            values[name] = on.isoformat() if english else _day(on, locale)
        elif english:
            values[name] = value
        elif name == "outcome":
            values[name] = catalog.gettext(_OUTCOMES[value])
        elif name == "status":
            values[name] = catalog.gettext(PATIENT_STATUS_LABELS[value])
        elif name == "change":
            values[name] = catalog.gettext(_CHANGES[value])
        elif name == "event":
            words = reasons.EVENT_WORDS.get(value)
            values[name] = catalog.gettext(words) if words else value
        elif name == "text":  # a person's words, unless it is the fatal case's sentence
            inner = parse(value)
            values[name] = _write(inner, locale) if inner and inner.message == FATAL else value
        else:
            values[name] = value
    return catalog.gettext(parsed.message) % values


def _day(on: date, locale: str) -> str:
    if i18n.current_locale() == locale:  # a page's rendering: already in force
        return i18n.format_day(on)
    with i18n.use_locale(locale):
        return i18n.format_day(on)
