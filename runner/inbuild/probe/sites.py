"""The largest allocation sites of the live traced heap (tracemalloc), each with its largest
stack and the function and source line of every frame."""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# Sites whose innermost frame is in the probe's own modules are the probe's, not the program's.
_OWN_FOLDER = os.path.dirname(os.path.abspath(__file__)) + os.sep


def raw_traces(tracemalloc: Any) -> list[Any]:
    """Every live traced block: (domain, size, stack, ...) as tracemalloc keeps them."""
    return _raw_traces(tracemalloc)


def _raw_traces(tracemalloc: Any) -> list[Any]:
    try:
        import _tracemalloc  # the C module: the list it makes is not traced itself

        return _tracemalloc._get_traces()  # type: ignore[return-value]
    except (ImportError, AttributeError):
        return list(tracemalloc.take_snapshot().traces._traces)


def top_sites(tracemalloc: Any, limit: int, raw: list[Any] | None = None
              ) -> list[dict[str, Any]]:
    """The ``limit`` largest allocation sites (the innermost frame's file and line) of the
    live heap (or of ``raw``, its traces already taken; sorted in place), each with its largest
    stack. Sorted and grouped in C: a Python loop over every trace is slowed tenfold by
    tracemalloc itself."""
    import itertools
    import operator

    if raw is None:
        raw = _raw_traces(tracemalloc)
    stack_of = operator.itemgetter(2)
    raw.sort(key=stack_of)
    sites: dict[Any, list[Any]] = {}
    size_of = operator.itemgetter(1)
    for stack, group in itertools.groupby(raw, key=stack_of):
        if not stack or stack[0][0].startswith(_OWN_FOLDER):
            continue
        traces = list(group)
        size = sum(map(size_of, traces))
        site = sites.get(stack[0])
        if site is None:
            sites[stack[0]] = [size, len(traces), stack, size]
        else:
            site[0] += size
            site[1] += len(traces)
            if size > site[3]:
                site[2], site[3] = stack, size
    del raw
    top = sorted(sites.items(), key=lambda item: item[1][0], reverse=True)[:limit]
    sources: dict[str, list[str] | None] = {}
    return [{"file": where[0], "line": where[1],
             "function": function_at(sources, where[0], where[1]),
             "size": site[0], "count": site[1],
             "stack": [{"file": f, "line": n, "function": function_at(sources, f, n),
                        "code": code_at(sources, f, n)} for f, n in site[2]]}
            for where, site in top]


def function_at(sources: dict[str, list[str] | None], path: str, line: int) -> str | None:
    """The function (``Class.method``) whose body holds ``path:line``, from its source text,
    read once per summary and never cached beyond it; ``<module>`` at the top level; None
    without a readable source. tracemalloc records files and lines only."""
    if path not in sources:
        sources[path] = None
        if not path.startswith("<"):
            try:
                with open(path, encoding="utf-8", errors="replace") as source:
                    sources[path] = source.read(4 * 1024 * 1024).splitlines()
            except Exception:
                pass
    lines = sources[path]
    if lines is None or not 0 < line <= len(lines):
        return None
    names: list[str] = []
    text = lines[line - 1]
    indent = len(text) - len(text.lstrip())
    if text.lstrip().startswith(("def ", "async def ")):  # a one-line function
        indent += 1
    for number in range(line - 1 if indent > len(text) - len(text.lstrip()) else line - 2,
                        -1, -1):
        text = lines[number]
        stripped = text.lstrip()
        if not stripped or stripped.startswith(("#", ")", "]", "}")):
            continue
        depth = len(text) - len(stripped)
        if depth >= indent:
            continue
        indent = depth
        for keyword in ("def ", "async def ", "class "):
            if stripped.startswith(keyword):
                names.append(stripped[len(keyword):].split("(")[0].split(":")[0].strip())
        if depth == 0:
            break
    return ".".join(reversed(names)) or "<module>"


def code_at(sources: dict[str, list[str] | None], path: str, line: int) -> str | None:
    """The source line, stripped and cut short, where ``function_at`` has read its file."""
    lines = sources.get(path)
    if not lines or not 0 < line <= len(lines):
        return None
    return lines[line - 1].strip()[:120]
