"""The words a page uses in a language, from the application's own catalogs.

Browser tests find buttons, links and fields by their names in the page's language and
check messages the same way: a string the catalogs translate but the page shows in
English (or not at all) fails the test, in whichever language it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from surveillance.http.web.render import translate
from surveillance.kit import i18n

Say = Callable[..., str]


def wording(browser_locale: str) -> Say:
    """``say("Enrolled {study_id} at {site}.", study_id=..., site=...)`` in the language a
    browser asking for ``browser_locale`` (``it-IT``) gets. Template strings
    (``%(name)s``) are filled too; values named ``*_day``/``*_label`` as the pages do."""
    locale = i18n.from_accept_language(browser_locale) or i18n.DEFAULT_LOCALE

    def say(msgid: str, **values: Any) -> str:
        with i18n.use_locale(locale):
            if "%(" in msgid:
                return i18n.gettext(msgid) % values
            return translate(msgid, values or None)

    return say


def language(browser_locale: str) -> str:
    """``it`` for ``it-IT``: what ``<html lang>`` says."""
    return i18n.from_accept_language(browser_locale) or i18n.DEFAULT_LOCALE
