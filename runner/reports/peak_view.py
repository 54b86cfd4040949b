"""What the heap held at its peak, drawn by the report itself: an icicle graph of the sites'
stacks (inline SVG: no script, no CDN) and a memory_profiler-style table of the lines of the
file that held the most. Both read the ``PeakSites`` the traced run stored; nothing is
measured or recomputed beyond laying those bytes out."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from html import escape

from runner.results import AllocationSite, PeakSites, StackFrame
from runner.units import format_bytes

WIDTH = 1100  # px of the graph
ROW = 18  # px per stack level
MAX_DEPTH = 24
MIN_LABEL = 60  # px: narrower boxes get a tooltip only


@dataclass
class _Node:
    label: str
    where: str
    size: int = 0
    children: dict[str, _Node] = field(default_factory=dict)


def _frames(site: AllocationSite) -> list[StackFrame]:
    """The site's stack outermost first (stored innermost first), or the site alone."""
    frames = list(reversed(site.stack)) or [StackFrame(file=site.file, line=site.line,
                                                       function=site.function)]
    return frames[-MAX_DEPTH:]


def _short(path: str) -> str:
    for marker in ("/site-packages/", "/dist-packages/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path.rsplit("/", 1)[-1]


def tree(sites: list[AllocationSite]) -> _Node:
    root = _Node("all sites", "")
    for site in sites:
        root.size += site.size
        node = root
        for frame in _frames(site):
            key = f"{frame.file}:{frame.line}"
            child = node.children.get(key)
            if child is None:
                child = node.children[key] = _Node(
                    frame.function or "?", f"{_short(frame.file)}:{frame.line}")
            child.size += site.size
            node = child
    return root


def _colour(where: str) -> str:
    hue = zlib.crc32(where.rsplit(":", 1)[0].encode()) % 360
    return f"hsl({hue},60%,78%)"


def icicle_svg(at_peak: PeakSites) -> str:
    """The sites' stacks as an icicle graph: the whole at the top, callers above callees, each
    box as wide as the bytes held below it."""
    root = tree(at_peak.sites)
    if root.size <= 0:
        return ""
    boxes: list[str] = []
    depth_seen = 0

    def draw(node: _Node, x: float, depth: int) -> None:
        nonlocal depth_seen
        width = WIDTH * node.size / root.size
        if width < 1:
            return
        depth_seen = max(depth_seen, depth)
        y = depth * ROW
        tip = f"{node.label} {node.where} — {format_bytes(node.size)} " \
              f"({node.size / root.size:.1%})"
        fill = "#e5e7eb" if depth == 0 else _colour(node.where)
        text = ""
        if width >= MIN_LABEL:
            label = f"{node.label} {node.where}" if depth else (
                f"{format_bytes(root.size)} held by the top sites")
            room = int(width / 6.5)
            shown = label if len(label) <= room else label[:max(room - 1, 1)] + "…"
            text = (f'<text x="{x + 3:.1f}" y="{y + 13}" font-size="11">'
                    f"{escape(shown)}</text>")
        boxes.append(f'<g><title>{escape(tip)}</title><rect x="{x:.1f}" y="{y}" '
                     f'width="{max(width - 1, 0.5):.1f}" height="{ROW - 1}" fill="{fill}" '
                     f'rx="2"/>{text}</g>')
        offset = x
        for child in sorted(node.children.values(), key=lambda n: n.size, reverse=True):
            draw(child, offset, depth + 1)
            offset += WIDTH * child.size / root.size

    draw(root, 0.0, 0)
    height = (depth_seen + 1) * ROW
    return (f'<svg class="icicle" role="img" aria-label="allocation sites at the peak" '
            f'xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
            f'width="100%" font-family="monospace">{"".join(boxes)}</svg>')


@dataclass
class LineRow:
    line: int
    function: str | None
    code: str | None
    held: int  # bytes held at the peak by allocations made at or below this line
    own: int  # of which allocated on this line itself
    blocks: int


def top_file(sites: list[AllocationSite]) -> str | None:
    """The file whose lines held the most at the peak (counting each site once per file)."""
    totals: dict[str, int] = {}
    for site in sites:
        for file in {frame.file for frame in _frames(site)}:
            if not file.startswith("<"):
                totals[file] = totals.get(file, 0) + site.size
    return max(totals, key=lambda f: totals[f]) if totals else None


def line_rows(sites: list[AllocationSite], file: str) -> list[LineRow]:
    rows: dict[int, LineRow] = {}
    for site in sites:
        seen: set[int] = set()
        for frame in _frames(site):
            if frame.file != file or frame.line in seen:
                continue
            seen.add(frame.line)
            row = rows.setdefault(frame.line, LineRow(frame.line, frame.function, frame.code,
                                                      0, 0, 0))
            row.held += site.size
            row.blocks += site.count
            row.code = row.code or frame.code
        if site.file == file:
            rows.setdefault(site.line, LineRow(site.line, site.function, None, 0, 0, 0))
            rows[site.line].own += site.size
    return sorted(rows.values(), key=lambda r: r.line)


def line_table(at_peak: PeakSites) -> str:
    """memory_profiler's view, at the peak: each line of the top file with the bytes held by
    what it allocated itself and by everything it called."""
    file = top_file(at_peak.sites)
    if file is None:
        return ""
    rows = "".join(
        f'<tr><td class="num">{r.line}</td><td class="num">{escape(format_bytes(r.held))}</td>'
        f'<td class="num">{escape(format_bytes(r.own) if r.own else "")}</td>'
        f'<td class="num">{r.blocks}</td><td>{escape(r.function or "")}</td>'
        f"<td><code>{escape(r.code or '')}</code></td></tr>"
        for r in line_rows(at_peak.sites, file))
    return (f'<p class="muted">Lines of <code title="{escape(file)}">{escape(_short(file))}'
            "</code>, the file whose lines held the most at the peak (of the top sites):</p>"
            "<table><thead><tr><th class=num>line</th><th class=num>held at the peak</th>"
            "<th class=num>allocated on the line</th><th class=num>blocks</th><th>function"
            f"</th><th>code</th></tr></thead><tbody>{rows}</tbody></table>")
