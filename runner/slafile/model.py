"""The pydantic models of ``sla.yaml`` (schema version 1) and the settings of each scenario."""

from __future__ import annotations

import itertools
import re
import string
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from runner.metrics import MIN_SIZES, MetricRef, Source, reads_heap
from runner.slafile.rules import STATS, Rule, parse_rule
from runner.units import (
    MAX_SECONDS,
    UnitError,
    clip,
    did_you_mean,
    format_bytes,
    parse_bytes,
    parse_seconds,
)

SCHEMA_VERSION = 1
# The backends of runner.backends.registry, and auto: this layer may not import that one, so
# tests/test_backend_registry.py checks the two agree.
BackendName = Literal["auto", "cgroup", "process", "docker"]
TrackerName = Literal["tracemalloc", "memray", "none"]
# Which sizes get the traced run: auto (those whose rules read heap figures, and the largest),
# all, largest, or a list of the size parameter's values (runner.plan.choose_traced)
TraceSizes = Literal["auto", "all", "largest"] | list[int]
# Placeholders every command may use besides the matrix parameters. ``fixture_copy`` is a
# per-run writable copy of the fixture (made outside the measurement), for tools that write next
# to their input: the fixture itself is read-only to the build.
PATH_PLACEHOLDERS = ("fixture", "output", "scratch", "fixture_copy")
MAX_INPUTS = 256
NodePath = tuple[str | int, ...]

# Every number in the file has a bound, so whatever it holds, loading it and planning its runs
# stay cheap, and no value overflows the kernel, Docker or sitegen later.
MAX_SCENARIOS = 256
MAX_RULES = 256  # in one 'slas' list
MAX_MATRIX_AXES = 16
MAX_MATRIX_VALUES = 100  # on one axis
MAX_CASES = 1000  # combinations of one scenario's matrix; each is at least one build
MAX_MATRIX_INT = 10**15
MAX_MATRIX_TEXT = 1024  # characters of a matrix value
MAX_PAGES = 1_000_000  # sitegen
MAX_PAGE_SIZE = 1024**2  # sitegen
MAX_SECTIONS = 10_000  # sitegen
MAX_SEED = 2**32 - 1
PID_MAX_LIMIT = 4_194_304  # the kernel's largest pid_max: a larger pids_limit means nothing
MAX_TMPFS = 32
MAX_LEAK_CALLS = 1000
# A filled command argument or environment string is at most MAX_ARG_STRLEN on Linux.
MAX_FILLED = 128 * 1024
MIN_SAMPLE_INTERVAL = 0.001
MAX_STACK_DEPTH = 64
MAX_PHASES = 64  # zero-code phases of one scenario
PHASE_NAME = re.compile(r"[A-Za-z0-9_][\w.-]*")
MAX_NAMED = 16  # folders under 'disk:', prefixes under 'cache_sites:'
MAX_PREFIX = 512  # characters of a cache site prefix
NAMED = re.compile(r"[A-Za-z_]\w{0,39}")
# A 'disk:' folder is one the runner makes for each run, so it starts empty and is a host path
# on every backend (a bind mount in Docker).
DISK_ROOTS = ("{output}", "{scratch}", "{fixture_copy}")
PHASE_TARGET = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
MAX_STEPS = 32  # steps of one step scenario; each is a build of its own in every repeat
# The smallest memory limit a build can run under, on every backend: Docker refuses a container
# limit below 6 MiB, and a local cgroup held that low cannot be made (the kernel charges the
# new cgroup's own structures to it: "Cannot allocate memory") or starts no interpreter.
MIN_LIMIT = 6 * 1024 * 1024


class NodeError(ValueError):
    """A validation error about a node below the one being validated.

    ``path`` is relative to the validated model (e.g. ``("command", 2)``); the loader joins it to
    the model's own location so the message points at the offending line. ``key`` points at the
    key of that node instead of its value.
    """

    def __init__(self, message: str, *path: str | int, key: bool = False) -> None:
        super().__init__(message)
        self.path: NodePath = path
        self.key = key


def _bytes(value: Any) -> int:
    try:
        return parse_bytes(value)
    except UnitError as exc:
        raise ValueError(str(exc)) from None


def _seconds(value: Any) -> float:
    try:
        return parse_seconds(value)
    except UnitError as exc:
        raise ValueError(str(exc)) from None


Bytes = Annotated[int, BeforeValidator(_bytes)]


def limit_problem(limit: int) -> str | None:
    """Why ``limit`` (bytes) cannot be a build's memory limit; None: it can."""
    if limit >= MIN_LIMIT:
        return None
    return (f"a limit of {format_bytes(limit)} is below {format_bytes(MIN_LIMIT)}, the least a "
            "build can run under (Docker refuses less; a local cgroup that small cannot be made, "
            "or kills any interpreter as it starts): give at least 6MiB")


def _limit(limit: int | None) -> int | None:
    problem = limit_problem(limit) if limit is not None else None
    if problem:
        raise ValueError(problem)
    return limit
Seconds = Annotated[float, BeforeValidator(_seconds)]


RULE_KEYS = ("rule", "when", "stat")


def _rule(value: Any) -> Rule:
    if isinstance(value, str):
        return parse_rule(value)
    if not isinstance(value, Mapping):
        raise ValueError("a rule is a string like 'peak < 2GiB' or a mapping with rule/when/stat")
    for key in value:
        if key not in RULE_KEYS:
            hint = did_you_mean(str(key), RULE_KEYS)
            raise NodeError(f"unknown key {clip(key)} in a rule{hint}; a rule mapping has "
                            "rule, when and stat", key, key=True)
    text = value.get("rule")
    if not isinstance(text, str):
        raise NodeError("a rule mapping needs 'rule: METRIC OP VALUE'",
                        *(("rule",) if "rule" in value else ()))
    stat = value.get("stat", "worst")
    if stat not in STATS:
        raise NodeError(f"stat must be one of {', '.join(STATS)}, not {clip(stat)}", "stat")
    when_raw = value.get("when", {})
    if not isinstance(when_raw, Mapping):
        raise NodeError("'when' maps matrix parameters to a value or a list of values", "when")
    when: dict[str, tuple[int | str, ...]] = {}
    for key, raw in when_raw.items():
        values = raw if isinstance(raw, list) else [raw]
        if not values:
            raise NodeError(f"'when' gives {clip(key)} no values", "when", key)
        for index, item in enumerate(values):
            if isinstance(item, bool) or not isinstance(item, int | str):
                where = ("when", key, index) if isinstance(raw, list) else ("when", key)
                raise NodeError(f"'when' values are matrix values (numbers or names), "
                                f"not {clip(item)}", *where)
        when[str(key)] = tuple(values)
    try:
        return parse_rule(text, stat=stat, when=when)
    except ValueError as exc:
        raise NodeError(str(exc), "rule") from None


RuleField = Annotated[Rule, PlainValidator(_rule)]


class _Strict(BaseModel):
    # strict: YAML already gives real ints and bools, so 'repeats: yes' or 'shell: 1' is a mistake
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, strict=True)


class Settings(_Strict):
    """Values a suite sets as defaults and a scenario may override."""

    backend: BackendName | None = None
    limit: Annotated[Bytes | None, AfterValidator(_limit)] = Field(
        None, description="hard memory limit; swap is held to the same")
    repeats: int | None = Field(None, ge=1, le=100)
    # runs before the measured ones, kept in the results but in no metric: the first build
    # after a fixture is made also pays for a cold page cache (up to 18% more cgroup peak)
    warmup: int | None = Field(None, ge=0, le=10)
    timeout: Seconds | None = Field(None, gt=0, le=MAX_SECONDS)
    tracker: TrackerName | None = None
    # frames of each allocation's stack the tracker keeps: more cost more time in the traced run
    stack_depth: int | None = Field(None, ge=1, le=MAX_STACK_DEPTH)
    native: bool | None = Field(None, description="memray: keep native (C) stacks too")
    image: str | None = Field(None, description="Docker image the docker backend runs")
    sample_interval: Seconds | None = Field(None, ge=MIN_SAMPLE_INTERVAL, le=5)
    trace_sizes: TraceSizes | None = None

    @field_validator("trace_sizes")
    @classmethod
    def _trace_sizes(cls, sizes: TraceSizes | None) -> TraceSizes | None:
        if isinstance(sizes, list) and not sizes:
            raise NodeError("trace_sizes lists the sizes to trace: give at least one, or none "
                            "for no traced run (tracker: none)")
        return sizes

    @field_validator("image")
    @classmethod
    def _image(cls, image: str | None) -> str | None:
        if image is not None:
            _no_nul(image)
        return image


class CaseSettings(BaseModel):
    """The effective settings of one case: built-in defaults < suite defaults < the scenario <
    command-line overrides. Frozen: every layer below the plan reads, none writes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: BackendName = "auto"
    limit: int | None = None
    repeats: int = 3
    warmup: int = 0
    timeout: float = 1800.0
    tracker: TrackerName = "tracemalloc"
    # tracemalloc frames per allocation: 5 made the traced Pelican pass 12.7x the bare build
    # against 5x with 1 (benchmarks/traced.py); memray keeps whole stacks whatever this says
    stack_depth: int = 1
    native: bool = False
    image: str = "memsla-scenarios:latest"
    sample_interval: float = 0.02
    trace_sizes: Literal["auto", "all", "largest"] | tuple[int, ...] = "auto"


BUILTIN_SETTINGS = CaseSettings()


class SitegenStep(_Strict):
    """The built-in synthetic site generator (``runner.workload.sitegen``)."""

    pages: int | str = "{pages}"
    flavour: Literal["pelican", "hugo"] = "pelican"
    seed: int = Field(0, ge=0, le=MAX_SEED)
    page_size: Bytes = Field(3000, ge=200, le=MAX_PAGE_SIZE)  # sitegen's minimum page size
    sections: int = Field(10, ge=1, le=MAX_SECTIONS)


class GenerateStep(_Strict):
    """The fixture: made before and outside the measurement, cached by its inputs.

    ``sitegen`` makes a synthetic site; ``command`` makes the fixture (or, after ``sitegen``,
    adds the tool's own files to the site) in ``{fixture}``. The cache key covers the step's
    text, the content of every argument that names a file (the script it runs) and of the files
    and folders listed in ``inputs`` (relative to the SLA file).
    """

    sitegen: SitegenStep | None = None
    command: list[str] | None = Field(None, min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    inputs: list[str] = Field(default_factory=list, max_length=MAX_INPUTS)

    @field_validator("env")
    @classmethod
    def _env_names(cls, env: dict[str, str]) -> dict[str, str]:
        return _check_env(env)

    @field_validator("command")
    @classmethod
    def _command(cls, command: list[str] | None) -> list[str] | None:
        for index, text in enumerate(command or ()):
            _no_nul(text, index)
        return command

    @field_validator("inputs")
    @classmethod
    def _inputs(cls, inputs: list[str]) -> list[str]:
        for index, text in enumerate(inputs):
            _no_nul(text, index)
            if not text.strip():
                raise NodeError("an input is a path relative to the SLA file, not empty", index)
        return inputs

    @model_validator(mode="after")
    def _some_kind(self) -> GenerateStep:
        if self.sitegen is None and self.command is None:
            raise NodeError("generate needs 'sitegen', 'command', or both (the command runs "
                            "after sitegen, in the same folder)")
        return self


class DockerOptions(_Strict):
    """Container settings a scenario may loosen; the defaults are the safe ones."""

    network: Literal["none", "host", "bridge"] = "none"
    read_only: bool = True
    pids_limit: int = Field(1024, ge=16, le=PID_MAX_LIMIT)
    tmpfs: dict[str, str] = Field(default_factory=lambda: {"/tmp": "size=512m"},
                                  max_length=MAX_TMPFS)
    output: Literal["bind", "tmpfs"] = "bind"

    @field_validator("tmpfs")
    @classmethod
    def _tmpfs(cls, tmpfs: dict[str, str]) -> dict[str, str]:
        for path, options in tmpfs.items():
            _no_nul(path, path, key=True)
            _no_nul(options, path)
        return tmpfs


class LeakMode(_Strict):
    """Call a Python entry point many times in one process and judge retained growth."""

    entry: str = Field(description="module:function")
    calls: int = Field(12, ge=4, le=MAX_LEAK_CALLS)
    warmup: int = Field(2, ge=0, le=MAX_LEAK_CALLS)
    args: list[str] = Field(default_factory=list)
    # True: the entry is a console script's function (``[project.scripts]``): it is called with
    # no arguments and ``sys.argv = [entry, *args]``, as its script would; a SystemExit(0) (or
    # None) is a completed call. False: called as ``function(*args)`` (sys.argv set too).
    console_script: bool = False

    @field_validator("entry")
    @classmethod
    def _entry(cls, entry: str) -> str:
        if not re.fullmatch(r"[\w.]+:[\w.]+", entry):
            raise ValueError(f"entry {clip(entry)} must be 'module:function', e.g. "
                             "'mysite.build:main'")
        return entry

    @model_validator(mode="after")
    def _measured_calls(self) -> LeakMode:
        if self.calls - self.warmup < 2:  # a slope needs two points
            raise NodeError(f"{self.calls} calls with {self.warmup} warm-up calls leave fewer "
                            "than 2 measured calls", "warmup")
        return self


class Step(_Strict):
    """One named step of a step scenario: a command run on the scenario's writable fixture
    copy after the steps before it, measured in a cgroup reading of its own."""

    name: str
    command: list[str] | str
    shell: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not PHASE_NAME.fullmatch(name):
            raise ValueError(f"step name {clip(name)}: use letters, digits, '.', '-', '_'")
        return name

    @model_validator(mode="after")
    def _command(self) -> Step:
        _check_command(self.command, self.shell)
        return self


class Scenario(Settings):
    _lines: dict[str, int] = PrivateAttr(default_factory=dict)  # key -> line (the loader's)
    _file: str | None = PrivateAttr(default=None)
    description: str = ""
    generate: GenerateStep | None = None
    command: list[str] | str | None = None
    shell: bool = False
    env: dict[str, str] = Field(default_factory=dict)
    workdir: str | None = None
    requirements: list[str] = Field(default_factory=list)
    python: str | None = Field(None, description="interpreter for the requirements virtualenv")
    # The project under test: a source tree (relative to the SLA file) installed on top of the
    # requirements on every backend, again whenever its content changes (runner.workload.project)
    project: str | None = None
    # Docker: build this Dockerfile (relative to the SLA file; its folder is the context) and
    # run in it, with the requirements and the project as layers on top
    dockerfile: str | None = None
    size: str | None = Field(None, description="the matrix parameter that is the size")
    matrix: dict[str, list[int | str]] = Field(default_factory=dict, max_length=MAX_MATRIX_AXES)
    slas: list[RuleField] = Field(default_factory=list, max_length=MAX_RULES)
    docker: DockerOptions = Field(default_factory=lambda: DockerOptions.model_validate({}))
    leak: LeakMode | None = None
    # zero-code phases: phase name -> the callable the probe runs as that phase, wrapped when
    # its module is imported ('package.module:Class.method' or 'module:function')
    phases: dict[str, str] = Field(default_factory=dict, max_length=MAX_PHASES)
    # a step scenario: these commands in order on one writable fixture copy, instead of command
    steps: list[Step] | None = Field(None, min_length=1, max_length=MAX_STEPS)
    # folders measured after each run: name -> a path starting with {output}, {scratch} or
    # {fixture_copy} (disk(NAME), disk_files(NAME)); cache objects at the heap's peak: name ->
    # the file path prefix of their allocation sites (cache(NAME))
    disk: dict[str, str] = Field(default_factory=dict, max_length=MAX_NAMED)
    cache_sites: dict[str, str] = Field(default_factory=dict, max_length=MAX_NAMED)

    @field_validator("disk", "cache_sites")
    @classmethod
    def _named(cls, named: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        for name, text in named.items():
            if not NAMED.fullmatch(name):
                raise NodeError(f"{info.field_name} name {clip(name)}: use letters, digits and "
                                "'_', at most 40, not starting with a digit", name, key=True)
            _no_nul(text, name)
            if info.field_name == "disk" and not text.startswith(DISK_ROOTS):
                raise NodeError(f"disk folder {clip(text)} must start with "
                                f"{', '.join(DISK_ROOTS)}: a folder the runner makes for each "
                                "run, so it starts empty and the runner can read it after the "
                                "run on every backend", name)
            if info.field_name == "cache_sites" and not 0 < len(text.strip()) <= MAX_PREFIX:
                raise NodeError(f"cache site prefix {clip(text)} must be a file path prefix of "
                                f"1 to {MAX_PREFIX} characters, e.g. 'jinja2/'", name)
        return named

    @field_validator("phases")
    @classmethod
    def _phases(cls, phases: dict[str, str]) -> dict[str, str]:
        for name, target in phases.items():
            if not PHASE_NAME.fullmatch(name):
                raise NodeError(f"phase name {clip(name)}: use letters, digits, '.', '-', '_'",
                                name, key=True)
            if not PHASE_TARGET.fullmatch(target):
                raise NodeError(f"phase {clip(name)}: {clip(target)} must be "
                                "'package.module:function' or 'package.module:Class.method'",
                                name)
        return phases

    @field_validator("env")
    @classmethod
    def _env_names(cls, env: dict[str, str]) -> dict[str, str]:
        return _check_env(env)

    @field_validator("python", "project", "dockerfile")
    @classmethod
    def _python(cls, python: str | None) -> str | None:
        if python is not None:
            _no_nul(python)
            if not python.strip():
                raise ValueError("must not be empty")
        return python

    @field_validator("requirements")
    @classmethod
    def _requirements(cls, requirements: list[str]) -> list[str]:
        for index, text in enumerate(requirements):
            _no_nul(text, index)
            tree = text.strip()
            if tree.startswith("-e") or (
                    (tree in (".", "..") or tree.startswith(("./", "../", "/", "~")))
                    and not tree.endswith((".whl", ".tar.gz", ".zip"))):  # a folder, not a file
                raise NodeError(f"requirement {clip(text)} is a source tree: requirements are "
                                "cached by their text, so its changes would never be installed "
                                "(and a path would start at the runner's folder); write "
                                "'project: PATH' (relative to the SLA file) instead, installed "
                                "again whenever its content changes", index)
        return requirements

    @field_validator("matrix")
    @classmethod
    def _matrix_values(cls, matrix: dict[str, list[int | str]]) -> dict[str, list[int | str]]:
        cases = 1
        for key, values in matrix.items():
            if not re.fullmatch(r"[A-Za-z_]\w*", key):
                raise NodeError(f"matrix parameter {clip(key)} must be an identifier (letters, "
                                "digits, '_')", key, key=True)
            if key in PATH_PLACEHOLDERS:
                raise NodeError(f"matrix parameter {clip(key)} clashes with the path placeholder "
                                f"{{{key}}}", key, key=True)
            if not values:
                raise NodeError(f"matrix parameter {clip(key)} has no values", key)
            if len(values) > MAX_MATRIX_VALUES:
                raise NodeError(f"matrix parameter {clip(key)} has {len(values)} values; at most "
                                f"{MAX_MATRIX_VALUES}", key, MAX_MATRIX_VALUES)
            cases *= len(values)
            if cases > MAX_CASES:
                raise NodeError(f"the matrix has more than {MAX_CASES} combinations (each is "
                                "at least one build); split the scenario", key)
            seen: set[str] = set()
            for index, value in enumerate(values):
                if isinstance(value, int) and abs(value) > MAX_MATRIX_INT:
                    raise NodeError(f"matrix value {clip(value)} is too large (at most "
                                    f"{MAX_MATRIX_INT:_})", key, index)
                if isinstance(value, str):
                    if len(value) > MAX_MATRIX_TEXT:
                        raise NodeError(f"matrix value {clip(value)} is longer than "
                                        f"{MAX_MATRIX_TEXT} characters", key, index)
                    _no_nul(value, key, index)
                if str(value) in seen:
                    raise NodeError(f"matrix parameter {clip(key)} repeats the value {clip(value)}",
                                    key, index)
                seen.add(str(value))
        return matrix

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        self._check_command()
        self._check_size()
        self._check_templates()
        self._check_shared_folders()
        self._check_rules()
        self._check_trace_sizes()
        return self

    def _check_trace_sizes(self) -> None:
        if not isinstance(self.trace_sizes, list):
            return
        if self.size_parameter is None:
            raise NodeError("trace_sizes lists sizes, but the scenario has no size parameter "
                            "(set 'size:', or trace_sizes: all)", "trace_sizes")
        axis = self.matrix[self.size_parameter]
        for index, value in enumerate(self.trace_sizes):
            if value not in axis:
                raise NodeError(f"trace_sizes: {clip(value)} is not a value of "
                                f"{self.size_parameter} (" + ", ".join(map(clip, axis)) + ")",
                                "trace_sizes", index)

    def _check_shared_folders(self) -> None:
        """The folders the runner reads after a run, and a step scenario's steps share, must be
        the run's host folders: not each step's own {scratch}, not a tmpfs {output} that is
        gone with its container."""
        for name, text in self.disk.items():
            if self.steps is not None and text.startswith("{scratch}"):
                raise NodeError(f"disk folder {clip(text)}: a step scenario's {{scratch}} is each "
                                "step's own; name a folder under {output} or {fixture_copy}, "
                                "which the steps share", "disk", name)
            if self.docker.output == "tmpfs" and text.startswith("{output}"):
                raise NodeError(f"disk folder {clip(text)} is under {{output}}, which "
                                "'docker: {output: tmpfs}' keeps inside the container, gone "
                                "before the runner reads it: use output: bind (the default)",
                                "disk", name)
        if self.steps is not None and self.docker.output == "tmpfs" and any(
                "output" in placeholders(text) for path, text in self._template_fields()
                if path[0] in ("steps", "env", "workdir")):
            raise NodeError("the steps share {output}, but 'output: tmpfs' gives each step's "
                            "container an empty one: use output: bind (the default)",
                            "docker", "output")

    def _check_command(self) -> None:
        if self.steps is not None:
            if self.command is not None:
                raise NodeError("a scenario gives either 'command' or 'steps', not both",
                                "steps", key=True)
            seen: set[str] = set()
            for index, step in enumerate(self.steps):
                if step.name in seen:
                    raise NodeError(f"step name {clip(step.name)} is used twice", "steps",
                                    index, "name")
                seen.add(step.name)
        elif self.command is None:
            if self.leak is None:
                raise NodeError("a scenario needs a 'command' (or 'steps', or a 'leak' entry "
                                "point)")
        else:
            _check_command(self.command, self.shell)

    def _check_size(self) -> None:
        if self.size is None:
            return
        if self.size not in self.matrix:
            known = f" (the matrix has {', '.join(self.matrix)})" if self.matrix else ""
            raise NodeError(f"size {clip(self.size)} is not a matrix parameter{known}", "size")
        for index, value in enumerate(self.matrix[self.size]):
            if not isinstance(value, int):
                raise NodeError(f"the size parameter {clip(self.size)} takes whole numbers, "
                                f"not {clip(value)}", "matrix", self.size, index)

    def _check_templates(self) -> None:
        known = set(self.matrix) | set(PATH_PLACEHOLDERS)
        # filled as runner.plan.fill does: every value as a string
        sample = {name: str(values[0]) for name, values in self.matrix.items()}
        sample.update({name: f"/{name}" for name in PATH_PLACEHOLDERS})
        longest = {name: max(len(str(value)) for value in values)
                   for name, values in self.matrix.items()}
        longest.update({name: len(sample[name]) for name in PATH_PLACEHOLDERS})
        for path, text in self._template_fields():
            _no_nul(text, *path)
            try:
                fields = list(string.Formatter().parse(text))
            except ValueError as exc:
                raise NodeError(f"bad placeholder in {clip(text)}: {exc} (write {{{{ and }}}} "
                                "for literal braces)", *path) from None
            filled = 0
            for literal, name, spec, conversion in fields:
                filled += len(literal)
                if name is None:
                    continue
                if path[0] in ENVIRONMENT_FIELDS and name in PATH_PLACEHOLDERS:
                    raise NodeError(f"{{{name}}} in {clip(text)}: python:, requirements:, "
                                    "image: and dockerfile: take matrix parameters (an "
                                    "environment is made once per combination, before any "
                                    "run)", *path)
                if name not in known:
                    if path == ("generate", "sitegen", "pages") and text == "{pages}":
                        raise NodeError("sitegen makes '{pages}' pages by default, so the "
                                        "matrix needs a 'pages' parameter (or set sitegen.pages)",
                                        *path[:2])
                    raise NodeError(f"unknown placeholder {{{clip(name, 40)[1:-1]}}} in "
                                    f"{clip(text)}; known: " + ", ".join(sorted(known)), *path)
                # Only {name}: a format spec like {x:>999999999999} would cost any memory it
                # asks for (or raise MemoryError), and values are filled as text anyway.
                if spec or conversion:
                    written = f"{{{name}{'!' + conversion if conversion else ''}:{spec}}}"
                    raise NodeError(f"placeholder {clip(written, 40)[1:-1]} in {clip(text)}: "
                                    f"write {{{name}}}; memsla fills each value as it is, "
                                    "without format specs or conversions", *path)
                filled += longest[name]
            if filled > MAX_FILLED:
                raise NodeError(f"{clip(text)} is {filled} characters long once filled; an "
                                f"argument or environment value has at most {MAX_FILLED}", *path)
            try:
                text.format_map(sample)
            except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
                raise NodeError(f"cannot fill {clip(text)}: {exc}", *path) from None
        self._check_sitegen_pages()

    def _check_sitegen_pages(self) -> None:
        sitegen = self.generate.sitegen if self.generate else None
        if sitegen is None:
            return
        where = ("generate", "sitegen", "pages")
        if isinstance(sitegen.pages, int):
            if not 1 <= sitegen.pages <= MAX_PAGES:
                raise NodeError(f"sitegen pages must be at least 1 and at most {MAX_PAGES:_}, "
                                f"not {clip(sitegen.pages)}", *where)
            return
        names = sorted(set(placeholders(sitegen.pages)))
        for name in names:
            if name not in self.matrix:
                raise NodeError(f"sitegen pages can use matrix parameters, not {{{name}}}", *where)
        # at most MAX_CASES combinations: the matrix is bounded before this runs
        for combo in itertools.product(*(self.matrix[name] for name in names)):
            params = {name: str(value) for name, value in zip(names, combo, strict=True)}
            text = sitegen.pages.format_map(params)
            if not re.fullmatch(r"[0-9]{1,16}", text) or not 1 <= int(text) <= MAX_PAGES:
                shown = ", ".join(f"{k}={clip(v, 30)}" for k, v in params.items())
                raise NodeError(f"sitegen pages {clip(sitegen.pages)} gives {clip(text)} for "
                                f"{shown}; it must be a whole number of at least 1 and at most "
                                f"{MAX_PAGES:_}",
                                *where)

    def _check_rules(self) -> None:
        for index, rule in enumerate(self.slas):
            for key, values in rule.when.items():
                if key not in self.matrix:
                    known = f" (the matrix has {', '.join(self.matrix)})" if self.matrix else ""
                    raise NodeError(f"rule {clip(rule.text)}: 'when' names {clip(key)}, which "
                                    f"is not a matrix parameter{known}", "slas", index, "when", key,
                                    key=True)
                for position, value in enumerate(values):
                    if value not in self.matrix[key]:
                        raise NodeError(
                            f"rule {clip(rule.text)}: {key}={clip(value)} is not in the matrix ("
                            + ", ".join(map(clip, self.matrix[key])) + ")",
                            "slas", index, "when", key, position)
            missing = self.cannot_measure(rule.metric) or self.cannot_compare(rule) or (
                rule.over is not None and self.cannot_measure(rule.over))
            if missing:
                raise NodeError(f"rule {clip(rule.text)}: {missing}", "slas", index)

    def cannot_measure(self, metric: MetricRef) -> str | None:
        """Why this scenario cannot give ``metric`` (None: it can)."""
        if metric.source is Source.FIT:
            size = self.size_parameter
            if size is None or len(self.matrix[size]) < MIN_SIZES:
                return (f"{metric.key} is fitted across sizes, so the scenario needs a size "
                        f"parameter with at least {MIN_SIZES} values")
        if metric.source is Source.LEAK and self.leak is None:
            return f"{metric.key} needs a 'leak' entry point"
        if metric.step is not None:
            names = [step.name for step in self.steps or ()]
            if metric.step not in names:
                return (f"{metric.key}: the scenario has no step {clip(metric.step)} ("
                        + (f"its steps: {', '.join(names)}" if names else "it has no 'steps'")
                        + ")")
        if metric.definition.scope == "named":
            where = "cache_sites" if metric.name == "cache" else "disk"
            declared = self.cache_sites if where == "cache_sites" else self.disk
            if metric.of not in declared:
                known = f" (it names {', '.join(declared)})" if declared else ""
                return (f"{metric.key}: the scenario's '{where}:' names no {clip(metric.of)}"
                        f"{known}")
        return None

    def cannot_compare(self, rule: Rule) -> str | None:
        """Why this scenario's matrix has no pair of cases a rule across matrix values names
        (None: it has, or the rule is not one)."""
        across = rule.metric.across
        if across is None:
            return None
        for side in (across.left, across.right):
            for key, value in side:
                if key not in self.matrix:
                    known = f"the matrix has {', '.join(self.matrix)}" if self.matrix else \
                        "the scenario has no matrix"
                    return f"{clip(key)} is not a matrix parameter ({known})"
                if matrix_value(self.matrix[key], value) is None:
                    return (f"{key}={clip(value)} is not in the matrix ("
                            + ", ".join(map(clip, self.matrix[key])) + ")")
        named = [key for key in rule.when if key in across.keys]
        if named:
            return (f"'when' names {clip(named[0])}, which the rule's sides choose: 'when' "
                    "scopes the other parameters")
        return None

    def python_for(self, params: Mapping[str, int | str]) -> str | None:
        """``python:`` for one case, its matrix placeholders filled."""
        return _fill(self.python, params) if self.python is not None else None

    def dockerfile_for(self, params: Mapping[str, int | str]) -> str | None:
        """``dockerfile:`` for one case, its matrix placeholders filled."""
        return _fill(self.dockerfile, params) if self.dockerfile is not None else None

    def requirements_for(self, params: Mapping[str, int | str]) -> list[str]:
        """``requirements:`` for one case, its matrix placeholders filled."""
        return [_fill(text, params) for text in self.requirements]

    @property
    def python_choices(self) -> list[str]:
        """Every ``python:`` the matrix gives (one without placeholders: itself)."""
        if self.python is None:
            return []
        names = sorted(set(placeholders(self.python)))
        return list(dict.fromkeys(
            _fill(self.python, dict(zip(names, combo, strict=True)))
            for combo in itertools.product(*(self.matrix[name] for name in names))))

    @property
    def environment_parameters(self) -> list[str]:
        """The matrix parameters that decide a case's environment (``python:``,
        ``requirements:``, ``image:``, ``dockerfile:``): one environment per combination."""
        names = [name for path, text in self._template_fields()
                 if path[0] in ENVIRONMENT_FIELDS for name in placeholders(text)]
        return [name for name in dict.fromkeys(names) if name in self.matrix]

    @property
    def swept(self) -> list[str]:
        """The matrix parameters the environment or a rule across values compares: the
        reports keep their values side by side."""
        names = list(self.environment_parameters)
        names += [key for rule in self.slas if rule.metric.across
                  for key in rule.metric.across.keys]
        return [name for name in dict.fromkeys(names) if name in self.matrix]

    def _template_fields(self) -> list[tuple[NodePath, str]]:
        """Every text that may use ``{placeholders}``, with its path in the scenario."""
        fields: list[tuple[NodePath, str]] = []
        if isinstance(self.command, str):
            fields.append((("command",), self.command))
        elif self.command:
            fields.extend((("command", i), text) for i, text in enumerate(self.command))
        for index, step in enumerate(self.steps or ()):
            if isinstance(step.command, str):
                fields.append((("steps", index, "command"), step.command))
            else:
                fields.extend((("steps", index, "command", i), text)
                              for i, text in enumerate(step.command))
        fields.extend((("env", name), text) for name, text in self.env.items())
        if self.workdir:
            fields.append((("workdir",), self.workdir))
        fields.extend((("disk", name), text) for name, text in self.disk.items())
        if self.generate:
            if self.generate.command:
                fields.extend((("generate", "command", i), text)
                              for i, text in enumerate(self.generate.command))
            fields.extend((("generate", "env", name), text)
                          for name, text in self.generate.env.items())
            if self.generate.sitegen and isinstance(self.generate.sitegen.pages, str):
                fields.append((("generate", "sitegen", "pages"), self.generate.sitegen.pages))
        if self.leak:
            fields.extend((("leak", "args", i), text) for i, text in enumerate(self.leak.args))
        if self.python is not None:
            fields.append((("python",), self.python))
        fields.extend((("requirements", i), text) for i, text in enumerate(self.requirements))
        fields.extend(((key,), text) for key, text in (("image", self.image),
                                                        ("dockerfile", self.dockerfile))
                      if text is not None)
        return fields

    def _templates(self) -> list[str]:
        return [text for _, text in self._template_fields()]

    @property
    def uses_fixture_copy(self) -> bool:
        """Whether a command, env or workdir asks for ``{fixture_copy}``."""
        return any("fixture_copy" in placeholders(text)
                   for path, text in self._template_fields() if path[0] != "generate")

    def line_of(self, key: str) -> int | None:
        """The line of this scenario's ``key`` in the SLA file (set by the loader), if known."""
        return self._lines.get(key)

    @property
    def file(self) -> str | None:
        """The SLA file this scenario was read from (set by the loader)."""
        return self._file

    def locate(self, file: str | None, lines: dict[str, int]) -> None:
        """Remember where this scenario's settings are written (the loader calls this)."""
        self._file = file
        self._lines = dict(lines)

    @property
    def size_parameter(self) -> str | None:
        """The explicit size, else ``pages`` when the matrix has it, else its only int axis."""
        if self.size is not None:
            return self.size
        if "pages" in self.matrix:
            return "pages"
        int_axes = [k for k, v in self.matrix.items() if all(isinstance(x, int) for x in v)]
        return int_axes[0] if len(int_axes) == 1 else None


class Suite(_Strict):
    version: Literal[1]
    defaults: Settings = Field(default_factory=lambda: Settings.model_validate({}))
    scenarios: dict[str, Scenario] = Field(min_length=1, max_length=MAX_SCENARIOS)
    slas: list[RuleField] = Field(default_factory=list, max_length=MAX_RULES,
                                  description="rules for every scenario")

    @field_validator("scenarios")
    @classmethod
    def _names(cls, scenarios: dict[str, Scenario]) -> dict[str, Scenario]:
        for name in scenarios:
            if not re.fullmatch(r"[A-Za-z0-9][\w.-]*", name):
                raise NodeError(f"scenario name {clip(name)}: use letters, digits, '.', '-', "
                                "'_'", name, key=True)
        return scenarios

    @model_validator(mode="after")
    def _suite_rules(self) -> Suite:
        # A suite-wide rule applies to every scenario that can measure its metric (a fit needs
        # sizes, a leak figure a leak entry point), so 'when' only has to match one of them.
        for index, rule in enumerate(self.slas):
            reasons = [s.cannot_measure(rule.metric) or s.cannot_compare(rule) or (
                rule.over is not None and s.cannot_measure(rule.over))
                for s in self.scenarios.values()]
            if all(reasons):
                raise NodeError(f"rule {clip(rule.text)} applies to no scenario: {reasons[0]}",
                                "slas", index)
            for key, values in rule.when.items():
                axes = [s.matrix[key] for s in self.scenarios.values() if key in s.matrix]
                if not axes:
                    raise NodeError(f"rule {clip(rule.text)}: 'when' names {clip(key)}, which no "
                                    "scenario's matrix has", "slas", index, "when", key,
                                    key=True)
                for position, value in enumerate(values):
                    if not any(value in axis for axis in axes):
                        raise NodeError(f"rule {clip(rule.text)}: {key}={clip(value)} is in no "
                                        "scenario's matrix", "slas", index, "when", key, position)
        self._check_untraced_rules()
        return self

    def _check_untraced_rules(self) -> None:
        """A rule that reads heap figures at a size that ``trace_sizes`` leaves untraced would
        have nothing to judge there: an error in the file, never a rule skipped."""
        for name, scenario in self.scenarios.items():
            chosen = scenario.trace_sizes or self.defaults.trace_sizes or "auto"
            size = scenario.size_parameter
            tracker = scenario.tracker or self.defaults.tracker or "tracemalloc"
            if chosen in ("auto", "all") or size is None or tracker == "none":
                continue
            axis = [v for v in scenario.matrix[size] if isinstance(v, int)]
            traced = [max(axis)] if chosen == "largest" else [v for v in chosen if v in axis]
            where: NodePath = ("trace_sizes",) if scenario.trace_sizes else ("defaults",
                                                                              "trace_sizes")
            if not traced:
                raise NodeError(f"trace_sizes traces none of scenario {clip(name)}'s sizes "
                                f"({', '.join(map(clip, axis))})", *where)
            untraced = [v for v in axis if v not in traced]
            for path, rules in ((("scenarios", name, "slas"), scenario.slas), (("slas",),
                                                                              self.slas)):
                for index, rule in enumerate(rules):
                    if not reads_heap(rule.metric) or any(
                            key not in scenario.matrix for key in rule.when) or (
                            path == ("slas",) and (scenario.cannot_measure(rule.metric)
                                                   or scenario.cannot_compare(rule))):
                        continue
                    missed = [v for v in untraced if v in rule.when.get(size, [v])]
                    if missed:
                        raise NodeError(
                            f"rule {clip(rule.text)} reads heap figures at {size}="
                            f"{clip(missed[0])} in scenario {clip(name)}, which trace_sizes: "
                            f"{chosen if isinstance(chosen, str) else list(chosen)} "
                            "leaves untraced: add that size to trace_sizes (or use auto, "
                            "which traces where a rule reads heap figures)", *path, index)

    def settings_for(self, scenario: Scenario) -> CaseSettings:
        """The effective settings: built-in defaults < suite defaults < the scenario."""
        merged: dict[str, Any] = {}
        for source in (self.defaults, scenario):
            for key in Settings.model_fields:
                value = getattr(source, key)
                if value is not None:
                    merged[key] = value
        return BUILTIN_SETTINGS.model_copy(update=merged)


def _check_command(command: list[str] | str, shell: bool) -> None:
    """A command is a non-empty list of arguments, or with ``shell`` a non-empty string."""
    if isinstance(command, str):
        if not shell:
            raise NodeError("'command' is a list of arguments; a string needs 'shell: true'",
                            "command")
        if not command.strip():
            raise NodeError("'command' is empty", "command")
    elif not command:
        raise NodeError("'command' is an empty list", "command")
    elif not command[0]:
        raise NodeError("the program name in 'command' is empty", "command", 0)


def _check_env(env: dict[str, str]) -> dict[str, str]:
    for name, value in env.items():
        if not name or "=" in name or "\0" in name:
            raise NodeError(f"{clip(name)} is not a valid environment variable name", name,
                            key=True)
        _no_nul(value, name)
    return env


def _no_nul(text: str, *path: str | int, key: bool = False) -> None:
    """Paths, programs and arguments reach the kernel as C strings: a NUL cannot be in one."""
    if "\0" in text:
        raise NodeError(f"{clip(text)} contains a NUL character", *path, key=key)


# The settings that decide a case's environment: matrix placeholders only, filled per case.
ENVIRONMENT_FIELDS = ("python", "requirements", "image", "dockerfile")

PYTHON_VERSION = re.compile(r"^(?:python)?(3\.[0-9]{1,2})$")


def python_version(python: str | None) -> str | None:
    """``X.Y`` when ``python:`` names a version (``3.12``, ``python3.12``), which every backend
    can honour (an interpreter on the host, an image with it); None for a path or a command."""
    match = PYTHON_VERSION.match(python or "")
    return match.group(1) if match else None


def matrix_value(values: list[int | str], text: str) -> int | str | None:
    """The value of a matrix axis written as ``text`` in a rule (None: not on the axis)."""
    return next((value for value in values if str(value) == text), None)


def _fill(template: str, params: Mapping[str, int | str]) -> str:
    # as runner.plan.fill does (this layer may not import the plan)
    return template.format_map({k: str(v) for k, v in params.items()})


def placeholders(template: str) -> list[str]:
    """Names used as ``{name}`` in a template (``{{`` and ``}}`` are literal braces)."""
    names: list[str] = []
    for _, field_name, _, _ in string.Formatter().parse(template):
        if field_name is not None:
            names.append(field_name)
    return names
