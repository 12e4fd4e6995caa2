"""Every error as RFC 9457 problem details (``application/problem+json``), in one place.

Domain errors carry their status; bad input is 422, never 500. A 500 means a bug. The one
error whose status depends on the request is ``UnknownProtocol`` (see ``_status``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

import rules
from surveillance.errors import InvalidInput, SurveillanceError, TooManyRequests, UnknownProtocol
from surveillance.http.denials import record_denial

log = logging.getLogger("surveillance.api")
PROBLEM_TYPE_BASE = "https://ltfu-surveillance.example/problems/"
_TITLES = {
    400: "Bad request",
    401: "Not signed in",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Precondition failed",
    413: "Request too large",
    422: "Invalid input",
    428: "Precondition required",
    429: "Too many requests",
    500: "Internal error",
}
# The web pages' answer to an error outside them (an unknown URL, a bug) when a browser
# asked for a page; ``None`` where problem details are the answer (the API, scripts).
PageErrors = Callable[[Request, int], Awaitable[Response | None]]


def problem(
    status: int,
    detail: str,
    *,
    kind: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {
        "type": PROBLEM_TYPE_BASE
        + (kind or _TITLES.get(status, "error").lower().replace(" ", "-")),
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        **extra,
    }
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(
        body, status_code=status, media_type="application/problem+json", headers=headers
    )


def _status(request: Request, exc: SurveillanceError) -> tuple[int, str]:
    """The status and problem kind of a domain error on this request."""
    if isinstance(exc, UnknownProtocol):
        # Named by the path (/protocols/{protocol_id}) the protocol is the resource, and it
        # is missing; named in a body or query it is a wrong input.
        if request.path_params.get("protocol_id") == exc.protocol_id:
            return 404, "notfound"
        return 422, "invalidinput"
    return exc.status_code, type(exc).__name__.lower()


def install(app: FastAPI, pages: PageErrors | None = None) -> None:
    @app.exception_handler(SurveillanceError)
    async def _domain(request: Request, exc: SurveillanceError) -> JSONResponse:
        headers = None
        if isinstance(exc, TooManyRequests):
            headers = {"Retry-After": str(exc.retry_after)}
        status, kind = _status(request, exc)
        if status == 403:
            await record_denial(request, exc.message)
        extra = {"field": exc.field} if isinstance(exc, InvalidInput) and exc.field else {}
        return problem(
            status, exc.message, kind=kind, headers=headers, instance=request.url.path, **extra
        )

    @app.exception_handler(rules.RulesError)
    async def _rules(request: Request, exc: rules.RulesError) -> JSONResponse:
        return problem(422, str(exc), kind=type(exc).__name__.lower(), instance=request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": ".".join(str(p) for p in error["loc"] if p != "body"),
                "message": error["msg"],
            }
            for error in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return problem(422, detail, kind="validation", errors=errors, instance=request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        page = await pages(request, exc.status_code) if pages else None
        if page is not None:
            return page
        return problem(exc.status_code, str(exc.detail), instance=request.url.path)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        page = await pages(request, 500) if pages else None
        if page is not None:
            return page
        return problem(
            500, "internal error: the request was not applied", instance=request.url.path
        )
