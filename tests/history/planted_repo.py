"""A planted truth for backfill and bisect: a small git repository of a build tool installable
by pip (``plantedbuild``, a console script), whose build grows its resident memory to a planted
size read from a constant in its source (``PEAK_KIB``: what the build holds, its interpreter
included, so that the build's peak is the planted size and a 15% raise of the constant is a 15%
step of the measured ``rss_peak``). Twelve commits: the seventh raises the planted size by 15%,
the others change nothing that matters (docs, comments, a refactor)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

PLANTED_KIB = 96 * 1024  # commits 1 to 6
RAISED_KIB = round(PLANTED_KIB * 1.15)  # commit 7 on: +15%
RAISED_AT = 7  # the commit (from 1) that raises it
COMMITS = 12

PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "plantedbuild"
version = "0.1"

[project.scripts]
plantedbuild = "plantedbuild:main"

[tool.setuptools]
packages = ["plantedbuild"]
"""

# {comment} and {helper} let the docs-and-refactor commits change the source without changing
# what it does; {kib} is the planted size.
TOOL = '''\
"""plantedbuild: a build that holds a planted amount of memory."""
import sys
import time

{comment}PEAK_KIB = {kib}  # the whole build's resident memory at its peak


def {helper}():
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
{fail}    missing = max(PEAK_KIB - {helper}(), 0)
    block = bytearray(b"\\x01") * (missing * 1024)  # touched: every page is resident
    time.sleep(0.1)
    del block
    return 0
'''

SLA = """\
version: 1
defaults: {{backend: cgroup, limit: 512MiB, repeats: 3, warmup: 0, tracker: none}}
scenarios:
  build:
    project: .
    command: [plantedbuild, "{{output}}"]
slas: [peak < 1GiB, rss_peak < 1GiB]
"""


@dataclass
class PlantedRepo:
    path: Path
    shas: list[str]  # commit 1 first

    @property
    def raised(self) -> str:
        return self.shas[RAISED_AT - 1]

    def git(self, *args: str) -> str:
        return git(self.path, *args)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def _write(repo: Path, kib: int, comment: str = "", helper: str = "resident_kib",
           readme: str = "plantedbuild\n", fail: bool = False) -> None:
    (repo / "plantedbuild").mkdir(parents=True, exist_ok=True)
    (repo / "pyproject.toml").write_text(PYPROJECT)
    (repo / "plantedbuild" / "__init__.py").write_text(
        TOOL.format(kib=kib, comment=comment, helper=helper,
                    fail='    sys.exit("plantedbuild: the build failed")\n' if fail else ""))
    (repo / "README.md").write_text(readme)


def commit(repo: Path, message: str, when: int) -> str:
    git(repo, "add", "-A")
    stamp = f"@{1_700_000_000 + when * 3600} +0000"
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "-m", message], check=True,
                   env={"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp,
                        "GIT_AUTHOR_NAME": "planter", "GIT_AUTHOR_EMAIL": "p@example.org",
                        "GIT_COMMITTER_NAME": "planter", "GIT_COMMITTER_EMAIL": "p@example.org",
                        "PATH": "/usr/bin:/bin", "HOME": str(repo)})
    return git(repo, "rev-parse", "HEAD")


def make_planted_repo(repo: Path) -> PlantedRepo:
    """The twelve commits, on branch main; sla.yaml committed in the first and unchanged."""
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "sla.yaml").write_text(SLA.format())
    readme = "plantedbuild\n"
    comment, helper, kib = "", "resident_kib", PLANTED_KIB
    steps = [
        "plantedbuild: a build holding its planted size",
        "README: what the tool is",  # 2
        "A comment on the planted size",  # 3
        "Refactor: the helper's name",  # 4
        "README: how to run it",  # 5
        "Another comment",  # 6
        "Hold 15% more",  # 7: the planted raise
        "README: the raise",  # 8
        "Refactor: the helper's name again",  # 9
        "A comment on the raise",  # 10
        "README: a last word",  # 11
        "Docs: nothing that matters",  # 12
    ]
    shas = []
    for number, message in enumerate(steps, start=1):
        if number in (2, 5, 8, 11, 12):
            readme += f"line {number}\n"
        if number in (3, 6, 10):
            comment += f"# a comment of commit {number}\n"
        if number == 4:
            helper = "rss_kib"
        if number == 9:
            helper = "resident_now_kib"
        if number == RAISED_AT:
            kib = RAISED_KIB
        _write(repo, kib, comment, helper, readme)
        shas.append(commit(repo, message, number))
    assert len(shas) == COMMITS
    return PlantedRepo(repo, shas)


def add_failing_commits(planted: PlantedRepo) -> tuple[str, str]:
    """Two more commits: one whose build fails (the tool exits 1), one that repairs it."""
    readme = (planted.path / "README.md").read_text()
    _write(planted.path, RAISED_KIB, "", "resident_kib", readme, fail=True)
    broken = commit(planted.path, "Break the build", 20)
    _write(planted.path, RAISED_KIB, "", "resident_kib", readme)
    repaired = commit(planted.path, "Repair the build", 21)
    return broken, repaired
