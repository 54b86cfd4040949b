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


def test_the_sla_workflow_keeps_a_history_on_main_and_compares_pull_requests() -> None:
    workflow = _load(REPO / ".github/workflows/sla.yml")
    store = workflow["env"]["HISTORY"]
    assert store == ".memsla/history.db"
    sla, history = workflow["jobs"]["sla"], workflow["jobs"]["history"]
    # the job that runs the measured code never gets to write to the repository
    assert sla["permissions"]["contents"] == "read"
    assert history["permissions"] == {"contents": "write"}
    assert history["needs"] == "sla"
    for words in ("github.event_name == 'push'", "github.ref == 'refs/heads/main'",
                  "needs.sla.outputs.recorded == 'true'", "!cancelled()"):
        assert words in history["if"]
    names = [s.get("name") for s in sla["steps"]]
    pull = sla["steps"][names.index("Pull the history")]
    assert names.index("Pull the history") < names.index("Check the SLAs")
    assert pull["run"] == 'runner history pull --history "$HISTORY"'
    check = sla["steps"][names.index("Check the SLAs")]["run"]
    assert 'history=(--history "$HISTORY" --history-base "$BASE_REF")' in check
    assert 'history=(--history "$HISTORY")' in check and '"${history[@]}"' in check
    assert "--github" in check and "--markdown comment.md" in check  # summary and comment
    assert sla["steps"][names.index("Check the SLAs")]["env"]["BASE_REF"] == (
        "${{ github.base_ref }}")
    upload = next(s for s in sla["steps"] if s.get("name") == "Upload the history store")
    assert upload["with"]["path"] == "head/.memsla/" and upload["with"]["include-hidden-files"]
    runs = [s.get("run", "") for s in history["steps"]]
    detect = next(i for i, r in enumerate(runs) if r.startswith("runner history detect"))
    push = next(i for i, r in enumerate(runs) if r.startswith("runner history push"))
    assert detect < push and history["steps"][detect]["continue-on-error"] is True
    assert runs[detect] == 'runner history detect --history "$HISTORY"'
    assert any(r.startswith("runner history html") for r in runs)
    download = next(s for s in history["steps"] if "download-artifact" in s.get("uses", ""))
    assert download["with"]["name"] == upload["with"]["name"]


def test_the_release_grants_what_the_reused_sla_workflow_asks_for() -> None:
    release, sla = _load(REPO / ".github/workflows/release.yml"), _load(
        REPO / ".github/workflows/sla.yml")
    granted = release["jobs"]["sla"]["permissions"]
    order = {"none": 0, "read": 1, "write": 2}
    for job in sla["jobs"].values():
        for scope, level in job.get("permissions", {}).items():
            assert order[granted.get(scope, "none")] >= order[level], (scope, level)


def test_the_action_pulls_records_detects_and_pushes_the_history() -> None:
    action = _load(ACTION)
    assert {"history", "history-branch", "history-push"} <= set(action["inputs"])
    steps = action["runs"]["steps"]
    names = [s.get("name") for s in steps]
    order = [names.index(n) for n in ("Pull the history", "Check the SLAs",
                                      "Detect level shifts in the history", "Push the history",
                                      "Gate on the SLAs")]
    assert order == sorted(order)
    check = steps[names.index("Check the SLAs")]
    assert '--history-base "$BASE_REF"' in check["run"] and '"${history[@]}"' in check["run"]
    assert "${{" not in check["run"]
    for name in ("Pull the history", "Detect level shifts in the history", "Push the history"):
        step = steps[names.index(name)]
        assert "${{" not in step["run"] and "--history \"$HISTORY\"" in step["run"]
    push = steps[names.index("Push the history")]
    assert push["if"] == "steps.check.outputs.push-history == 'true'"
