"""Regenerate the excerpts in docs/outputs.md from a real run of a tiny SLA file.

    python3 docs/generate_excerpts.py [--save-results DIR] [--keep DIR]

Runs ``runner check`` twice on a small Python "build" in a local memory cgroup: once as the
baseline (200 KiB held per page) and once as the change under review (256 KiB per page, plus a
scenario that is OOM-killed), with every output flag. Each excerpt replaces the text between
``<!-- BEGIN excerpt NAME -->`` and ``<!-- END excerpt NAME -->`` in docs/outputs.md.
``--save-results`` also copies both results files (the test suite's recorded data lives in
tests/reports/data/ and was made this way). Needs a writable memory cgroup (``runner doctor``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

DOCS = Path(__file__).resolve().parent
OUTPUTS_MD = DOCS / "outputs.md"

BUILD_PY = '''\
"""A tiny build: load, render (PAGE_KIB held per page), write."""
import os
import sys
import time

import runner

pages = int(sys.argv[1])
per_page = int(os.environ.get("PAGE_KIB", "256")) * 1024
with runner.phase("load"):
    source = bytearray(b"\\x01") * (8 * 1024 * 1024)
    time.sleep(0.1)
with runner.phase("render"):
    rendered = [bytearray(b"\\x01") * per_page for _ in range(pages)]
    time.sleep(0.2)
with runner.phase("write"):
    del source
    time.sleep(0.1)
'''

GREEDY_PY = '''\
"""Grows past its limit in steps, so the OOM killer ends it."""
import time

import runner

held = []
with runner.phase("setup"):
    held.append(bytearray(b"\\x01") * (4 * 1024 * 1024))
    time.sleep(0.1)
with runner.phase("grow"):
    for _ in range(40):
        held.append(bytearray(b"\\x01") * (4 * 1024 * 1024))
        time.sleep(0.02)
'''

SLA_YAML = """\
version: 1
defaults:
  backend: cgroup
  limit: 256MiB
  repeats: 2
scenarios:
  site:
    command: [python3, build.py, "{pages}"]
    matrix:
      pages: [100, 200, 400]
    slas:
      - peak < 200MiB
      - phase(render).python_peak < 60MiB
      - duration < 30s
      - per_page(peak) < 300KiB
  greedy:
    command: [python3, greedy.py]
    limit: 96MiB
    repeats: 1
    tracker: none
"""


def runner_cli(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    proc = subprocess.run([sys.executable, "-m", "runner", *args], cwd=cwd, text=True,
                          capture_output=True, env={**clean, **env, "COLUMNS": "120"},
                          check=False)
    if proc.returncode not in (0, 1):
        sys.exit(f"runner {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def measure(work: Path) -> dict[str, str]:
    (work / "build.py").write_text(BUILD_PY)
    (work / "greedy.py").write_text(GREEDY_PY)
    (work / "sla.yaml").write_text(SLA_YAML)
    runner_cli(["check", "sla.yaml", "--json", "base.json", "--only", "site"], work,
               {"PAGE_KIB": "200"})
    head = runner_cli(
        ["check", "sla.yaml", "--json", "results.json", "--baseline", "base.json",
         "--junit", "junit.xml", "--markdown", "comment.md", "--bench-json", "bench.json",
         "--html", "report.html", "--github"],
        work, {"PAGE_KIB": "256", "GITHUB_STEP_SUMMARY": str(work / "summary.md")})
    runner_cli(["report", "results.json", "--bench-json", "bencher.json", "--bench-format",
                "bencher"], work, {})
    return {"stdout": head.stdout}


def _junit_excerpt(path: Path) -> str:
    root = ET.parse(path).getroot()
    suite = next(s for s in root if s.find("testcase/failure") is not None)
    for testcase in suite.findall("testcase"):
        if testcase.find("failure") is None and testcase.find("error") is None:
            suite.remove(testcase)
    for stream in ("system-out", "system-err"):
        element = suite.find(stream)
        if element is not None and not (element.text or "").strip():
            suite.remove(element)
    ET.indent(suite, level=1)
    head = ET.tostring(root, encoding="unicode").split(">", 1)[0] + ">"
    return f"{head}\n  {ET.tostring(suite, encoding='unicode').strip()}\n  ...\n</testsuites>"


def _bench_excerpt(path: Path, count: int) -> str:
    entries = json.loads(path.read_text())
    return json.dumps(entries[:count], indent=1, ensure_ascii=False)[:-1] + " ...\n]"


def _bencher_excerpt(path: Path) -> str:
    document = json.loads(path.read_text())
    name = next(iter(document))
    measures = dict(list(document[name].items())[:3])
    text = json.dumps({name: measures}, indent=1)
    return text[: -len("\n }\n}")] + ",\n  ...\n },\n ...\n}"


def _html_excerpt(path: Path) -> str:
    text = path.read_text()
    sections = [re.sub(r"<[^>]+>", "", s) for s in re.findall(r"<h[23][^>]*>(.*?)</h[23]>", text)]
    header = re.search(r"<header>.*?</ul>", text, re.S)
    shown = header.group(0) if header else ""
    return (f"<!-- report.html: {len(text.encode()) // 1024} KiB in one file, "
            f"{text.count('<svg')} inline SVG charts; sections: {' | '.join(sections)} -->\n"
            + shown.replace("<ul", "\n<ul").replace("<li", "\n  <li").replace("</ul>", "\n</ul>")
            + "\n...")


def excerpts(work: Path, run: dict[str, str]) -> dict[str, str]:
    commands = [line for line in run["stdout"].splitlines() if line.startswith("::")]
    return {
        "junit": _junit_excerpt(work / "junit.xml"),
        "github-commands": "\n".join(commands),
        "github-summary": (work / "summary.md").read_text().strip(),
        "markdown": (work / "comment.md").read_text().strip(),
        "bench-custom": _bench_excerpt(work / "bench.json", 2),
        "bencher": _bencher_excerpt(work / "bencher.json"),
        "html": _html_excerpt(work / "report.html"),
    }


def paste(text: str, pieces: dict[str, str]) -> str:
    for name, body in pieces.items():
        pattern = re.compile(rf"(<!-- BEGIN excerpt {re.escape(name)} -->\n)(.*?)"
                             rf"(<!-- END excerpt {re.escape(name)} -->)", re.S)
        if not pattern.search(text):
            sys.exit(f"{OUTPUTS_MD}: no markers for the excerpt {name!r}")
        fence = "````" if "```" in body else "```"
        lang = {"junit": "xml", "bench-custom": "json", "bencher": "json",
                "markdown": "markdown", "github-summary": "markdown", "html": "html"}.get(
                    name, "text")
        block = f"{fence}{lang}\n{body}\n{fence}\n"
        text = pattern.sub(lambda m, b=block: m.group(1) + b + m.group(3), text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--save-results", type=Path, metavar="DIR",
                        help="copy results.json and base.json here")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="run in DIR and keep it")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="memsla-excerpts-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        run = measure(work)
        OUTPUTS_MD.write_text(paste(OUTPUTS_MD.read_text(), excerpts(work, run)))
        if args.save_results:
            args.save_results.mkdir(parents=True, exist_ok=True)
            for name in ("results.json", "base.json"):
                shutil.copy(work / name, args.save_results / name)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"updated {OUTPUTS_MD}")


if __name__ == "__main__":
    main()
