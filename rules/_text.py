"""What text in a protocol file (and, through ``surveillance.kit.text``, every text from
outside the system) may contain: the one definition of a single-line and a multi-line text.

A single-line text holds no control character, no line or paragraph separator and no
bidirectional control (a right-to-left override makes ``exe.txt`` of ``txt.exe``); a
multi-line text may hold line breaks and tabs, nothing else of that kind. Neither may hold a
lone surrogate: it is not a character, and cannot be stored or encoded.
"""

from __future__ import annotations

import unicodedata

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
