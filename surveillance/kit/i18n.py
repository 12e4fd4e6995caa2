"""Languages: the gettext catalogs, the language of the current page or email, and dates and
numbers written the way its reader writes them.

The language is held in a context variable for the length of one rendering (``use_locale``),
so a template, a macro imported without context and a filter all read the same one without
passing it around. English is the source language: its strings are the msgids.
"""

from __future__ import annotations

import gettext as _gettext
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

from babel import negotiate_locale
from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal, format_percent
from babel.support import Translations
from jinja2 import Environment

LOCALES = ("en", "it", "de")  # the languages a user may choose, English first (the default)
DEFAULT_LOCALE = "en"
LANGUAGE_NAMES = {"en": "English", "it": "Italiano", "de": "Deutsch"}  # each in itself
LOCALE_DIR = Path(__file__).parents[1] / "locale"
DOMAIN = "messages"
# Dates spell the month out so that 3/12 can never be read as 12 March: "3 Dec 2026",
# "3 dic 2026", "3. Dez. 2026".
_DATE_PATTERNS = {"en": "d MMM y", "it": "d MMM y", "de": "d. MMM y"}
_MOMENT_PATTERNS = {"en": "d MMM y, HH:mm", "it": "d MMM y, HH:mm", "de": "d. MMM y, HH:mm"}

_current: ContextVar[str] = ContextVar("surveillance_locale", default=DEFAULT_LOCALE)
# Text that comes from data files, not templates (assessment names from the protocols):
# English text -> {locale: text}.
Terms = Mapping[str, Mapping[str, str]]
_terms: ContextVar[Terms] = ContextVar("surveillance_terms", default=MappingProxyType({}))


class Later:
    """Text written when it is shown, so in the language of the rendering (a route may
    build it before the page's language is in force). Jinja shows it through ``str``."""

    def __init__(self, write: Callable[[], str]) -> None:
        self._write = write

    def __str__(self) -> str:
        return self._write()


def N_(message: str) -> str:
    """Marks a constant for the catalogs; it is translated where it is shown (``gettext``)."""
    return message


def supported(value: str | None) -> str | None:
    """``value`` if it is one of ``LOCALES`` (a stored or posted choice), else ``None``."""
    return value if value in LOCALES else None


def from_accept_language(header: str | None) -> str | None:
    """The best of ``LOCALES`` for a browser's Accept-Language header, or ``None``."""
    if not header:
        return None
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        if tag and tag != "*" and quality > 0:
            weighted.append((-quality, index, tag.strip()))
    preferred = [tag for _, _, tag in sorted(weighted)]
    return negotiate_locale(preferred, list(LOCALES), sep="-")


def choose_locale(stored: str | None, accept_language: str | None) -> str:
    """The user's own choice, else the browser's, else English."""
    return supported(stored) or from_accept_language(accept_language) or DEFAULT_LOCALE


@lru_cache(maxsize=len(LOCALES))
def translations(locale: str) -> _gettext.NullTranslations:
    """The compiled catalog of ``locale`` (English, the source language, has none)."""
    if locale == DEFAULT_LOCALE:
        return _gettext.NullTranslations()
    return Translations.load(LOCALE_DIR, [locale], domain=DOMAIN)


@contextmanager
def use_locale(locale: str, terms: Terms | None = None) -> Iterator[str]:
    """Render in ``locale`` until the block ends (an unknown one is English); ``terms``
    translates text from data files (``| term``)."""
    chosen = supported(locale) or DEFAULT_LOCALE
    token = _current.set(chosen)
    terms_token = _terms.set(terms or MappingProxyType({}))
    try:
        yield chosen
    finally:
        _terms.reset(terms_token)
        _current.reset(token)


def current_locale() -> str:
    return _current.get()


def gettext(message: str) -> str:
    if not message:  # "" is the catalog's header in gettext, never a message
        return message
    return translations(_current.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_current.get()).ngettext(singular, plural, n)


def term(text: str) -> str:
    """An assessment name (or other protocol text) in the current language, if the
    protocol gives one; else as written."""
    return _terms.get().get(text, {}).get(_current.get(), text)


def format_day(value: date | str | None) -> str:
    """A date for people to read (``3 dic 2026``); ISO text is accepted (email payloads)."""
    if value is None or value == "":
        return "—"
    day = date.fromisoformat(value) if isinstance(value, str) else value
    return _formatted_day(day, _current.get())


@lru_cache(maxsize=8192)
def _formatted_day(day: date, locale: str) -> str:
    """Babel's formatting, once per day and language: a patient page writes thousands."""
    return format_date(day, _DATE_PATTERNS[locale], locale=locale)


def format_month(day: date) -> str:
    """A month's short name on its own, as an axis labels it (``Jul``, ``lug``, ``Jul``)."""
    return format_date(day, "LLL", locale=_current.get())


def format_moment(value: datetime | str | None) -> str:
    """A moment for people to read, in the time zone it carries (``3 dic 2026, 14:05``);
    ISO text is accepted (email payloads)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    locale = _current.get()
    return format_datetime(value, _MOMENT_PATTERNS[locale], tzinfo=value.tzinfo, locale=locale)


def format_number(value: float | int | None) -> str:
    return "—" if value is None else format_decimal(value, locale=_current.get())


def format_rate(value: float | None) -> str:
    """A share as a whole percentage (``85%``, ``85 %``)."""
    return "—" if value is None else format_percent(value, locale=_current.get())


def install(env: Environment) -> None:
    """Give a Jinja environment ``{% trans %}``, ``_()`` and the per-language filters.

    The callables read the language of the rendering (``use_locale``), not the template
    context, so imported macros are translated too.
    """
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(  # type: ignore[attr-defined]  # added by the extension
        gettext=gettext, ngettext=ngettext, newstyle=True
    )
    env.filters["term"] = term
    env.filters["date"] = format_day
    env.filters["moment"] = format_moment
    env.filters["number"] = format_number
    env.filters["pct"] = format_rate
    env.globals["current_locale"] = current_locale
    env.globals["LANGUAGE_NAMES"] = LANGUAGE_NAMES
