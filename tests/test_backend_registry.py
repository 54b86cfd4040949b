"""The backend registry is the one list of backends: the SLA file's values, the CLI's choices and
the docs' tables are exactly its own; and ``auto``'s policy, read from it, picks as documented."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import get_args

import pytest

from runner.backends import registry
from runner.cli import build_parser
from runner.slafile.model import BUILTIN_SETTINGS, BackendName, Scenario

ROOT = Path(__file__).resolve().parents[1]


def test_the_sla_file_accepts_exactly_the_registry_s_backends() -> None:
    assert sorted(get_args(BackendName)) == sorted(registry.choices())
    assert BUILTIN_SETTINGS.backend == registry.AUTO


def _backend_options(parser: argparse.ArgumentParser, path: str = "runner"
                     ) -> list[tuple[str, argparse.Action]]:
    """Every ``--backend`` option of the CLI, in every subcommand at any depth."""
    found = [(path, a) for a in parser._actions if "--backend" in a.option_strings]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in dict(action.choices).items():
                found += _backend_options(sub, f"{path} {name}")
    return found


def test_every_backend_option_of_the_cli_offers_exactly_the_registry_s_backends() -> None:
    options = _backend_options(build_parser())
    assert {"runner check", "runner capacity", "runner history backfill",
            "runner history bisect"} <= {path for path, _ in options}
    for path, option in options:
        assert option.choices is not None, path
        assert list(option.choices) == list(registry.choices()), path


def test_the_architecture_table_is_the_registry() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("## The backends: one registry", 1)[1].split("\n## ", 1)[0]
    rows = [[cell.strip() for cell in line.strip("|").split("|")]
            for line in section.splitlines() if re.match(r"\| `\w+` \|", line)]
    assert [row[0].strip("`") for row in rows] == list(registry.names())
    for (_, where, cannot), spec in zip(rows, registry.BACKENDS, strict=True):
        assert where == spec.where
        assert set(re.findall(r"`(\w+)`", cannot)) == set(spec.cannot_honour)


def test_the_readme_names_exactly_the_registry_s_backends() -> None:
    found = re.search(r"^\s*backend: auto\s+# (.+)$", (ROOT / "README.md").read_text(), re.M)
    assert found is not None
    assert sorted(found[1].split(" | ")) == sorted(registry.choices())


def test_every_restricted_setting_is_a_setting_of_the_sla_file() -> None:
    assert set(Scenario.model_fields) >= registry.RESTRICTED


@pytest.mark.parametrize(("explicit", "picked", "because"), [
    # requirements and a project no longer keep auto on the host: the container comes first
    # (where its image cannot be built, BackendPool falls back and says why)
    (set(), ["docker", "cgroup", "process"], ""),
    ({"image"}, ["docker"], "the scenario sets image, which only Docker honours"),
    ({"dockerfile"}, ["docker"], "only Docker honours"),
    ({"python"}, ["cgroup", "process"], "which only a host backend honours"),
])
def test_auto_may_pick_only_backends_that_honour_every_setting(
        explicit: set[str], picked: list[str], because: str) -> None:
    among, why = registry.candidates(explicit)
    assert [spec.name for spec in among] == picked
    assert because in why


def test_settings_no_backend_honours_together_are_refused() -> None:
    with pytest.raises(ValueError, match="image need Docker and python need a host backend: "
                                         "no backend honours both"):
        registry.candidates({"image", "python"})


def test_a_named_backend_says_which_settings_it_cannot_honour() -> None:
    assert registry.unhonoured("docker", {"python", "image"}) == [
        ("python", f"the docker backend {registry.spec_of('docker').cannot_honour['python']}")]
    assert [key for key, _ in registry.unhonoured("process", {"docker", "image"})] == [
        "image", "docker"]
    assert registry.unhonoured("cgroup", set()) == []
