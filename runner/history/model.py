"""The history's records: a commit, the environment a case was measured in, one point (the raw
values of one metric of one case in one check) and one recorded check, built from a Results."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timezone
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from runner.results import Case, Host, Results, Stats

# The format of one record as a JSON line (the git branch's files); bump on a breaking change.
RECORD_FORMAT = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Commit(_Model):
    """The commit of the user's repository a check measured, and the state of its work tree."""

    sha: str
    dirty: bool = False  # the work tree had changes: the numbers are not the commit's alone
    parent: str | None = None  # the first parent; None for a root commit
    branch: str | None = None  # None: a detached head with no branch named by CI
    committed: str  # ISO 8601, UTC
    subject: str = ""

    @property
    def short(self) -> str:
        return self.sha[:10] + ("+" if self.dirty else "")


class Environment(_Model):
    """What a case was measured with and on; points of different fingerprints never mix."""

    memsla: str
    backend: str
    limit: int | None
    python: str  # the host's Python
    build_python: str | None = None  # the scenario's `python:` setting, where it names one
    requirements: list[str] = Field(default_factory=list)  # the scenario's requirements, as given
    image: str | None = None  # docker: the image the case ran in
    image_digest: str | None = None
    kernel: str  # the kernel series (6.8), not every patch release
    cgroup_version: int | None
    host_kind: str  # OS, CPUs, memory (and engine) of the host: its kind, not its name

    @property
    def fingerprint(self) -> str:
        """The first 12 hex digits of the sha256 of the canonical JSON of every field."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True,
                               separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def differences(self, other: Environment) -> list[str]:
        """The fields that differ, in words: ``limit 268435456 -> 536870912``."""
        mine, theirs = self.model_dump(), other.model_dump()
        return [f"{key} {mine[key]} -> {theirs[key]}" for key in mine if mine[key] != theirs[key]]


class Point(_Model):
    """One metric of one case in one check: the raw value of every repeat."""

    check_id: str
    commit: Commit | None  # None: the check ran outside a git repository
    recorded: str  # ISO 8601, UTC: when the check was recorded
    scenario: str
    case: str  # the case label, ``pelican[pages=500]``
    params: dict[str, int | str] = Field(default_factory=dict)
    metric: str
    values: list[float]
    environment: str  # the environment's fingerprint

    @property
    def median(self) -> float:
        return Stats.of(self.values).median


class CaseRecord(_Model):
    """One case of a recorded check: its environment and each metric's raw values."""

    scenario: str
    case: str
    params: dict[str, int | str] = Field(default_factory=dict)
    environment: Environment
    metrics: dict[str, list[float]] = Field(default_factory=dict)


class CheckRecord(_Model):
    """One recorded check: everything the store keeps of it, and one file of the git branch."""

    format: int = RECORD_FORMAT
    id: str
    commit: Commit | None
    recorded: str  # ISO 8601, UTC
    created: str  # when the check itself started (Results.created)
    status: Literal["running", "pass", "fail", "error", "interrupted", "measured"]
    memsla: str
    sla_file: str
    host: Host
    cases: list[CaseRecord] = Field(default_factory=list)

    def points(self) -> list[Point]:
        return [Point(check_id=self.id, commit=self.commit, recorded=self.recorded,
                      scenario=case.scenario, case=case.case, params=case.params,
                      metric=metric, values=values, environment=case.environment.fingerprint)
                for case in self.cases for metric, values in case.metrics.items() if values]

    def to_results(self) -> Results:
        """A Results holding this check's cases and raw values (no runs, no verdicts): what the
        reports that read only metrics (the benchmark-tracker JSON) need."""
        cases = [Case(scenario=c.scenario, params=c.params, backend=c.environment.backend,
                      limit=c.environment.limit,
                      metrics={m: Stats.of(v) for m, v in c.metrics.items() if v})
                 for c in self.cases]
        status = self.status if self.status != "measured" else "pass"
        return Results(memsla_version=self.memsla, created=self.created, sla_file=self.sla_file,
                       host=self.host, cases=cases, status=status)


class Requirements(_Model):
    """What the SLA file says a scenario runs with (the Results do not keep it)."""

    python: str | None = None
    requirements: list[str] = Field(default_factory=list)
    image: str | None = None


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _filled(template: str | None, case: Case) -> str | None:
    """A version sweep's ``python:`` or requirement at the case's matrix values."""
    if template is None:
        return None
    try:
        return template.format_map({k: str(v) for k, v in case.params.items()})
    except (KeyError, ValueError, IndexError, AttributeError):  # not a template of this case
        return template


def environment_of(results: Results, case: Case,
                   settings: Requirements | None = None) -> Environment:
    from runner.merge import host_kind

    kind = host_kind(results.host)
    host = f"{kind['os']}, {kind['cpus']} CPUs, {kind['memory_gib']} GiB"
    if kind["docker"]:
        host += f", docker {kind['docker']}"
    settings = settings or Requirements()
    return Environment(
        memsla=results.memsla_version, backend=case.backend, limit=case.limit,
        python=results.host.python, build_python=_filled(settings.python, case),
        requirements=[_filled(text, case) or text for text in settings.requirements],
        image=_filled(settings.image, case) if case.backend == "docker" else None,
        kernel=str(kind["kernel"]), cgroup_version=results.host.cgroup_version, host_kind=host)


def check_record(results: Results, commit: Commit | None,
                 settings: dict[str, Requirements] | None = None,
                 check_id: str | None = None) -> CheckRecord:
    """The record of a judged check: every case's every metric with values, all repeats."""
    cases = [CaseRecord(scenario=case.scenario, case=case.label, params=dict(case.params),
                        environment=environment_of(results, case,
                                                   (settings or {}).get(case.scenario)),
                        metrics={name: [float(v) for v in stats.values]
                                 for name, stats in case.metrics.items() if stats.values})
             for case in results.cases]
    return CheckRecord(id=check_id or uuid.uuid4().hex, commit=commit, recorded=now_iso(),
                       created=results.created, status=results.status,
                       memsla=results.memsla_version, sla_file=results.sla_file,
                       host=results.host, cases=cases)
