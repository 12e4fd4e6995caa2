"""Small SQL pieces that differ between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import Boolean, Integer
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ColumnElement, Select
from sqlalchemy.sql.expression import FunctionElement

# Values in one ``IN (...)`` list: well below SQLite's bound-parameter limit, and short
# enough for the planner to probe an index per value.
IN_LIST_SIZE = 500
_T = TypeVar("_T")


def chunked(items: Sequence[_T], size: int = IN_LIST_SIZE) -> Iterator[Sequence[_T]]:
    """``items`` in consecutive slices of at most ``size`` (an IN list, a transaction)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


class days_between(FunctionElement[int]):
    """Whole days from ``earlier`` to ``later`` (both dates)."""

    type = Integer()
    inherit_cache = True
    name = "days_between"

    def __init__(self, later: Any, earlier: Any) -> None:
        super().__init__(later, earlier)


@compiles(days_between, "sqlite")
def _sqlite_days(element: days_between, compiler: Any, **kw: Any) -> str:
    later, earlier = list(element.clauses)
    later_sql, earlier_sql = compiler.process(later, **kw), compiler.process(earlier, **kw)
    return f"CAST(julianday({later_sql}) - julianday({earlier_sql}) AS INTEGER)"


@compiles(days_between, "postgresql")
def _postgres_days(element: days_between, compiler: Any, **kw: Any) -> str:
    later, earlier = list(element.clauses)
    later_sql, earlier_sql = compiler.process(later, **kw), compiler.process(earlier, **kw)
    return f"(CAST({later_sql} AS DATE) - CAST({earlier_sql} AS DATE))"


class among(ColumnElement[bool]):
    """``column IN (rows)``, ``rows`` a one-column SELECT of a few values, run once first.

    On PostgreSQL ``column = ANY(ARRAY(rows))``: an InitPlan, whose values the planner
    takes for few (an index scan for them). For ``IN (rows)`` it estimates the rows from
    statistics (a ``GROUP BY ... HAVING``: thousands for a hundred) and may rather read a
    whole range and hash-join. SQLite reads an ``IN`` list first already."""

    type = Boolean()
    inherit_cache = False  # holds a SELECT: compiled each time
    _is_implicitly_boolean = True  # a comparison: SQLite gets no `= 1` after it

    def __init__(self, column: Any, rows: Select[Any]) -> None:
        self.column, self.rows = column, rows

    def get_children(self, **kw: Any) -> tuple[Any, ...]:
        return (self.column, self.rows)


@compiles(among)
def _among(element: among, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    return f"{column} IN ({compiler.process(element.rows, asfrom=False, **kw)})"


@compiles(among, "postgresql")
def _postgres_among(element: among, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    return f"{column} = ANY(ARRAY({compiler.process(element.rows, asfrom=False, **kw)}))"
