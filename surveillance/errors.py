"""Errors of the application layer, turned into CLI messages (and HTTP errors) at the edge.

Hierarchy::

    SurveillanceError
     ├── NotFound        no such site, patient or assessment (404)
     ├── Conflict        the change clashes with what is stored (409): enrolled twice,
     │                   recorded twice
     └── InvalidInput    impossible facts (422): infusion before birth or in the future,
                         unknown protocol or diagnosis, outcome before the infusion
"""

from __future__ import annotations


class SurveillanceError(Exception):
    status_code = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(SurveillanceError):
    status_code = 404


class Conflict(SurveillanceError):
    status_code = 409


class InvalidInput(SurveillanceError):
    status_code = 422
