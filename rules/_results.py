"""Typed results: what a nurse may record for an assessment, read into the one form the
engine branches on. Anything else is refused with the values or units that are allowed.

Units come from pint (SI and the clinical units built from it: mg/dL, g/L, cells/µL,
copies/µg, %), with three counts of our own: ``cell``, ``copy`` and ``ULN`` (times the
upper limit of normal).

>>> spec = QuantityResult(type="quantity", unit="mg/dL", accepts=("mg/dL", "g/L"),
...                       min=0, max=5000)
>>> parse_result(spec, "3.5 g/L")
'350'
"""

from __future__ import annotations

import re
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

import pint

from ._errors import InvalidResult
from ._schema import (
    CodedResult,
    Condition,
    DateResult,
    NoResult,
    OrdinalResult,
    QuantityResult,
    ResultType,
)

UNITS: pint.UnitRegistry[float] = pint.UnitRegistry()
UNITS.define("cell = [cell] = _ = cells")
UNITS.define("copy = [copy] = _ = copies")
UNITS.define("ULN = [upper_limit_of_normal]")  # times the laboratory's upper limit of normal

_NUMBER = re.compile(r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)\s*")
_BARE_NUMBER = re.compile(r"-?\d+(\.\d+)?")  # as ``_rounded`` writes one


def parse_unit(text: str) -> pint.Unit:
    """A unit pint knows, or ``ValueError`` naming it."""
    try:
        return UNITS.Unit(text)
    # pint parses unit text as an expression: typed text can fail in its tokenizer or
    # arithmetic too ("mg/(", "1/0", "mg**"), not only as an undefined unit.
    except Exception as exc:  # any failure to parse it means "unknown unit"
        raise ValueError(f"unknown unit {text!r}") from exc


def accepted_units(spec: QuantityResult) -> tuple[str, ...]:
    """The units a value may be typed in: ``accepts``, or the canonical unit alone."""
    return spec.accepts or (spec.unit,)


def parse_result(spec: ResultType, text: str) -> str:
    """``text`` as the engine reads it (a code, a number in the canonical unit, a level,
    an ISO date), or ``InvalidResult`` saying what would be accepted."""
    if isinstance(spec, CodedResult):
        return _coded(spec, text)
    if isinstance(spec, QuantityResult):
        return _quantity(spec, text)
    if isinstance(spec, OrdinalResult):
        return _ordinal(spec, text)
    if isinstance(spec, DateResult):
        return _date(text)
    assert isinstance(spec, NoResult)
    raise InvalidResult("this assessment records no result; write remarks in the note")


def is_canonical(spec: ResultType, text: str) -> bool:
    """Whether ``text`` is already a value of type ``spec`` as stored (what ``parse_result``
    returns), so that a stored result needs no reading: a code; a bare number in the
    canonical unit, in range, with the declared decimals; a level; an ISO date. A ``none``
    result has no stored value at all.

    >>> coded = CodedResult(type="coded", values={"negative": "Negative", "positive": "Positive"})
    >>> is_canonical(coded, "positive"), is_canonical(coded, "Positive")
    (True, False)
    >>> grams = QuantityResult(type="quantity", unit="mg/dL", accepts=("mg/dL", "g/L"),
    ...                        min=0, max=5000)
    >>> [is_canonical(grams, t) for t in ("350", "350 mg/dL", "350.0", "40000")]
    [True, False, False, False]
    """
    if isinstance(spec, CodedResult):
        return text in spec.values
    if isinstance(spec, QuantityResult):
        if not _BARE_NUMBER.fullmatch(text):
            return False
        value = float(text)
        return spec.min <= value <= spec.max and _rounded(value, spec.decimals) == text
    if isinstance(spec, OrdinalResult):
        digits = text.isascii() and text.isdigit() and str(int(text)) == text
        return digits and spec.min <= int(text) <= spec.max
    if isinstance(spec, DateResult):
        try:
            return date.fromisoformat(text).isoformat() == text
        except ValueError:
            return False
    assert isinstance(spec, NoResult)
    return False


def _key(text: str) -> str:
    return re.sub(r"[\s\-]+", "_", text.strip().lower())


def _coded(spec: CodedResult, text: str) -> str:
    wanted = _key(text)
    for code, label in spec.values.items():
        if wanted in (code, _key(label)):
            return code
    allowed = ", ".join(f"{code} ({label})" for code, label in spec.values.items())
    raise InvalidResult(f"{text.strip()!r} is not one of the coded values: {allowed}")


def _quantity(spec: QuantityResult, text: str) -> str:
    units = accepted_units(spec)
    match = _NUMBER.match(text)
    if match is None:
        raise InvalidResult(f"{text.strip()!r} is not a number with a unit ({', '.join(units)})")
    unit_text = text[match.end() :].strip()
    if not unit_text:
        if len(units) > 1 or units[0] != spec.unit:
            raise InvalidResult(f"{text.strip()!r} needs a unit: one of {', '.join(units)}")
        unit_text = spec.unit
    try:
        unit = parse_unit(unit_text)
    except ValueError:
        unit = None
    chosen = [u for u in units if unit is not None and parse_unit(u) == unit]
    if not chosen:
        raise InvalidResult(f"unit {unit_text!r} is not accepted here: use {', '.join(units)}")
    value = UNITS.Quantity(float(match.group(0)), unit).to(parse_unit(spec.unit)).magnitude
    # Bounds on the value as kept: a conversion's float noise (10000 cells/mm^3 is
    # 10000.000000000002 cells/uL) must not refuse a value typed exactly at a bound.
    kept = _rounded(value, spec.decimals)
    if not spec.min <= float(kept) <= spec.max:
        raise InvalidResult(
            f"{text.strip()} is outside the plausible range {spec.min:g} to {spec.max:g} "
            f"{spec.unit}"
        )
    return kept


def _rounded(value: float, decimals: int) -> str:
    """``value`` kept to ``decimals`` places, as plain text (no exponent, no "-0")."""
    exact = Decimal(repr(value)).quantize(Decimal(1).scaleb(-decimals), ROUND_HALF_EVEN)
    return format(exact + 0, "f")  # + 0 turns -0 into 0


def _ordinal(spec: OrdinalResult, text: str) -> str:
    stripped = text.strip()
    by_label = {_key(label): level for level, label in spec.labels.items()}
    if _key(stripped) in by_label:
        return str(by_label[_key(stripped)])
    if stripped.isascii() and stripped.isdigit() and spec.min <= int(stripped) <= spec.max:
        return str(int(stripped))
    raise InvalidResult(f"{stripped!r} is not a whole number from {spec.min} to {spec.max}")


def _date(text: str) -> str:
    try:
        return date.fromisoformat(text.strip()).isoformat()
    except ValueError as exc:
        raise InvalidResult(f"{text.strip()!r} is not a date; use YYYY-MM-DD") from exc


def condition_problem(spec: ResultType, condition: Condition) -> str | None:
    """Why ``condition`` can never hold for a result of type ``spec``, or None."""
    named = [condition.equals] if condition.equals is not None else list(condition.one_of or ())
    numeric = condition.is_numeric()
    if isinstance(spec, CodedResult):
        if numeric:
            return "a coded result has no order: use 'equals' or 'one_of'"
        unknown = [value for value in named if value not in spec.values]
        if unknown:
            return f"{unknown[0]!r} is not one of its coded values ({', '.join(spec.values)})"
        return None
    if isinstance(spec, QuantityResult):
        return (
            None
            if numeric
            else "a quantity is compared with 'below', 'at_least', 'at_most' or 'above'"
        )
    if isinstance(spec, OrdinalResult):
        outside = [v for v in named if not (v.isdigit() and spec.min <= int(v) <= spec.max)]
        if outside:
            return f"{outside[0]!r} is not a level from {spec.min} to {spec.max}"
        return None
    return f"a {spec.type} result cannot be branched on"
