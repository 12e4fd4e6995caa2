"""What text from outside may contain: one definition for the API, the pages, the command
line and the protocol files.

A single-line field (a term, a name, a reason, a study or site id, an email) holds no
control character at all, no line or paragraph separator and no bidirectional control
(a right-to-left override makes ``exe.txt`` of ``txt.exe``). A multi-line field (a
narrative, a note) may hold line breaks and tabs, nothing else of that kind. Neither may
hold a lone surrogate: it is not a character, cannot be stored or encoded, and was a 500.
"""

from __future__ import annotations

import unicodedata

from surveillance.errors import InvalidInput

# Explicit directional formatting (Unicode TR9 2.1-2.5) and the implicit marks.
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
LINE_SEPARATORS = frozenset("\u2028\u2029")
MULTI_LINE_ALLOWED = frozenset("\n\r\t")


def text_problem(value: str, *, multi_line: bool = False) -> str | None:
    """Why ``value`` may not be stored, or ``None``: the first offending character."""
    for position, char in enumerate(value):
        category = unicodedata.category(char)
        if category == "Cs":
            return f"a lone surrogate (U+{ord(char):04X}) at position {position + 1} is not text"
        if multi_line and char in MULTI_LINE_ALLOWED:
            continue
        if category == "Cc" or (not multi_line and char in LINE_SEPARATORS):
            kind = "line breaks and tabs only" if multi_line else "a single line"
            return (
                f"control character U+{ord(char):04X} at position {position + 1} "
                f"is not allowed ({kind})"
            )
        if not multi_line and char in BIDI_CONTROLS:
            return (
                f"bidirectional control U+{ord(char):04X} at position {position + 1} "
                "is not allowed in a single-line field"
            )
    return None


def single_line(value: str, field: str) -> str:
    """``value`` if it is one line of plain text; else InvalidInput naming ``field``."""
    problem = text_problem(value)
    if problem is not None:
        raise InvalidInput(f"{field}: {problem}", field=field)
    return value


def multi_line(value: str, field: str) -> str:
    """``value`` if it is text that may hold line breaks and tabs; else InvalidInput."""
    problem = text_problem(value, multi_line=True)
    if problem is not None:
        raise InvalidInput(f"{field}: {problem}", field=field)
    return value


def optional_single_line(value: str | None, field: str) -> str | None:
    return None if value is None else single_line(value, field)


def optional_multi_line(value: str | None, field: str) -> str | None:
    return None if value is None else multi_line(value, field)
