"""Reading ``sla.yaml``: YAML safe_load, pydantic validation, errors that point at file:line:col."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from runner.errors import SpecError
from runner.slafile.model import SCHEMA_VERSION, NodeError, Scenario, Settings, Suite
from runner.units import clip, did_you_mean

Path_ = tuple[str | int, ...]
Position = tuple[int, int]  # 1-based line and column

_TAG = "tag:yaml.org,2002:"
# Bounds that keep loading any file under a second and a few MiB (docs in tests/slafile). The
# pure-Python YAML parser costs up to ~30 us and ~1 KiB per value, so the node count is what
# bounds time and memory; the byte cap refuses a wrong file (a log, a dump) before parsing it.
# A real SLA file is a few KB with a few hundred values.
MAX_FILE_BYTES = 256 * 1024
# Values as composed, and again once aliases are expanded ("billion laughs").
MAX_NODES = 5_000
MAX_DEPTH = 32  # nesting; the schema needs 6
MAX_NUMBER_TEXT = 64  # characters of a number: a longer one is a mistake, and costly to read
MAX_MESSAGE = 400  # characters of an error message


@dataclass(frozen=True)
class _Node:
    value: Position
    key: Position | None  # where the key naming this node is, if it is a mapping value
    container: bool
    text: str | None  # the source text of a scalar


class _Positions:
    """Where each node of the YAML document is, by its path of keys and indexes."""

    def __init__(self) -> None:
        self.nodes: dict[Path_, _Node] = {}

    def locate(self, loc: Path_, *, key: bool = False) -> Position | None:
        """The node's position, or its nearest ancestor's. A mapping, a list or an empty value
        is shown by its key: a block value starts on the line of its first item, an empty one
        at the end of the key's line."""
        path = tuple(loc)
        while path not in self.nodes:
            if not path:
                return None
            path = path[:-1]
        node = self.nodes[path]
        if (key or node.container or node.text == "") and node.key is not None:
            return node.key
        return node.value

    def text(self, loc: Path_) -> str | None:
        node = self.nodes.get(tuple(loc))
        return node.text if node else None


def _mark(node: yaml.Node | yaml.Event) -> Position:
    mark = node.start_mark
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


def _error(message: str, file: str, position: Position | None) -> SpecError:
    line, column = position or (1, 1)
    return SpecError(_clipped(message), file=file, line=line, column=column)


def _clipped(message: str) -> str:
    if len(message) <= MAX_MESSAGE:
        return message
    half = MAX_MESSAGE // 2
    return f"{message[:half]} ... {message[-half:]}"


def _position_of(text: str, index: int) -> Position:
    """The 1-based line and column of ``text[index]``."""
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - line_start + 1


def _too_large(file: str, position: Position) -> SpecError:
    return _error(f"the file is larger than {MAX_FILE_BYTES // 1024} KiB; an SLA file is a few "
                  "KB (is this the right file?)", file, position)


class _Walker:
    """Records positions and rejects what YAML allows but an SLA file must not contain."""

    def __init__(self, file: str, aliases: dict[tuple[int, int], Position]) -> None:
        self.file = file
        self.positions = _Positions()
        self.count = 0
        self.active: set[int] = set()  # ids of the nodes being walked, to catch alias cycles
        self.aliases = aliases  # where each alias is written, by (parent id, index or key id)

    def walk(self, node: yaml.Node, path: Path_, key: Position | None,
             written: Position | None = None, via: Position | None = None) -> None:
        """``written``: where this node is written, if by an alias (the node is the anchor's);
        ``via``: where the outermost alias above it is written, the one the walk went through
        from the document into an anchor's copy."""
        via = via or written
        self.count += 1
        if self.count > MAX_NODES:
            raise _error(f"the document has more than {MAX_NODES} values once YAML aliases "
                         "are expanded", self.file, via or _mark(node))
        if id(node) in self.active:
            raise _error("a YAML alias refers to a node that contains it", self.file,
                         written or key or _mark(node))
        text = node.value if isinstance(node, yaml.ScalarNode) else None
        if text is not None and "\0" in text:
            # every string here ends up a path, an argument, an env value or a report
            raise _error("a NUL character (\\0) is not allowed in an SLA file", self.file,
                         written or _mark(node))
        container = isinstance(node, yaml.MappingNode | yaml.SequenceNode)
        self.positions.nodes[path] = _Node(_mark(node), key, container, text)
        self.active.add(id(node))
        if isinstance(node, yaml.MappingNode):
            self._mapping(node, path, via)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self.walk(item, (*path, index), None, self.aliases.get((id(node), index)), via)
        self.active.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: Path_, via: Position | None) -> None:
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            where = _mark(key_node)
            if key_node.tag == _TAG + "merge":
                raise _error("YAML merge keys (<<) are not supported in an SLA file", self.file,
                             where)
            if not isinstance(key_node, yaml.ScalarNode):
                raise _error("a key must be a plain name, not a list or a mapping", self.file,
                             where)
            key = key_node.value
            if "\0" in key:
                raise _error("a NUL character (\\0) is not allowed in an SLA file", self.file,
                             where)
            if key_node.tag != _TAG + "str":
                kind = {"int": "a number", "float": "a number", "bool": "true/false",
                        "null": "null", "timestamp": "a date"}.get(
                    key_node.tag.removeprefix(_TAG), key_node.tag)
                raise _error(f"the key {key!r} is read by YAML as {kind}; quote it ('{key}') "
                             "if it is a name", self.file, where)
            if key in seen:
                raise _error(f"duplicate key {key!r} (first on line {seen[key]})", self.file,
                             where)
            seen[key] = where[0]
            self.walk(value_node, (*path, key), where,
                      self.aliases.get((id(node), id(key_node))), via)


class _Loader(yaml.SafeLoader):
    """SafeLoader that bounds the document (values, nesting), remembers where each alias is
    written, and whose value errors (a 5000-digit int, 2024-13-45, !!bool 30s) carry a
    position."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.composed = 0
        self.depth = 0
        self.alias_marks: dict[tuple[int, int], Position] = {}

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        self.composed += 1
        if self.composed > MAX_NODES:
            raise yaml.composer.ComposerError(None, None, f"the document has more than "
                                              f"{MAX_NODES} values", event.start_mark)
        if self.depth >= MAX_DEPTH:
            raise yaml.composer.ComposerError(None, None, f"nested too deeply (more than "
                                              f"{MAX_DEPTH} levels)", event.start_mark)
        self.depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self.depth -= 1
        if isinstance(event, yaml.AliasEvent) and parent is not None:
            # a sequence item by its index, a mapping value by its key node
            where = index if isinstance(index, int) else id(index)
            self.alias_marks[(id(parent), where)] = _mark(event)
        return node

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        if (node.tag in (_TAG + "int", _TAG + "float") and isinstance(node.value, str)
                and len(node.value) > MAX_NUMBER_TEXT):
            raise yaml.constructor.ConstructorError(
                None, None, f"this number is too large (longer than {MAX_NUMBER_TEXT} characters)",
                node.start_mark)
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError, KeyError, AttributeError, IndexError,
                TypeError) as exc:
            # PyYAML's own constructors fail this way on tagged values: !!bool 30s (KeyError),
            # !!timestamp nope (AttributeError), !!int _ (IndexError)
            kind = node.tag.removeprefix(_TAG)
            shown = clip(node.value) if isinstance(node.value, str) else "this value"
            problem = ("this number is too large" if kind == "int" and isinstance(
                           exc, ValueError) and "limit" in str(exc)
                       else f"cannot read {shown} as {kind}" + (
                           f": {exc}" if isinstance(exc, ValueError) else ""))
            raise yaml.constructor.ConstructorError(None, None, problem,
                                                    node.start_mark) from None


def load_suite(path: str | Path) -> Suite:
    """Load and validate an SLA file, or raise one SpecError naming file:line:column."""
    file = str(path)
    try:
        with Path(path).open("rb") as stream:
            raw = stream.read(MAX_FILE_BYTES + 1)  # not all of a 10 GB file by mistake
    except FileNotFoundError:
        raise SpecError("no such file", file=file) from None
    except OSError as exc:
        raise SpecError(f"cannot read: {exc.strerror or exc}", file=file) from None
    if len(raw) > MAX_FILE_BYTES:
        prefix = raw[:MAX_FILE_BYTES].decode("utf-8", errors="replace")
        raise _too_large(file, _position_of(prefix, len(prefix)))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        raise SpecError(f"not UTF-8 text: cannot decode byte 0x{raw[exc.start]:02x}", file=file,
                        line=raw.count(b"\n", 0, exc.start) + 1,
                        column=exc.start - line_start + 1) from None
    return parse_suite(text, file=file)


def parse_suite(text: str, *, file: str = "sla.yaml") -> Suite:
    """Validate the text of an SLA file; ``file`` only names it in errors and rule sources."""
    text = text.removeprefix("\ufeff")
    if len(text) > MAX_FILE_BYTES:
        raise _too_large(file, _position_of(text, MAX_FILE_BYTES))
    root, positions, data = _read_yaml(text, file)
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else repr(data)
        raise _error(f"the top level must be a mapping with 'version' and 'scenarios', not "
                     f"{kind}", file, _mark(root))
    _check_keys(data, Suite, (), positions, file, nested=False)
    _check_version(data, root, positions, file)
    _check_keys(data, Suite, (), positions, file, nested=True)
    try:
        suite = Suite.model_validate(data)
    except ValidationError as exc:
        raise _spec_error(exc, data, positions, file) from None
    return _with_rule_sources(suite, positions, file)


def _read_yaml(text: str, file: str) -> tuple[yaml.Node, _Positions, Any]:
    """The document's root node, its positions and its data."""
    loader: _Loader | None = None
    try:
        loader = _Loader(text)
        root = loader.get_single_node()
        if root is None:
            raise SpecError("the file is empty; it needs 'version: 1' and 'scenarios'",
                            file=file, line=1, column=1)
        # before constructing: the constructor flattens merge keys away in place
        walker = _Walker(file, loader.alias_marks)
        walker.walk(root, (), None)
        return root, walker.positions, loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(exc, file) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        char = chr(exc.character) if isinstance(exc.character, int) else str(exc.character)
        raise _error(f"invalid YAML: character {char!r} (U+{ord(char[:1] or ' '):04X}) is not "
                     "allowed", file, (line, column)) from None
    except (yaml.YAMLError, RecursionError) as exc:
        problem = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        mark = loader.get_mark() if loader else None
        raise _error(f"invalid YAML: {problem}", file,
                     (mark.line + 1, mark.column + 1) if mark else None) from None
    finally:
        if loader is not None:
            loader.dispose()


def _yaml_error(exc: yaml.MarkedYAMLError, file: str) -> SpecError:
    problem, context = exc.problem or "", exc.context or ""
    problem_mark, context_mark = exc.problem_mark, exc.context_mark
    # An unclosed bracket, quote or key is reported where YAML gave up, often at the end of the
    # file; where it was opened is the line to fix.
    opened = context.startswith(("while scanning", "while parsing a flow"))
    mark: yaml.Mark | None
    if (opened and context_mark is not None and problem_mark is not None
            and context_mark.line != problem_mark.line):
        mark = context_mark
        message = f"{problem} (on line {problem_mark.line + 1}) {context} that starts here"
    else:
        mark = problem_mark or context_mark
        message = " ".join(part for part in (context, problem) if part)
    if "'\\t'" in problem:  # PyYAML writes the tab escaped
        message += "; indent with spaces, not tabs"
    elif "<block" in problem:
        message += "; check the indentation"
    return _error(f"invalid YAML: {message}", file,
                  (mark.line + 1, mark.column + 1) if mark else None)


def _check_version(data: dict[str, Any], root: yaml.Node, positions: _Positions,
                   file: str) -> None:
    if "version" not in data:
        raise _error(f"missing 'version: {SCHEMA_VERSION}' at the top level", file, _mark(root))
    version = data["version"]
    if type(version) is int and version != SCHEMA_VERSION:
        message = f"this memsla reads schema version {SCHEMA_VERSION}, not version {version}"
    elif type(version) is not int:
        shown = _shown(version, positions.text(("version",)))
        message = f"version must be the number {SCHEMA_VERSION}, not {shown}"
    else:
        return
    raise _error(message, file, positions.locate(("version",)))


# Keys a user may put in the wrong mapping, and where they belong.
_TOP_LEVEL_HINTS = {
    **{key: "shared settings go under 'defaults'" for key in Settings.model_fields},
    **{key: "scenario keys go under 'scenarios: NAME:'"
       for key in Scenario.model_fields if key not in Settings.model_fields and key != "slas"},
}


def _check_keys(mapping: dict[str, Any], model: type[BaseModel], path: Path_,
                positions: _Positions, file: str, *, nested: bool) -> None:
    """Unknown keys get a 'did you mean' before pydantic's generic message."""
    allowed = tuple(model.model_fields)
    for key in mapping:
        if key in allowed:
            continue
        hint = did_you_mean(str(key), allowed)
        if not hint and not path and key in _TOP_LEVEL_HINTS:
            hint = f" ({_TOP_LEVEL_HINTS[key]})"
        elif not hint and path == ("defaults",) and key in Scenario.model_fields:
            hint = f" ({key!r} belongs in a scenario; defaults takes {', '.join(allowed)})"
        elif not hint:
            hint = f"; known keys: {', '.join(allowed)}"
        where = ".".join(map(str, path)) or "the top level"
        raise _error(f"unknown key {key!r} in {where}{hint}", file,
                     positions.locate((*path, key), key=True))
    if not nested:
        return
    for name, field in model.model_fields.items():
        value = mapping.get(name)
        sub = _submodel(field.annotation)
        if sub is None or not isinstance(value, dict):
            continue
        submodel, keyed = sub
        if not keyed:
            _check_keys(value, submodel, (*path, name), positions, file, nested=True)
            continue
        for item_key, item in value.items():
            if isinstance(item, dict):
                _check_keys(item, submodel, (*path, name, item_key), positions, file,
                            nested=True)


def _submodel(annotation: Any) -> tuple[type[BaseModel], bool] | None:
    """The model a field holds directly (``X | None``) or by name (``dict[str, X]``)."""
    for arg in (annotation, *get_args(annotation)):
        if get_origin(arg) is dict:
            value_type = get_args(arg)[1]
            if isinstance(value_type, type) and issubclass(value_type, BaseModel):
                return value_type, True
        elif get_origin(arg) is None and isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg, False
    return None


@dataclass(frozen=True)
class _Problem:
    path: Path_  # in the data, without pydantic's union-member tags
    key: bool  # point at the key rather than the value
    message: str
    branch: str | None  # the union member the error is about, e.g. "list[str]"
    fits: bool  # whether the value is of that member's type at all


_FRIENDLY = {
    "dict_type": "should be a mapping",
    "model_type": "should be a mapping",
    "model_attributes_type": "should be a mapping",
    "list_type": "should be a list",
    "string_type": "should be a string",
    "int_type": "should be a whole number",
    "int_from_float": "should be a whole number",
    "int_parsing": "should be a whole number",
    "float_type": "should be a number",
    "bool_type": "should be true or false",
}
_SHOW_INPUT = {
    *_FRIENDLY, "greater_than", "greater_than_equal", "less_than", "less_than_equal",
    "string_pattern_mismatch",
}
_BRANCH_NAMES = {"str": "a string", "int": "a whole number", "float": "a number",
                 "bool": "true or false", "list[str]": "a list of strings"}


def _spec_error(exc: ValidationError, data: Any, positions: _Positions,
                file: str) -> SpecError:
    problems = [_problem(error, data, positions) for error in exc.errors(include_url=False)]
    fitting = [p for p in problems if p.fits]
    if fitting:
        candidates = fitting
    else:
        # No union member takes this type: say which types would do.
        first = problems[0]
        same = [p for p in problems if p.path == first.path and p.branch]
        names = [_BRANCH_NAMES.get(p.branch or "", p.branch or "") for p in same]
        shown = _shown(_value_at(data, first.path), positions.text(first.path))
        candidates = [replace(first, message=f"should be {' or '.join(names)}, not {shown}")]
        problems = [first, *(p for p in problems if p.path != first.path)]

    def where_in_file(problem: _Problem) -> tuple[int, int]:
        return positions.locate(problem.path, key=problem.key) or (0, 0)

    chosen = min(candidates, key=where_in_file)
    others = {p.path for p in problems if p.fits or not fitting} - {chosen.path}
    more = f" (and {len(others)} more problem{'s' if len(others) > 1 else ''})" if others else ""
    shown_path = chosen.path[:-1] if chosen.key else chosen.path
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in shown_path)
    prefix = f"{where.removeprefix('.')}: " if where else ""
    return _error(f"{prefix}{chosen.message}{more}", file,
                  positions.locate(chosen.path, key=chosen.key))


def _problem(error: Any, data: Any, positions: _Positions) -> _Problem:
    kind: str = error["type"]
    loc = tuple(error["loc"])
    missing = loc[-1] if kind == "missing" and loc else None
    if missing is not None:
        loc = loc[:-1]
    path: list[str | int] = []
    value = data
    branch: str | None = None
    fits = True
    key = False
    for part in loc:
        in_dict = isinstance(value, dict) and part in value
        if in_dict or (isinstance(value, list) and type(part) is int and 0 <= part < len(value)):
            path.append(part)
            value = value[part]
        elif part == "[key]":
            key = True
        elif branch is None and isinstance(part, str):
            branch, fits = part, _fits(part, value)
    message = str(error["msg"]).removeprefix("Value error, ").removeprefix("Input ")
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, NodeError):
        path.extend(cause.path)
        key = cause.key
        message = str(cause)
    elif missing is not None:
        message = f"missing required key {missing!r}"
    elif kind == "extra_forbidden":
        message, key = f"unknown key {path[-1]!r}", True
    elif kind in _SHOW_INPUT or kind == "literal_error":
        message = _FRIENDLY.get(kind, message)
        message += f", not {_shown(error.get('input'), positions.text(tuple(path)))}"
        if kind == "literal_error":
            expected = re.findall(r"'([^']*)'", str((error.get("ctx") or {}).get("expected")))
            message += did_you_mean(str(error.get("input")), expected)
    elif kind == "too_short" and tuple(path) == ("scenarios",):
        message = "the suite needs at least one scenario"
    return _Problem(tuple(path), key, message, branch, fits)


def _fits(branch: str, value: Any) -> bool:
    if branch == "str":
        return isinstance(value, str)
    if branch == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if branch.startswith("list["):
        return isinstance(value, list)
    if branch.startswith("dict["):
        return isinstance(value, dict)
    return True


def _value_at(data: Any, path: Path_) -> Any:
    for part in path:
        data = data[part]
    return data


def _shown(value: Any, source: str | None) -> str:
    """How to quote a wrong value: as typed for YAML's yes/null/1.5, repr for strings."""
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if source is not None and source != "":
        return source
    return repr(value) if value is not None else "null"


def _with_rule_sources(suite: Suite, positions: _Positions, file: str) -> Suite:
    """Give every rule the file and line it was written on, for annotations in CI."""

    def located(rule_list: list[Any], path: Path_) -> list[Any]:
        out = []
        for index, rule in enumerate(rule_list):
            # a mapping rule is shown by its 'rule:' line, not its first key
            line = (positions.locate((*path, index, "rule")) or (None, None))[0]
            out.append(replace(rule, file=file, line=line))
        return out

    suite.slas = located(suite.slas, ("slas",))
    for name, scenario in suite.scenarios.items():
        scenario.slas = located(scenario.slas, ("scenarios", name, "slas"))
        lines = {}
        for key in scenario.model_fields_set:
            found = positions.locate(("scenarios", name, key), key=True)
            if found is not None:
                lines[key] = found[0]
        for key in suite.defaults.model_fields_set:  # a default a scenario inherits
            found = positions.locate(("defaults", key), key=True)
            if found is not None:
                lines.setdefault(key, found[0])
        scenario.locate(file, lines)
    return suite
