"""Errors of the application layer, turned into CLI messages (and HTTP errors) at the edge.

Hierarchy::

    SurveillanceError
     ├── NotFound        no such site, patient or assessment (404)
     ├── Conflict        the change clashes with what is stored (409): enrolled twice,
     │                   recorded twice
     ├── InvalidInput    impossible facts (422): infusion before birth or in the future,
     │    │              unknown diagnosis, outcome before the infusion
     │    └── UnknownProtocol  no protocol with that id (and version): 422 as an input,
     │                         404 where the URL names it (see ``http.problems``)
     ├── Unauthorized    no valid token or session (401)
     ├── Forbidden       the role may not do this (403)
     ├── PreconditionFailed    stale If-Match version (412)
     ├── PreconditionRequired  update without If-Match (428)
     └── TooManyRequests      a feed consumer polls faster than agreed (429, Retry-After)
"""

from __future__ import annotations


class SurveillanceError(Exception):
    status_code = 500

    def __init__(
        self, message: str, *, template: str | None = None, values: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        # The message before its values were put in ("no patient {study_id!r}"), when a page
        # may show it in its reader's language (a catalog msgid).
        self.template = template
        self.values = values or {}


class NotFound(SurveillanceError):
    status_code = 404


class Conflict(SurveillanceError):
    status_code = 409


class InvalidInput(SurveillanceError):
    """``field``, when known, names the input that is wrong (a form shows the message
    beside it; the API's problem body carries it)."""

    status_code = 422

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        template: str | None = None,
        values: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, template=template, values=values)
        self.field = field


class UnknownProtocol(InvalidInput):
    """No protocol with that id (or not at that version) is installed.

    One error wherever a protocol is looked up; what it means depends on who named the
    protocol, which only the edge knows: a wrong input (422) or a missing resource (404).
    """

    def __init__(self, message: str, *, protocol_id: str) -> None:
        super().__init__(message)
        self.protocol_id = protocol_id


class Unauthorized(SurveillanceError):
    """No valid credentials (401)."""

    status_code = 401


class Forbidden(SurveillanceError):
    """Signed in, but the role may not do this (403)."""

    status_code = 403


class PreconditionFailed(SurveillanceError):
    """The If-Match version is stale: someone changed the record first (412)."""

    status_code = 412


class PreconditionRequired(SurveillanceError):
    """An update came without If-Match (428)."""

    status_code = 428


class TooManyRequests(SurveillanceError):
    """Asked again too soon (429); ``retry_after`` seconds is when to come back."""

    status_code = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
