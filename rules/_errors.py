"""Errors raised by the rules engine.

Hierarchy::

    RulesError
     ├── ProtocolError        a protocol file is malformed (names file, assessment, field)
     ├── UnknownProtocol      no protocol with that id (and version) is loaded
     ├── InvalidFacts         facts the engine cannot plan from (infusion before birth,
     │                        unknown diagnosis, result for an unknown assessment, ...)
     └── InvalidResult        a recorded result its assessment's declared type refuses
"""

from __future__ import annotations


class RulesError(Exception):
    """Base class of every error the rules engine raises."""


class ProtocolError(RulesError, ValueError):
    """A protocol file cannot be used; the message says where and why."""

    def __init__(
        self,
        source: str,
        reason: str,
        *,
        assessment: str | None = None,
        field: str | None = None,
    ) -> None:
        self.source = source
        self.reason = reason
        self.assessment = assessment
        self.field = field
        where = [source]
        if assessment is not None:
            where.append(f"assessment '{assessment}'")
        if field is not None:
            where.append(f"field '{field}'")
        super().__init__(f"{', '.join(where)}: {reason}")


class UnknownProtocol(RulesError, LookupError):
    """The protocol id (or the id at that version) is not among the loaded files."""

    def __init__(self, protocol_id: str, version: str | None, known: list[str]) -> None:
        self.protocol_id = protocol_id
        self.version = version
        wanted = protocol_id if version is None else f"{protocol_id} version {version}"
        super().__init__(f"unknown protocol {wanted!r}; known: {', '.join(known) or 'none'}")


class InvalidFacts(RulesError, ValueError):
    """The patient facts given to the engine are impossible or do not fit the protocol."""


class InvalidResult(RulesError, ValueError):
    """A result that is not one its assessment can produce (unknown code, unit, range)."""
