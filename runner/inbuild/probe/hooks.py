"""Zero-code phases: the callables MEMSLA_PHASES names (``name=module:Qual.name;...``) wrapped
as phases when their module is imported, without a change to the program."""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .process import Probe


def phase_targets(text: str) -> list[Any]:
    """``render=pkg.mod:Class.method;parse=mod:func`` -> [(name, module, qualname)]."""
    targets = []
    for item in text.split(";"):
        name, _, target = item.partition("=")
        module, _, qualname = target.partition(":")
        if name and module and qualname:
            targets.append((name, module, qualname))
    return targets


class PhaseFinder:
    """A meta path finder that lets the usual finders find a module named in MEMSLA_PHASES,
    and after that module has executed (before its importer sees it) replaces each named
    callable with one that runs it as a phase. Nothing else of the import changes: the spec
    and loader stay the ones found; only the loader instance's ``exec_module`` is wrapped for
    that one call. What became of each target is kept in ``probe.hooks``."""

    def __init__(self, probe: Probe, targets: list[Any]) -> None:
        self.probe = probe
        self.depth: dict[str, int] = {}  # zero-code phases being run, by name
        self.by_module: dict[str, list[Any]] = {}
        for name, module, qualname in targets:
            self.by_module.setdefault(module, []).append((name, qualname))
            probe.hooks["%s:%s" % (module, qualname)] = "never imported"

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in self.by_module:
            return None
        try:
            return self._find_and_hook(fullname, path, target)
        except Exception:  # the import goes on as if the probe were not there
            return None

    def _find_and_hook(self, fullname: str, path: Any, target: Any) -> Any:
        for finder in sys.meta_path:
            if finder is self:
                continue
            find = getattr(finder, "find_spec", None)
            if find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or isinstance(loader, type) or not hasattr(loader, "exec_module"):
            return spec  # a shared loader (builtin, frozen): wrapped once imported, see wrap
        original = loader.exec_module

        def exec_module(module: Any) -> None:
            try:
                del loader.exec_module  # the loader is as it was from now on
            except Exception:
                pass
            original(module)
            self.wrap(fullname, module)

        try:
            loader.exec_module = exec_module
        except Exception:
            pass
        return spec

    def wrap_imported(self) -> None:
        for module_name in self.by_module:
            if module_name == "__main__":
                for _name, qualname in self.by_module[module_name]:
                    self.probe.hooks["__main__:" + qualname] = (
                        "not wrapped: the script run as __main__ defines its functions after "
                        "the probe has loaded; name the module they are imported from")
                continue
            module = sys.modules.get(module_name)
            if module is not None:
                self.wrap(module_name, module)

    def wrap(self, module_name: str, module: Any) -> None:
        for name, qualname in self.by_module.get(module_name, ()):
            target = "%s:%s" % (module_name, qualname)
            try:
                self.probe.hooks[target] = _wrap_callable(self.probe, self.depth, name, module,
                                                          qualname)
            except Exception as error:
                self.probe.hooks[target] = "not wrapped: %r" % (error,)


def _wrap_callable(probe: Probe, depth: dict[str, int], name: str, module: Any,
                   qualname: str) -> str:
    owner = module
    parts = qualname.split(".")
    for part in parts[:-1]:
        owner = getattr(owner, part)
    raw = owner.__dict__[parts[-1]] if parts[-1] in getattr(owner, "__dict__", {}) else getattr(
        owner, parts[-1])
    kind = None
    func = raw
    if isinstance(raw, (staticmethod, classmethod)):
        kind, func = type(raw), raw.__func__
    code = getattr(func, "__code__", None)
    if code is not None and code.co_flags & (0x20 | 0x80 | 0x200):
        return "not wrapped: a generator or coroutine function runs after it returns"
    if getattr(func, "__memsla_phase__", None) is not None:
        return "wrapped"
    if not callable(func):
        return "not wrapped: not callable"
    depth.setdefault(name, 0)
    phases = probe.phases

    def phase_wrapper(*args: Any, **kwargs: Any) -> Any:
        if depth[name]:  # recursion, or a nested call of the same phase: counted once
            return func(*args, **kwargs)
        depth[name] = 1
        try:
            token = phases.enter(name)
        except Exception:
            token = None
        try:
            return func(*args, **kwargs)
        finally:
            depth[name] = 0
            if token is not None:
                try:
                    phases.exit(token)
                except Exception:
                    pass

    for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):
        try:
            setattr(phase_wrapper, attribute, getattr(func, attribute))
        except Exception:
            pass
    try:
        phase_wrapper.__dict__.update(getattr(func, "__dict__", {}))
    except Exception:
        pass
    phase_wrapper.__wrapped__ = func  # type: ignore[attr-defined]
    phase_wrapper.__memsla_phase__ = name  # type: ignore[attr-defined]
    setattr(owner, parts[-1], kind(phase_wrapper) if kind is not None else phase_wrapper)
    return "wrapped"
