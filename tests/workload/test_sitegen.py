"""Tests for the synthetic site generator in runner.workload.sitegen."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from runner.workload.sitegen import Flavour, SiteInfo, generate_site

FLAVOURS: tuple[Flavour, ...] = ("pelican", "hugo")
PELICAN_KEYS = ["Title", "Date", "Category", "Tags", "Slug"]
PELICAN_LINK = re.compile(r"\]\(\{filename\}/([^/)]+)/([^/)]+)\.md\)")
HUGO_LINK = re.compile(r"\]\(/([^/)]+)/([^/)]+)/\)")


def tree_bytes(root: Path) -> dict[str, bytes]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in files}


def page_files(info: SiteInfo) -> list[Path]:
    return sorted(p for p in info.content_dir.rglob("*.md") if p.name != "_index.md")


def pelican_header(text: str) -> dict[str, str]:
    header, sep, _ = text.partition("\n\n")
    assert sep, "no blank line after the Pelican metadata header"
    fields: dict[str, str] = {}
    for line in header.splitlines():
        key, colon, value = line.partition(": ")
        assert colon, f"not a 'Key: value' line: {line!r}"
        fields[key] = value
    return fields


def hugo_front_matter(text: str) -> dict[str, object]:
    assert text.startswith("---\n")
    block, sep, _ = text[4:].partition("\n---\n")
    assert sep, "front matter not closed by ---"
    data = yaml.safe_load(block)
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_same_seed_gives_byte_identical_tree(tmp_path: Path, flavour: Flavour) -> None:
    a = generate_site(tmp_path / "a", pages=40, flavour=flavour, seed=7, sections=4)
    b = generate_site(tmp_path / "b", pages=40, flavour=flavour, seed=7, sections=4)
    assert tree_bytes(a.root) == tree_bytes(b.root)
    assert a.content_bytes == b.content_bytes


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_different_seed_gives_different_tree(tmp_path: Path, flavour: Flavour) -> None:
    a = generate_site(tmp_path / "a", pages=40, flavour=flavour, seed=1)
    b = generate_site(tmp_path / "b", pages=40, flavour=flavour, seed=2)
    assert tree_bytes(a.root) != tree_bytes(b.root)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_page_count_and_section_spread(tmp_path: Path, flavour: Flavour) -> None:
    info = generate_site(tmp_path / "site", pages=53, flavour=flavour, sections=5)
    pages = page_files(info)
    assert info.pages == len(pages) == 53
    per_section = Counter(p.parent.name for p in pages)
    assert len(per_section) == info.sections == 5
    assert set(per_section.values()) == {10, 11}
    assert all(p.parent.parent == info.content_dir for p in pages)
    assert info.content_dir == info.root / "content"


def test_hugo_has_one_section_index_per_section(tmp_path: Path) -> None:
    info = generate_site(tmp_path / "site", pages=12, flavour="hugo", sections=3)
    indexes = sorted(info.content_dir.glob("*/_index.md"))
    assert len(indexes) == 3
    for index in indexes:
        assert isinstance(hugo_front_matter(index.read_text())["title"], str)


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("page_bytes", [600, 3000, 12000])
def test_mean_page_size_close_to_target(tmp_path: Path, flavour: Flavour, page_bytes: int) -> None:
    info = generate_site(tmp_path / "site", pages=200, flavour=flavour, page_bytes=page_bytes)
    sizes = [p.stat().st_size for p in page_files(info)]
    assert info.content_bytes == sum(sizes)
    assert abs(sum(sizes) / len(sizes) - page_bytes) <= 0.05 * page_bytes


def test_pelican_metadata_header(tmp_path: Path) -> None:
    info = generate_site(tmp_path / "site", pages=30, flavour="pelican")
    for path in page_files(info):
        fields = pelican_header(path.read_text())
        assert list(fields) == PELICAN_KEYS
        assert fields["Title"].strip()
        datetime.strptime(fields["Date"], "%Y-%m-%d %H:%M")
        assert fields["Category"] == path.parent.name
        assert fields["Slug"] == path.stem
        assert all(re.fullmatch(r"[a-z]+", tag) for tag in fields["Tags"].split(", "))


def test_hugo_front_matter_is_yaml(tmp_path: Path) -> None:
    info = generate_site(tmp_path / "site", pages=30, flavour="hugo")
    for path in page_files(info):
        data = hugo_front_matter(path.read_text())
        assert isinstance(data["title"], str) and data["title"]
        assert isinstance(data["date"], datetime)
        assert data["slug"] == path.stem
        assert data["categories"] == [path.parent.name]
        tags = data["tags"]
        assert isinstance(tags, list) and tags and all(isinstance(t, str) for t in tags)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_body_has_markdown_constructs(tmp_path: Path, flavour: Flavour) -> None:
    info = generate_site(tmp_path / "site", pages=30, flavour=flavour)
    text = "".join(p.read_text() for p in page_files(info))
    assert re.search(r"^## \S", text, re.MULTILINE)
    assert re.search(r"^- \S", text, re.MULTILINE)
    assert re.search(r"^```(python|bash|json)\n", text, re.MULTILINE)
    assert text.count("```") % 2 == 0


@pytest.mark.parametrize(
    ("flavour", "pattern"), [("pelican", PELICAN_LINK), ("hugo", HUGO_LINK)], ids=FLAVOURS
)
def test_internal_links_point_at_existing_pages(
    tmp_path: Path, flavour: Flavour, pattern: re.Pattern[str]
) -> None:
    info = generate_site(tmp_path / "site", pages=60, flavour=flavour, sections=6)
    for path in page_files(info):
        links = pattern.findall(path.read_text())
        assert links, f"{path} links to no other page"
        for section, slug in links:
            target = info.content_dir / section / f"{slug}.md"
            assert target.is_file(), f"{path} links to missing {target}"
            assert target != path


def test_single_page_site_has_no_dangling_links(tmp_path: Path) -> None:
    info = generate_site(tmp_path / "site", pages=1, sections=3)
    (page,) = page_files(info)
    assert "{filename}" not in page.read_text()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pages": 0}, "pages"),
        ({"pages": 5, "sections": 0}, "sections"),
        ({"pages": 5, "page_bytes": 199}, "page_bytes"),
        ({"pages": 5, "flavour": "jekyll"}, "flavour"),
    ],
)
def test_rejects_bad_arguments(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_site(tmp_path / "site", **kwargs)  # type: ignore[arg-type]
    assert not (tmp_path / "site").exists()


def test_rejects_non_empty_destination(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        generate_site(tmp_path, pages=3)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_rejects_file_as_destination(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("")
    with pytest.raises(ValueError, match="not a directory"):
        generate_site(target, pages=3)


def test_accepts_existing_empty_destination(tmp_path: Path) -> None:
    info = generate_site(tmp_path, pages=3)
    assert info.root == tmp_path
    assert len(page_files(info)) == 3


def test_config_files(tmp_path: Path) -> None:
    pelican = generate_site(tmp_path / "p", pages=2, flavour="pelican")
    assert pelican.config_file == pelican.root / "pelicanconf.py"
    settings: dict[str, object] = {}
    exec(pelican.config_file.read_text(), settings)
    assert settings["PATH"] == "content"
    assert settings["RELATIVE_URLS"] is True
    assert settings["FEED_ALL_ATOM"] is None
    assert settings["TIMEZONE"] and settings["DEFAULT_LANG"]

    tomllib = pytest.importorskip("tomllib")
    hugo = generate_site(tmp_path / "h", pages=2, flavour="hugo")
    assert hugo.config_file == hugo.root / "hugo.toml"
    config = tomllib.loads(hugo.config_file.read_text())
    assert config["taxonomies"] == {"category": "categories", "tag": "tags"}


def test_generation_is_fast(tmp_path: Path) -> None:
    started = time.perf_counter()
    generate_site(tmp_path / "site", pages=2000)
    # About 0.5 s here; the bound only catches an accidental quadratic.
    assert time.perf_counter() - started < 5.0


def test_real_pelican_build_writes_one_html_per_page(tmp_path: Path) -> None:
    info = generate_site(tmp_path / "site", pages=50, flavour="pelican", seed=3)
    out = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable, "-m", "pelican", str(info.content_dir),
            "-s", str(info.config_file), "-o", str(out), "--fatal", "warnings",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    assert "WARNING" not in log and "ERROR" not in log, log
    assert "Processed 50 articles" in " ".join(log.split()), log
    articles = sorted(p.name for p in out.glob("*.html") if re.search(r"-\d+\.html$", p.name))
    assert articles == sorted(f"{p.stem}.html" for p in page_files(info))
    for page in page_files(info):
        html = (out / f"{page.stem}.html").read_text()
        assert "{filename}" not in html
        for _, slug in PELICAN_LINK.findall(page.read_text()):
            assert f'href="./{slug}.html"' in html
        for href in re.findall(r'href="\./([^"]+\.html)"', html):
            assert (out / href).is_file(), f"{page.stem}.html links to missing {href}"
