"""The message catalogs: every string the templates and the code mark for translation has
an Italian and a German translation that keeps its placeholders, and the committed .mo
files are the compiled .po files (the application reads the .mo; there is no build step).

A string left outside ``{% trans %}``/``_()`` is not seen here: see
``tests/surveillance/http/web/test_web_untranslated_text.py``.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from surveillance.kit import i18n

ROOT = Path(__file__).parents[3]
TRANSLATED = [locale for locale in i18n.LOCALES if locale != i18n.DEFAULT_LOCALE]
_PLACEHOLDER = re.compile(r"%\([a-z_]+\)s|\{[a-z_]+\}")


def _extracted() -> dict[str, tuple[str, ...]]:
    """msgid -> every form (singular, plural) found by `pybabel extract -F babel.cfg`."""
    with (ROOT / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)
    found: dict[str, tuple[str, ...]] = {}
    for _, _, message, _, _ in extract_from_dir(ROOT, method_map, options_map):
        forms = (message,) if isinstance(message, str) else tuple(message)
        if forms[0]:
            found[forms[0]] = forms
    return found


def _catalog(locale: str) -> Catalog:
    with (i18n.LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as po:
        return read_po(po, locale=locale)


EXTRACTED = _extracted()


def test_the_extraction_finds_the_pages_the_emails_and_the_code() -> None:
    assert "Sign out" in EXTRACTED  # base.html
    assert "An assessment is overdue at %(site)s." in EXTRACTED  # an email template
    assert "Due list · {site}" in EXTRACTED  # render.py
    assert len(EXTRACTED) > 100


@pytest.mark.parametrize("locale", TRANSLATED)
def test_every_marked_string_is_translated(locale: str) -> None:
    catalog = _catalog(locale)
    missing = []
    for msgid, forms in EXTRACTED.items():
        entry = catalog.get(forms if len(forms) > 1 else msgid)
        strings = entry.string if entry is not None else ""
        strings = strings if isinstance(strings, tuple) else (strings,)
        if entry is None or entry.fuzzy or not all(s.strip() for s in strings):
            missing.append(msgid)
    assert missing == [], f"run scripts/catalogs.sh update, then translate in {locale}"


@pytest.mark.parametrize("locale", TRANSLATED)
def test_translations_keep_every_placeholder(locale: str) -> None:
    for entry in _catalog(locale):
        if not entry.id:
            continue
        source = entry.id if isinstance(entry.id, str) else entry.id[-1]
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        for text in strings:
            assert set(_PLACEHOLDER.findall(text)) == set(_PLACEHOLDER.findall(source)), text


@pytest.mark.parametrize("locale", TRANSLATED)
def test_the_committed_mo_is_the_compiled_po(locale: str) -> None:
    compiled = io.BytesIO()
    write_mo(compiled, _catalog(locale))
    committed = (i18n.LOCALE_DIR / locale / "LC_MESSAGES" / "messages.mo").read_bytes()
    assert committed == compiled.getvalue(), "run scripts/catalogs.sh compile"


@pytest.mark.parametrize(
    ("locale", "written"),
    [("en", "3 Dec 2026"), ("it", "3 dic 2026"), ("de", "3. Dez. 2026")],
)
def test_dates_spell_the_month(locale: str, written: str) -> None:
    with i18n.use_locale(locale):
        assert i18n.format_day("2026-12-03") == written
        assert i18n.format_rate(0.5).startswith("50")


@pytest.mark.parametrize(
    ("stored", "header", "chosen"),
    [
        (None, "it-IT,it;q=0.9,en;q=0.8", "it"),
        (None, "fr-FR, de;q=0.7, en;q=0.5", "de"),
        (None, "en;q=0.2, de;q=0.9", "de"),
        (None, "fr, es", "en"),
        (None, None, "en"),
        ("de", "it-IT", "de"),  # the profile setting wins over the browser
        ("xx", "it", "it"),  # a stored value no longer offered is ignored
    ],
)
def test_the_language_of_a_request(stored: str | None, header: str | None, chosen: str) -> None:
    assert i18n.choose_locale(stored, header) == chosen
