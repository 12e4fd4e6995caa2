"""Text from outside as the services take it: ``rules.text_problem`` (the one definition,
shared with the protocol loader) raised as InvalidInput naming the field.

A single-line field (a term, a name, a reason, a study or site id, an email) holds no
control character at all, no line or paragraph separator and no bidirectional control
(a right-to-left override makes ``exe.txt`` of ``txt.exe``). A multi-line field (a
narrative, a note) may hold line breaks and tabs, nothing else of that kind. Neither may
hold a lone surrogate: it is not a character, cannot be stored or encoded, and was a 500.
"""

from __future__ import annotations

from rules import text_problem
from surveillance.errors import InvalidInput


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


__all__ = [
    "multi_line",
    "optional_multi_line",
    "optional_single_line",
    "single_line",
    "text_problem",
]
