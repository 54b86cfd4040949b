"""memsla's pytest plugin (entry point ``pytest11``): a test's memory measured by the kernel,
under a hard limit, judged by the rules of ``sla.yaml``.

- ``@pytest.mark.memsla("rss_peak < 300MiB", limit="256MiB")``: the test body runs in a forked
  child that joins a fresh memory cgroup under the limit before calling it, so the fixtures,
  imports and data made before are outside the measurement; the rules (and the implicit
  ``exit_code == 0``, ``oom_kills == 0``) are judged by ``runner.judging`` on what the body
  added; a failure shows each value and its bound. The body's side effects stay in the child.
- the ``memsla`` fixture: ``memsla.run(target, limit=..., rules=[...])`` measures a callable
  (forked as above) or a command (argv list, or a shell string) and returns its
  ``runner.api.Figures``; a failed rule fails the test (``check=False``: it does not). In a test
  that asks for this fixture the marker's limit and rules are the defaults of its runs, and the
  body itself is not forked.
- a summary table at the end (``runner.reports.plain``), ``--memsla-json PATH`` (the results
  JSON of ``runner check``, same schema, one case per measurement), and each figure as a JUnit
  XML property.

Under pytest-xdist each worker makes its own cgroups and the controller gathers the figures
from the test reports. Without a writable cgroup the child is sampled from outside without a
hard limit (``--memsla-backend local``, the default) and every figure is marked approximate.

This module is imported by every pytest run on a host where memsla is installed: it imports
the engine only once a test asks for a measurement.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest

if TYPE_CHECKING:
    from runner.api import Figures
    from runner.results import Results

MARKER = "memsla"
MARKER_KEYS = ("limit", "rules", "tracker", "repeats", "timeout")
DEFAULT_LIMIT = "2GiB"
PAYLOAD = "memsla"  # the attribute of a test report that carries its measurements
_PAYLOADS = pytest.StashKey[list[dict[str, Any]]]()
# pytest's own outcomes raised in the forked body, by the name the child reports them under
# (pytest sets their __module__ to "builtins" for display)
_OUTCOMES = {f"{module}.{name}" for module in ("builtins", "_pytest.outcomes")
             for name in ("Skipped", "XFailed")}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("memsla", "memory measured by the kernel (memsla)")
    group.addoption("--memsla-json", metavar="PATH", default=None,
                    help="write every measurement as memsla results JSON (runner check's schema)")
    group.addoption("--memsla-backend", default="local",
                    choices=["local", "cgroup", "process"],
                    help="local: a memory cgroup, else the process sampled (approximate); "
                         "cgroup: fail without one; process: never a cgroup (default: local)")
    group.addoption("--memsla-limit", metavar="SIZE", default=DEFAULT_LIMIT,
                    help=f"hard limit where a test sets none (default {DEFAULT_LIMIT})")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "memsla(*rules, limit=None, tracker='none', repeats=1, timeout='30min'): "
        "run the test body in its own memory cgroup under a hard limit and judge the rules "
        "(e.g. 'rss_peak < 300MiB') on what it adds; tracker 'tracemalloc' or 'memray' adds "
        "a traced call for the heap figures")
    config.pluginmanager.register(_Gathered(config), "memsla-gathered")


# -- what a test declares ------------------------------------------------------------------------
@dataclass(frozen=True)
class Spec:
    """A measurement's settings: from the marker, the command line, or ``memsla.run``."""

    limit: int | str | None
    rules: tuple[str, ...] = ()
    tracker: str = "none"
    repeats: int = 1
    timeout: float | str = "30min"
    backend: str = "local"

    @classmethod
    def of(cls, item: pytest.Item) -> Spec:
        config = item.config
        base = cls(limit=config.getoption("memsla_limit"),
                   backend=config.getoption("memsla_backend"))
        marker = item.get_closest_marker(MARKER)
        if marker is None:
            return base
        unknown = sorted(set(marker.kwargs) - set(MARKER_KEYS))
        if unknown:
            raise pytest.UsageError(f"{item.nodeid}: memsla marker: unknown argument(s) "
                                    f"{', '.join(unknown)}; it takes rules and "
                                    f"{', '.join(MARKER_KEYS)}")
        rules = marker.kwargs.get("rules", ())
        rules = (rules,) if isinstance(rules, str) else tuple(rules)
        settings = {k: v for k, v in marker.kwargs.items() if k != "rules"}
        if settings.get("limit") is None:
            settings.pop("limit", None)
        if settings.get("tracker", "none") not in ("none", "tracemalloc", "memray"):
            raise pytest.UsageError(f"{item.nodeid}: memsla marker: tracker is 'none', "
                                    f"'tracemalloc' or 'memray', not {settings['tracker']!r}")
        return cls(**{**base.__dict__, **settings,
                      "rules": tuple(str(r) for r in (*marker.args, *rules))})


# -- the marked body -----------------------------------------------------------------------------
@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> object | None:
    """A marked test's body, forked into its own cgroup (unless the test measures with the
    ``memsla`` fixture itself)."""
    if pyfuncitem.get_closest_marker(MARKER) is None or MARKER in pyfuncitem.fixturenames:
        return None
    import inspect

    function = pyfuncitem.obj
    if inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function):
        return None  # pytest's own hook says async tests need a plugin
    arguments = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    spec = Spec.of(pyfuncitem)
    measured = _measure(pyfuncitem, lambda: function(**arguments), spec, label=None)
    if measured.error is not None:
        error = measured.error
        outcome = error.type.rsplit(".", 1)[-1] if error.type in _OUTCOMES else None
        if outcome == "Skipped":
            pytest.skip(error.message)  # not a measurement of the test: nothing is recorded
        if outcome == "XFailed":
            pytest.xfail(error.message)
    _record(pyfuncitem, measured, None)
    if measured.error is not None:
        error = measured.error
        pytest.fail(f"{error.traceback.rstrip()}\n\nmemsla: {measured.figures.describe()}",
                    pytrace=False)
    _fail_if_broken(measured.figures, "the test body")
    return True


# -- the fixture ---------------------------------------------------------------------------------
class Meter:
    """The ``memsla`` fixture: measures callables and commands for one test."""

    def __init__(self, item: pytest.Item) -> None:
        self.item = item
        self.spec = Spec.of(item)
        self.runs: list[Figures] = []

    def run(self, target: Callable[[], object] | Sequence[str] | str, *,
            name: str | None = None, limit: int | str | None = None,
            rules: Iterable[str] | None = None, tracker: str | None = None,
            repeats: int | None = None, timeout: float | str | None = None,
            env: dict[str, str] | None = None, workdir: str | Path | None = None,
            check: bool = True) -> Figures:
        """Measure ``target``: a callable (forked into a fresh cgroup; what this test made
        before is not charged) or a command. Returns its figures; with ``check`` a failed rule
        (or an OOM kill, a failed exit) fails the test, showing the value and the bound."""
        given = {"limit": limit, "tracker": tracker, "repeats": repeats, "timeout": timeout,
                 "rules": None if rules is None else tuple(rules)}
        spec = Spec(**{**self.spec.__dict__, **{k: v for k, v in given.items()
                                                 if v is not None}})
        label = name or str(len(self.runs) + 1)
        measured = _measure(self.item, target, spec, label=label, env=env, workdir=workdir)
        _record(self.item, measured, label)
        self.runs.append(measured.figures)
        if measured.error is not None and check:
            pytest.fail(f"{measured.error.traceback.rstrip()}\n\nmemsla run {label}: "
                        f"{measured.figures.describe()}", pytrace=False)
        if check:
            _fail_if_broken(measured.figures, f"memsla run {label}")
        return measured.figures

    @property
    def baseline(self) -> int | None:
        """The fork's own cost (an empty callable measured the same way) in this process."""
        from runner import api

        return api.fork_baseline(cast(api.CallableBackend, self.spec.backend))


@pytest.fixture
def memsla(request: pytest.FixtureRequest) -> Meter:
    """Measure a callable or a command in its own memory cgroup: ``memsla.run(target)``."""
    return Meter(request.node)


# -- measuring and recording ---------------------------------------------------------------------
@dataclass
class _Measured:
    results: Results
    figures: Figures
    error: Any = None  # runner.backends.forked.CallError: what a callable raised


def _measure(item: pytest.Item, target: Callable[[], object] | Sequence[str] | str, spec: Spec,
             *, label: str | None, env: dict[str, str] | None = None,
             workdir: str | Path | None = None) -> _Measured:
    from runner import api
    from runner.errors import MemslaError

    params: dict[str, int | str] = {} if label is None else {"run": label}
    error = None
    try:
        tracker = cast(api.Tracker, spec.tracker)
        if callable(target):
            try:
                results = api.measure_callable(
                    target, name=item.nodeid, params=params, limit=spec.limit,
                    rules=spec.rules, tracker=tracker, repeats=spec.repeats,
                    timeout=spec.timeout, backend=cast(api.CallableBackend, spec.backend))
            except api.CallableFailed as failed:
                results, error = failed.results, failed.error
        else:
            results = api.measure_command(
                target, limit=spec.limit, rules=spec.rules, tracker=tracker,
                repeats=spec.repeats, timeout=spec.timeout, backend=spec.backend, env=env,
                workdir=workdir or item.config.rootpath)
            for case in results.cases:
                case.scenario, case.params = item.nodeid, params
    except MemslaError as exc:
        pytest.fail(f"memsla could not measure {item.nodeid}: {exc}", pytrace=False)
    return _Measured(results, api.figures(results), error)


def _record(item: pytest.Item, measured: _Measured, label: str | None) -> None:
    """Keep the case for the report (and the controller, under xdist) and add the figures to
    the test's JUnit properties (as ``record_property`` does)."""
    figures = measured.figures
    payload = {"case": figures.case.model_dump(mode="json"),
               "host": measured.results.host.model_dump(mode="json")}
    item.stash.setdefault(_PAYLOADS, []).append(payload)
    prefix = "memsla." if label is None else f"memsla.{label}."
    values: dict[str, object] = {
        "peak": figures.peak, "rss_peak": figures.rss_peak, "python_peak": figures.python_peak,
        "duration": figures.duration, "oom_kills": figures.oom_kills, "limit": figures.limit,
        "baseline": figures.baseline, "backend": figures.case.backend,
        "approximate": figures.approximate}
    for key, value in values.items():
        if value is not None:
            item.user_properties.append((prefix + key, value))


def _fail_if_broken(figures: Figures, what: str) -> None:
    if not figures.passed:
        pytest.fail(f"memsla: {what} broke its memory rules:\n{figures.explain_failures()}\n"
                    f"measured: {figures.describe()}", pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Any:
    report = yield
    payloads = item.stash.get(_PAYLOADS, None)
    if call.when == "call" and payloads:
        setattr(report, PAYLOAD, payloads)  # serialized to the xdist controller with the report
    return report


# -- gathering (in the controller under xdist) ---------------------------------------------------
class _Gathered:
    """Every measurement of the session, from the test reports (a worker's reach the controller
    with them), turned into one results model at the end."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.payloads: list[dict[str, Any]] = []

    def results(self) -> Results | None:
        if not self.payloads:
            return None
        from runner.judging.status import settle
        from runner.results import Case, Host, Results

        host = Host.model_validate(self.payloads[0]["host"])
        baselines = [p["host"].get("harness_baseline") for p in self.payloads]
        host.harness_baseline = max((b for b in baselines if b is not None), default=None)
        # each case was judged when it was measured (runner.api); the session's status here
        results = Results.new(sla_file="pytest", host=host,
                              cases=[Case.model_validate(p["case"]) for p in self.payloads])
        settle(results)
        return results

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        payloads = getattr(report, PAYLOAD, None)
        if payloads:
            self.payloads.extend(payloads)

    def pytest_sessionfinish(self) -> None:
        path = self.config.getoption("memsla_json")
        if not path or hasattr(self.config, "workerinput"):
            return
        results = self.results()
        if results is not None:
            results.write(Path(path))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        results = self.results()
        if results is None or hasattr(self.config, "workerinput"):
            return
        from runner.reports.interface import ReportFormat, render_text

        terminalreporter.section("memsla: memory measured by the kernel")
        for line in render_text(ReportFormat.PYTEST_SUMMARY, results).splitlines():
            terminalreporter.write_line(line)
