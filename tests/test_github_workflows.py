"""The GitHub workflows and the composite action: valid for GitHub, and their shell parses."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
ACTION = REPO / "action.yml"


def _check_jsonschema(schema: str, files: list[Path]) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("check-jsonschema")
    argv = [exe] if exe else [sys.executable, "-m", "check_jsonschema"]
    return subprocess.run([*argv, "--builtin-schema", schema, *map(str, files)],
                          capture_output=True, text=True, timeout=120, check=False)


def test_the_expected_workflows_exist() -> None:
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "sla.yml", "release.yml"}


def test_workflows_match_githubs_schema() -> None:
    proc = _check_jsonschema("vendor.github-workflows", WORKFLOWS)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_action_matches_githubs_schema() -> None:
    proc = _check_jsonschema("vendor.github-actions", [ACTION])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _load(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def _steps(path: Path) -> list[dict[str, Any]]:
    data = _load(path)
    if "runs" in data:
        return list(data["runs"]["steps"])
    return [step for job in data["jobs"].values() for step in job.get("steps", [])]


@pytest.mark.parametrize("path", [*WORKFLOWS, ACTION], ids=lambda p: p.name)
def test_every_run_script_is_valid_bash(path: Path) -> None:
    for step in _steps(path):
        if "run" in step:
            proc = subprocess.run(["bash", "-n"], input=step["run"], capture_output=True,
                                  text=True, check=False)
            assert proc.returncode == 0, f"{step.get('name')}: {proc.stderr}"


def test_release_publishes_only_after_the_sla_job() -> None:
    # PyYAML reads the key 'on' as True.
    release, sla = _load(REPO / ".github/workflows/release.yml"), _load(
        REPO / ".github/workflows/sla.yml")
    assert release[True]["push"]["tags"] == ["v*"]
    assert release["jobs"]["sla"]["uses"] == "./.github/workflows/sla.yml"
    assert release["jobs"]["publish"]["needs"] == "sla"
    assert "workflow_call" in sla[True]


def test_the_sla_workflow_reports_everywhere_and_updates_one_comment() -> None:
    text = (REPO / ".github/workflows/sla.yml").read_text()
    for flag in ("--backend docker", "--json results.json", "--html report.html",
                 "--junit junit.xml", "--github", "--markdown comment.md", "--baseline"):
        assert flag in text
    assert "<!-- memsla-report -->" in text and "updateComment" in text


def test_the_action_has_its_inputs_and_runs_check_with_github() -> None:
    action = _load(ACTION)
    assert set(action["inputs"]) >= {"sla-file", "backend", "baseline", "args"}
    assert action["runs"]["using"] == "composite"
    check = next(s for s in action["runs"]["steps"] if s.get("id") == "check")
    assert "runner check" in check["run"] and "--github" in check["run"]
    # inputs reach the script through the environment, never pasted into it
    assert "${{" not in check["run"]


def test_the_shards_workflow_measures_a_matrix_and_gates_after_merging() -> None:
    workflow = _load(REPO / ".github/workflows/sla-shards.yml")
    shard, merge = workflow["jobs"]["shard"], workflow["jobs"]["merge"]
    count = int(workflow["env"]["SHARDS"])
    assert shard["strategy"]["matrix"]["shard"] == list(range(1, count + 1))
    assert shard["strategy"]["fail-fast"] is False
    measure = next(s for s in shard["steps"] if s.get("name") == "Measure this shard")
    assert '--shard "$SHARD/$SHARDS"' in measure["run"] and "--shard-costs" in measure["run"]
    upload = next(s for s in shard["steps"] if "upload-artifact" in s.get("uses", ""))
    assert upload["with"]["name"] == "memsla-shard-${{ matrix.shard }}"
    assert merge["needs"] == "shard" and merge["if"] == "always()"
    download = next(s for s in merge["steps"] if "download-artifact" in s.get("uses", ""))
    assert download["with"]["pattern"] == "memsla-shard-*"
    merged = next(s for s in merge["steps"] if s.get("id") == "merge")
    for flag in ("runner merge shards/shard-*.json", "--json results.json", "--junit",
                 "--github", "--markdown", "--html"):
        assert flag in merged["run"]
    assert merge["steps"][-1]["name"] == "Gate on the SLAs"


def test_the_action_documents_shards() -> None:
    action = _load(ACTION)
    assert {"shard", "shard-costs"} <= set(action["inputs"])
    check = next(s for s in action["runs"]["steps"] if s.get("id") == "check")
    assert "--shard" in check["run"] and "${{" not in check["run"]
    assert "runner merge" in action["inputs"]["shard"]["description"]
