"""What the HTTP edge accepts, built on the one definition in ``kit.text`` and
``kit.bounds``: pydantic types for the API's bodies and query parameters, and a check of
every path and query parameter of every route (API and pages) before it reaches a service.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import Request
from pydantic import AfterValidator, Field

from surveillance.kit.bounds import EARLIEST_DAY, LATEST_DAY
from surveillance.kit.sqltypes import MAX_INTEGER
from surveillance.kit.text import single_line, text_problem


def _single_line(value: str) -> str:
    problem = text_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _multi_line(value: str) -> str:
    problem = text_problem(value, multi_line=True)
    if problem is not None:
        raise ValueError(problem)
    return value


# A term, a name, a reason, an id: one line, no control or bidirectional character.
SingleLine = Annotated[str, AfterValidator(_single_line)]
# A narrative, a note: line breaks and tabs allowed, no other control character.
MultiLine = Annotated[str, AfterValidator(_multi_line)]
# Any date from outside; the services check what it means (born after 1900, infused
# after 1990 and not in the future, an "as of" date within the calendar's range).
Day = Annotated[date, Field(ge=EARLIEST_DAY, le=LATEST_DAY)]
# An id, a version, a sequence: within the range of the column it is looked up in.
ColumnInt = Annotated[int, Field(ge=0, le=MAX_INTEGER)]


async def plain_parameters(request: Request) -> None:
    """Every path and query parameter is a single line of text (an app dependency, so a
    NUL or a lone surrogate in a URL is a 422 naming it, never a database error)."""
    for name, value in request.path_params.items():
        if isinstance(value, str):
            single_line(value, name)
    for name, value in request.query_params.multi_items():
        single_line(value, name)
