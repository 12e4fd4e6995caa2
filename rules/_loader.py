"""Reading protocol files and finding them again by id and version."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from difflib import get_close_matches
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ._errors import ProtocolError, UnknownProtocol
from ._protocol import Protocol
from ._schema import ProtocolFile
from ._text import text_problem
from ._validate import compile_protocol

BUNDLED_PROTOCOLS = Path(__file__).parent / "protocols"


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice (plain YAML keeps the last silently).

    It also reads numbers with a fraction as text: ``version: 1.10`` must not become
    ``1.1``; fields that are numbers (``below: 400``, ``at_least: 1.5``) convert the text.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *defaults`: merged keys may be overridden, as YAML intends
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # SafeLoader refuses it below with "found unhashable key"
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key '{key}' is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_UniqueKeyLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:float"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_protocol(path: str | Path) -> Protocol:
    """Load and validate one protocol file; raise ``ProtocolError`` naming what is wrong."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ProtocolError(source, f"cannot read the file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ProtocolError(source, "the file is not UTF-8 text") from exc
    return parse_protocol(text, source)


def parse_protocol(text: str, source: str = "<text>") -> Protocol:
    """Validate protocol YAML given as text (``source`` names it in errors)."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 — a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        raise ProtocolError(source, _yaml_problem(exc)) from exc
    except yaml.YAMLError as exc:
        raise ProtocolError(source, f"not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ProtocolError(source, "a protocol file must be a mapping with 'id', 'version', ...")
    _check_text(data, source)
    try:
        spec = ProtocolFile.model_validate(data)
    except ValidationError as exc:
        raise _explain(exc, data, source) from exc
    return compile_protocol(spec, source)


# Free text that may run over several lines; every other text (ids, names, titles, terms,
# units) is one line: it becomes a label on a page, a subject line, a CSV cell.
_MULTI_LINE_KEYS = frozenset({"description", "note", "narrative"})


def _check_text(data: Any, source: str, path: tuple[str | int, ...] = ()) -> None:
    """Refuse control characters (and lone surrogates) in every key and text of the file."""
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(key, str):
                _refuse(text_problem(key), source, (*path, key))
            _check_text(value, source, (*path, str(key)))
    elif isinstance(data, list):
        for index, item in enumerate(data):
            _check_text(item, source, (*path, index))
    elif isinstance(data, str):
        multi = bool(path) and path[-1] in _MULTI_LINE_KEYS
        _refuse(text_problem(data, multi_line=multi), source, path)


def _refuse(problem: str | None, source: str, path: tuple[str | int, ...]) -> None:
    if problem is not None:
        raise ProtocolError(source, problem, field=_field_path(list(path)) or None)


def _yaml_problem(exc: yaml.MarkedYAMLError) -> str:
    """``not valid YAML at line 30, column 13: expected ',' or ']', but got ':' (while
    parsing a flow sequence at line 29, column 13)``: where it broke and where it began."""
    mark = exc.problem_mark or exc.context_mark
    reason = "not valid YAML"
    if mark is not None:
        reason += f" at line {mark.line + 1}, column {mark.column + 1}"
    reason += f": {exc.problem or exc.context}"
    began = exc.context_mark
    if exc.problem and exc.context and began is not None and began is not mark:
        reason += f" ({exc.context} at line {began.line + 1}, column {began.column + 1})"
    return reason


def _explain(exc: ValidationError, data: dict[str, Any], source: str) -> ProtocolError:
    """Turn pydantic's first error into: file, assessment, field, reason."""
    error = exc.errors()[0]
    loc = [part for part in error["loc"] if not str(part).startswith("function-")]
    assessment: str | None = None
    if len(loc) >= 2 and loc[0] == "assessments" and isinstance(loc[1], int):
        items = data.get("assessments") or []
        item = items[loc[1]] if loc[1] < len(items) else None
        assessment = (
            str(item.get("id")) if isinstance(item, dict) and item.get("id") else f"#{loc[1] + 1}"
        )
        loc = loc[2:]
    field = _field_path(loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        reason = f"unknown key '{key}'{_suggest(key, exc, error)}"
        return ProtocolError(source, reason, assessment=assessment, field=field)
    if kind == "missing":
        reason = "required field is missing" + _MISSING_HINTS.get(field, "")
        return ProtocolError(source, reason, assessment=assessment, field=field)
    reason = str(error["msg"]).removeprefix("Value error, ")
    if "input" in error and kind not in {"model_type", "dict_type"}:
        reason = f"{reason} (got {error['input']!r})"
    return ProtocolError(source, reason, assessment=assessment, field=field or None)


# Fields that older protocol files lack: what to write (the application once assumed it).
_MISSING_HINTS = {
    "reporting_category": (
        ": name the category of the regulatory reporting clocks (e.g. 'reporting_category: "
        "safety-reporting'), or write 'reporting_category: null' if there are none; files "
        "written before this field also need to mark their 'yearly_contact' rules and "
        "the results that open a safety case, 'opens_safety_case' (see the README)"
    ),
}


def _field_path(loc: list[Any]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _suggest(key: str, exc: ValidationError, error: Any) -> str:
    allowed = _allowed_keys(error["loc"][:-1])
    close = get_close_matches(key, allowed, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The field names of the model at ``loc`` inside a protocol file (for suggestions)."""
    model: Any = ProtocolFile
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part) or next(
            (f for f in model.model_fields.values() if f.alias == part), None
        )
        if field is None:
            continue  # a key of a mapping field (e.g. the 'death' of 'events'): same model
        model = _model_of(field.annotation)
    if model is None:
        return []
    return [f.alias or name for name, f in model.model_fields.items()]


def _model_of(annotation: Any) -> Any:
    from pydantic import BaseModel

    candidates = [annotation, *getattr(annotation, "__args__", ())]
    for candidate in candidates:
        for inner in (candidate, *getattr(candidate, "__args__", ())):
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return inner
    return None


class ProtocolRegistry:
    """Every loaded protocol, by id and version; the newest version is the default."""

    def __init__(self, protocols: Iterable[Protocol]) -> None:
        self._by_key: dict[tuple[str, str], Protocol] = {}
        for protocol in protocols:
            key = (protocol.id, protocol.version)
            if key in self._by_key:
                raise ProtocolError(
                    protocol.source,
                    f"protocol {protocol.id} version {protocol.version} is also defined in "
                    f"{self._by_key[key].source}",
                    field="version",
                )
            self._by_key[key] = protocol
        self._reporting = _reporting_categories(self._by_key.values())
        self._names: dict[str, dict[str, str]] | None = None

    @classmethod
    def from_directory(cls, directory: str | Path = BUNDLED_PROTOCOLS) -> ProtocolRegistry:
        return cls(load_protocol(path) for path in sorted(Path(directory).glob("*.yaml")))

    def get(self, protocol_id: str, version: str | None = None) -> Protocol:
        """The protocol at ``version``, or its newest version; raise ``UnknownProtocol``."""
        versions = [p for (pid, _), p in self._by_key.items() if pid == protocol_id]
        if version is not None:
            versions = [p for p in versions if p.version == version]
        if not versions:
            raise UnknownProtocol(protocol_id, version, self.ids())
        return max(versions, key=lambda p: _version_key(p.version))

    def reporting_categories(self) -> frozenset[str]:
        """The categories that are regulatory reporting clocks, in every loaded protocol.

        A category means the same in all of them (checked when the registry is built), so
        a query over many patients can test a row's category without its protocol.
        """
        return self._reporting

    def name_translations(self) -> dict[str, dict[str, str]]:
        """Each assessment name (English, as the pages and payloads carry it) -> its names
        by locale, from ``name_it``/``name_de``, and each category id -> its names from the
        file's ``categories``; a later version's translation wins."""
        if self._names is None:
            names: dict[str, dict[str, str]] = {}
            for protocol in self.all():
                for rule in protocol.rules.values():
                    names.setdefault(rule.spec.name, {}).update(rule.spec.names())
                # Categories by their id (``vector-safety``): no assessment is named so.
                for category, words in protocol.spec.categories.items():
                    names.setdefault(category, {}).update(words.names())
            self._names = names
        return self._names

    def ids(self) -> list[str]:
        return sorted({pid for pid, _ in self._by_key})

    def all(self) -> list[Protocol]:
        return sorted(self._by_key.values(), key=lambda p: (p.id, _version_key(p.version)))


def _reporting_categories(protocols: Iterable[Protocol]) -> frozenset[str]:
    """The declared reporting categories; raise ``ProtocolError`` if a protocol uses one
    as an ordinary category while another declares it a reporting duty."""
    loaded = list(protocols)
    declared = {p.reporting_category: p for p in loaded if p.reporting_category is not None}
    for protocol in loaded:
        used = {rule.spec.category for rule in protocol.rules.values()}
        for category in sorted(used & set(declared)):
            if protocol.reporting_category != category:
                raise ProtocolError(
                    protocol.source,
                    f"category '{category}' is a reporting duty in {declared[category].source}: "
                    f"declare 'reporting_category: {category}' here too, or name it otherwise",
                    field="reporting_category",
                )
    return frozenset(declared)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))
