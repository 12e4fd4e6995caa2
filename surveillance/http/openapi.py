"""The OpenAPI document as the server really answers: problem details and security.

FastAPI documents every operation with its own ``422 HTTPValidationError`` and nothing
else, but every error this server sends is ``application/problem+json`` (see
``problems``). This hook, run once when the document is first built, declares for each
API operation the errors it can send, with the ``Problem`` schema, and how it is
authenticated (a bearer token, or the read-only feed token in the query of a calendar).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI

PROBLEM_JSON = "application/problem+json"
PROBLEM_REF = "#/components/schemas/Problem"
BEARER = "bearerAuth"
FEED_TOKEN = "feedToken"  # noqa: S105 — the name of a security scheme, not a token
FEED_TOKEN_PARAMETER = "token"  # noqa: S105 — the name of a query parameter

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An error, as RFC 9457 problem details.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "A URI naming the kind of problem."},
        "title": {"type": "string", "description": "A short summary of the kind."},
        "status": {"type": "integer", "description": "The HTTP status code."},
        "detail": {"type": "string", "description": "What went wrong, for a person."},
        "instance": {"type": "string", "description": "The path of the request."},
        "field": {"type": "string", "description": "The input that is wrong, when known."},
        "errors": {
            "type": "array",
            "description": "Each invalid input (422 on a malformed request).",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}

ERRORS = {
    401: "Not signed in: no valid token.",
    403: "The caller's role or sites do not allow this.",
    404: "No such resource (or not visible to the caller).",
    409: "The change clashes with what is stored.",
    412: "If-Match is not the current ETag: someone changed the record first.",
    422: "Invalid input.",
    428: "If-Match is missing: send the ETag you read.",
    429: "Too many requests; see Retry-After.",
}
_WRITES = {"post", "put", "patch", "delete"}


def install(app: FastAPI) -> None:
    """Build the document with FastAPI, then amend it once (see the module's note)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            amend(generate())
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def amend(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    components["securitySchemes"] = {
        BEARER: {
            "type": "http",
            "scheme": "bearer",
            "description": "A token from `surveillance tokens create` (or the web page).",
        },
        FEED_TOKEN: {
            "type": "apiKey",
            "in": "query",
            "name": FEED_TOKEN_PARAMETER,
            "description": "A read-only feed token for one site "
            "(`surveillance tokens create --feed-site S`): calendar apps cannot send headers.",
        },
    }
    for path in schema["paths"].values():
        for method, operation in path.items():
            _amend_operation(operation, method)
    _drop_unused(components["schemas"], schema)


def _amend_operation(operation: dict[str, Any], method: str) -> None:
    """Read from the operation's parameters: who may call it, and what it can refuse."""
    parameters = operation.get("parameters", [])
    headers = {p["name"].lower() for p in parameters if p["in"] == "header"}
    queries = {p["name"] for p in parameters if p["in"] == "query"}
    bearer = "authorization" in headers  # the header of ``deps.get_principal``
    feed = FEED_TOKEN_PARAMETER in queries and not bearer
    has_input = bool(
        operation.get("requestBody") or {p["name"].lower() for p in parameters} - {"authorization"}
    )
    statuses: set[int] = set()
    if has_input:
        statuses.add(422)
    if bearer or feed:
        statuses.add(401)
    if bearer:
        statuses.add(403)
    if (has_input and (bearer or feed)) or any(p["in"] == "path" for p in parameters):
        statuses.add(404)  # a path names a resource, which may not exist
    if method in _WRITES and bearer:
        statuses.add(409)
    if "if-match" in headers:
        statuses |= {412, 428}
        for parameter in parameters:
            if parameter["name"] == "If-Match" and parameter.get("description", "").startswith(
                "Required"
            ):
                parameter["required"] = True
    responses = operation.setdefault("responses", {})
    statuses |= {int(code) for code in responses if code in {str(s) for s in ERRORS}}
    for status in sorted(statuses):
        declared = responses.setdefault(str(status), {})
        declared.setdefault("description", ERRORS[status])
        declared["content"] = {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}
    operation["responses"] = dict(sorted(responses.items()))
    if bearer:
        operation["security"] = [{BEARER: []}]
        # The credentials are the security scheme's, not a parameter of their own.
        operation["parameters"] = [
            p
            for p in operation.get("parameters", [])
            if not (p["in"] == "header" and p["name"].lower() == "authorization")
        ]
        if not operation["parameters"]:
            del operation["parameters"]
    elif feed:
        operation["security"] = [{FEED_TOKEN: []}]


def _drop_unused(schemas: dict[str, Any], schema: dict[str, Any]) -> None:
    """FastAPI's validation error schemas, once no operation refers to them."""
    for name in ("HTTPValidationError", "ValidationError"):
        if name in schemas:
            rest = {k: v for k, v in schemas.items() if k != name}
            text = json.dumps({**schema, "components": {"schemas": rest}})
            if f'"#/components/schemas/{name}"' not in text:
                del schemas[name]
