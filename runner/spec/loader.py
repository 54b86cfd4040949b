"""Reading ``sla.yaml``: YAML safe_load, pydantic validation, errors that point at file:line:col."""

from __future__ import annotations

import difflib
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from runner.errors import SpecError
from runner.spec.model import Scenario, Settings, Suite

Path_ = tuple[str | int, ...]
Position = tuple[int, int]  # 1-based line and column


class _Positions:
    """Where each node of the YAML document starts, by its path of keys and indexes."""

    def __init__(self) -> None:
        self.values: dict[Path_, Position] = {}
        self.keys: dict[Path_, Position] = {}

    def locate(self, loc: Path_, *, key: bool = False) -> Position | None:
        path = tuple(loc)
        while True:
            table = self.keys if key else self.values
            if path in table:
                return table[path]
            if key and path in self.values:
                return self.values[path]
            if not path:
                return None
            path = path[:-1]
            key = False


def _mark(node: yaml.Node) -> Position:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _walk(node: yaml.Node, path: Path_, positions: _Positions, file: str) -> None:
    positions.values[path] = _mark(node)
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            if key == "<<":
                raise SpecError("YAML merge keys (<<) are not supported in an SLA file",
                                file=file, line=_mark(key_node)[0], column=_mark(key_node)[1])
            if key in seen:
                raise SpecError(f"duplicate key {key!r} (first on line {seen[key]})", file=file,
                                line=_mark(key_node)[0], column=_mark(key_node)[1])
            seen[key] = _mark(key_node)[0]
            positions.keys[(*path, key)] = _mark(key_node)
            _walk(value_node, (*path, key), positions, file)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), positions, file)


def load_suite(path: str | Path) -> Suite:
    """Load and validate an SLA file, or raise one SpecError naming file:line:column."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("no such file", file=file) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read: {exc}", file=file) from None
    return parse_suite(text, file=file)


def parse_suite(text: str, *, file: str = "sla.yaml") -> Suite:
    positions = _Positions()
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(part for part in (exc.context, exc.problem) if part)
        raise SpecError(f"invalid YAML: {problem}", file=file,
                        line=mark.line + 1 if mark else None,
                        column=mark.column + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"invalid YAML: {exc}", file=file) from None
    if root is None:
        raise SpecError("the file is empty; it needs 'version: 1' and 'scenarios'", file=file)
    _walk(root, (), positions, file)
    if not isinstance(data, dict):
        raise SpecError("the top level must be a mapping with 'version' and 'scenarios'",
                        file=file, line=1, column=1)
    _check_keys(data, positions, file)
    try:
        suite = Suite.model_validate(data)
    except ValidationError as exc:
        raise _spec_error(exc, positions, file) from None
    return _with_rule_sources(suite, positions, file)


def _check_keys(data: dict[str, Any], positions: _Positions, file: str) -> None:
    """Unknown keys get a 'did you mean' before pydantic's generic message."""
    _suggest(data, ("version", "defaults", "scenarios", "slas"), (), positions, file)
    defaults = data.get("defaults")
    if isinstance(defaults, dict):
        _suggest(defaults, tuple(Settings.model_fields), ("defaults",), positions, file)
    scenarios = data.get("scenarios")
    if isinstance(scenarios, dict):
        for name, scenario in scenarios.items():
            if isinstance(scenario, dict):
                _suggest(scenario, tuple(Scenario.model_fields), ("scenarios", name), positions,
                         file)


def _suggest(mapping: dict[str, Any], allowed: tuple[str, ...], path: Path_,
             positions: _Positions, file: str) -> None:
    for key in mapping:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            where = ".".join(map(str, path)) or "the top level"
            line, column = positions.locate((*path, key), key=True) or (None, None)
            raise SpecError(f"unknown key {key!r} in {where}{hint}", file=file, line=line,
                            column=column)


def _spec_error(exc: ValidationError, positions: _Positions, file: str) -> SpecError:
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = tuple(part for part in first["loc"] if isinstance(part, int | str))
    # pydantic puts union member names ("list[str]", "function-plain[...]") into loc
    data_loc = tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p in _TYPE_TAGS)))
    where = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in data_loc)
    where = where.replace(".[", "[")
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "missing":
        message = f"missing required key {data_loc[-1]!r}" if data_loc else message
        data_loc = data_loc[:-1]
        where = where.rsplit(".", 1)[0] if "." in where else ""
    elif first["type"] == "extra_forbidden":
        message = f"unknown key {data_loc[-1]!r}"
    elif first["type"] == "literal_error":
        message = f"{message}, not {first.get('input')!r}"
    line, column = positions.locate(data_loc, key=first["type"] == "extra_forbidden") or (
        None, None)
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(
        errors) > 1 else ""
    prefix = f"{where}: " if where else ""
    return SpecError(f"{prefix}{message}{more}", file=file, line=line, column=column)


_TYPE_TAGS = {"str", "int", "list", "dict", "bool", "float", "function-after", "function-before"}


def _with_rule_sources(suite: Suite, positions: _Positions, file: str) -> Suite:
    """Give every rule the file and line it was written on, for annotations in CI."""

    def located(rule_list: list[Any], path: Path_) -> list[Any]:
        out = []
        for index, rule in enumerate(rule_list):
            line = (positions.locate((*path, index)) or (None, None))[0]
            out.append(replace(rule, file=file, line=line))
        return out

    suite.slas = located(suite.slas, ("slas",))
    for name, scenario in suite.scenarios.items():
        scenario.slas = located(scenario.slas, ("scenarios", name, "slas"))
    return suite
