"""Protocol text for tests: what a test protocol declares about its results."""

from __future__ import annotations

import re


def declared_result(conditions: str) -> str:
    """A ``result:`` line for 'visit' that the conditions in ``conditions`` (YAML text) can
    be tested on: ordered conditions get a quantity, named values a coded result with them
    (a number from 1 to 5 alone: an ordinal)."""
    if "below" in conditions or "at_least" in conditions:
        return '    result: {type: quantity, unit: "%", min: 0, max: 1000000, decimals: 2}\n'
    named = re.findall(r"equals: '?\"?([\w]+)", conditions)
    for group in re.findall(r"one_of: \[([^\]]*)\]", conditions):
        named += [v.strip(" '\"") for v in group.split(",")]
    if named and all(v.isdigit() and 1 <= int(v) <= 5 for v in named):
        return "    result: {type: ordinal, min: 1, max: 5}\n"
    codes = list(dict.fromkeys([*named, "negative", "other"]))
    values = ", ".join(f"{code}: {code.capitalize()}" for code in codes)
    return f"    result: {{type: coded, values: {{{values}}}}}\n"
