"""The HTML report: self-contained, complete, and rendered by a real headless browser."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest

from runner.cli import main
from runner.reports import html as html_report
from runner.reports.common import ReportError
from runner.reports.interface import ReportFormat, render_text
from runner.results import Results
from tests.conftest import require
from tests.reports.conftest import DATA

LOCAL = re.compile(r"^(#|data:|$)")


class _Collector(HTMLParser):
    """Every address the page could load: src/href attributes, url(...) in styles, and tags
    that fetch by their nature."""

    def __init__(self) -> None:
        super().__init__()
        self.addresses: list[str] = []
        self.ids: list[str] = []
        self.tags: Counter[str] = Counter()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "srcset", "action", "poster", "data"):
                self.addresses.append(value or "")
            if name == "style" and value:
                self.addresses += re.findall(r"url\(\s*['\"]?([^'\")]*)", value)
            if name == "id" and value:
                self.ids.append(value)

    def handle_data(self, data: str) -> None:
        self.addresses += re.findall(r"url\(\s*['\"]?([^'\")]*)", data)
        self.addresses += re.findall(r"@import\s+['\"]([^'\"]+)", data)


def _collect(text: str) -> _Collector:
    collector = _Collector()
    collector.feed(text)
    return collector


@pytest.fixture(scope="module")
def page() -> str:
    return render_text(ReportFormat.HTML, Results.read(DATA / "results.json"),
                       baseline=Results.read(DATA / "base.json"))


def test_the_page_loads_nothing_from_elsewhere(page: str, awkward: Results) -> None:
    for text in (page, render_text(ReportFormat.HTML, awkward)):
        collector = _collect(text)
        external = [a for a in collector.addresses if not LOCAL.match(a.strip())]
        assert external == []
        assert not {"script", "link", "img", "iframe", "object", "embed"} & set(collector.tags)
    assert "http://" not in page and "https://" not in page


def test_the_page_has_every_part(page: str) -> None:
    collector = _collect(page)
    assert len(collector.ids) == len(set(collector.ids))  # the inline SVGs' ids do not clash
    assert collector.tags["svg"] == 5  # the scaling chart and one timeline per case
    for heading in ("SLA verdicts", "Measured", "Scenario site", "Scaling", "site[pages=400]",
                    "Scenario greedy", "Phases", "Top allocation sites"):
        assert f">{heading}" in page
    assert "OOM kill (1), estimated time" in page
    assert "fit cgroup peak: 16" in page  # the linear fit read from the scaling analysis
    assert "SLA peak &lt; 200 MiB" in page and "limit 96 MiB" in page
    assert re.search(r'class="site" title="[^"]*/build\.py">[^<]*build\.py:\d+<', page)
    broken = page[page.index('<ul class="broken">'):page.index("</ul>")]
    assert broken.count("<li") == 3 and "phase(render).python_peak &lt; 60MiB" in broken
    assert "<th class=\"num\">baseline</th>" in page and "+25.4%" in page


def test_awkward_results_are_escaped(awkward: Results) -> None:
    text = render_text(ReportFormat.HTML, awkward)
    assert "&lt;boom&gt; &amp; &#x27;quotes&#x27;" in text
    assert "<boom>" not in text
    assert "x/&lt;y&gt;.py:3" in text  # a site-packages path, shortened
    assert "fit cgroup peak [flavour=a,b]" in text


def test_without_matplotlib_the_error_says_what_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        recorded: Results) -> None:
    real = html_report.importlib.util.find_spec
    monkeypatch.setattr(html_report.importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
    with pytest.raises(ReportError, match=r"pip install 'memsla\[html\]'"):
        render_text(ReportFormat.HTML, recorded)
    out = tmp_path / "report.html"
    assert main(["report", str(DATA / "results.json"), "--html", str(out),
                 "--junit", str(tmp_path / "junit.xml")]) == 3
    assert "matplotlib" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "junit.xml").exists()  # checked before writing


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--enable-logging=stderr",
                  "--v=1"]
REQUEST = re.compile(r"NotifyBeforeURLRequest: (\S+)")


def _chromium() -> str:
    """Debian's chromium; GitHub's Ubuntu runners come with Google Chrome, which takes the same
    flags. MEMSLA_CHROMIUM names another binary."""
    names = [os.environ.get("MEMSLA_CHROMIUM", ""), "chromium", "chromium-browser",
             "google-chrome", "google-chrome-stable"]
    found = next((path for name in names if name and (path := shutil.which(name))), None)
    if found is None:
        reason = "no chromium here: apt-get install -y chromium"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set)")
        require("chromium", reason)
    assert found is not None
    return found


def _browse(browser: str, page: Path, screenshot: Path) -> list[str]:
    """Render ``page`` headless; returns the addresses the browser requested."""
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
             f"--screenshot={screenshot}", "--window-size=1200,2000", page.as_uri()],
            capture_output=True, text=True, timeout=120, check=False)
    assert screenshot.exists(), proc.stderr[-2000:]
    return REQUEST.findall(proc.stderr)


def _host(address: str) -> str:
    match = re.match(r"^[a-z]+://([^/:]+)", address)
    return match.group(1) if match else address


def test_a_real_browser_renders_it_without_fetching_anything(tmp_path: Path, page: str) -> None:
    from PIL import Image

    browser = _chromium()
    # The browser's own services (updates, time, accounts) make requests of their own: a blank
    # page shows which. A page that fetches must show up: the control proves the log is read.
    blank, bait, report = tmp_path / "blank.html", tmp_path / "bait.html", tmp_path / "r.html"
    blank.write_text("<!DOCTYPE html><title>blank</title>")
    bait.write_text('<!DOCTYPE html><img src="https://memsla.invalid/x.png">')
    report.write_text(page)
    noise = {_host(a) for a in _browse(browser, blank, tmp_path / "blank.png")}
    noise |= {"update.googleapis.com", "clients2.google.com", "accounts.google.com"}
    assert "memsla.invalid" in {_host(a) for a in _browse(browser, bait, tmp_path / "bait.png")}
    requested = _browse(browser, report, tmp_path / "report.png")
    fetched = [a for a in requested
               if not a.startswith(("file:", "data:", "chrome:")) and _host(a) not in noise]
    assert fetched == []
    image = Image.open(tmp_path / "report.png").convert("RGB")
    assert image.size == (1200, 2000)
    colours = image.getcolors(maxcolors=1 << 20) or []
    white = sum(n for n, rgb in colours if min(rgb) >= 250)
    assert len(colours) > 200  # text, tables, badge and chart lines, antialiased
    assert white < 0.95 * image.size[0] * image.size[1]
    red = sum(n for n, (r, g, b) in colours if r > 150 and g < 80 and b < 80)
    assert red > 200  # the FAIL badge and the broken rules are drawn in red
