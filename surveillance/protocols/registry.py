"""The protocols the application knows (the bundled files, or a configured folder), and the
one lookup: an unknown protocol is ``UnknownProtocol`` whoever asks."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import rules
from surveillance.errors import UnknownProtocol


@lru_cache(maxsize=4)
def registry_for(directory: Path) -> rules.ProtocolRegistry:
    return rules.ProtocolRegistry.from_directory(directory)


def get_protocol(
    registry: rules.ProtocolRegistry, protocol_id: str, version: str | None = None
) -> rules.Protocol:
    """The protocol at ``version`` (default: the newest)."""
    try:
        return registry.get(protocol_id, version)
    except rules.UnknownProtocol as exc:
        raise UnknownProtocol(str(exc), protocol_id=protocol_id) from exc


def assessment_name(
    registry: rules.ProtocolRegistry, protocol_id: str, version: str, assessment: str
) -> str:
    """The display name of a rule (names are not copied onto millions of rows)."""
    try:
        return get_protocol(registry, protocol_id, version).rules[assessment].spec.name
    except (UnknownProtocol, KeyError):
        return assessment
