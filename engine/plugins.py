"""Entries contributed by installed packages through Python entry points.

An installed distribution registers optimizers, problems or schedules by declaring entry points in
the groups ``optbench.optimizers``, ``optbench.problems`` and ``optbench.schedules``. Each entry
point's name is the registry name it provides and its value the object that registers it, usually
the factory (``signum = "my_package.optimizers:signum"``): loading the value imports its module,
whose ``@OPTIMIZERS.register("signum", SignumSpec)`` decorator adds the entry exactly as a built-in
module does. The loaded entry then carries the distribution as its origin (``"my-package 1.0"``),
shown in the catalog.

When the loading happens: each registry's package (``engine.optimizers``, ``engine.problems``,
``engine.schedules``) loads its group after registering its built-in entries and *before* it
builds its spec union, so the discriminated unions — and every model that nests one (``warmup``,
``sequential``, ``RunSpec``, ``ExperimentSpec``) — include the plugins from the start; nothing is
rebuilt later. A built-in module that builds a union of its own registry at import (the groups of
``partition``) calls :func:`load_plugins` first; loading is idempotent. The API and every worker
import the engine the same way, so they see the same entries as long as the same packages are
installed in both (a deployment concern, like the engine's own version). Hence a plugin's module
may import ``engine.<kind>.base``, ``engine.specbase``, ``engine.layout`` and the engine's helpers,
but not ``engine.spec`` or another registry's package (which would need the union being built).

A plugin that fails to import, does not register the name it declares, or whose value is not
the factory registered under that name (a taken name: registering it twice fails too) stops the
import with a :class:`PluginError` naming the distribution: a service that silently lost
an entry would accept specs its workers cannot run. Code is never uploaded through the API; an
entry exists only where its package is installed.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from engine.registry import Registry

GROUP_PREFIX = "optbench."


#: The installed groups loaded so far, with the names each provided (each loads once).
_LOADED: dict[str, list[str]] = {}


class PluginError(RuntimeError):
    """An installed plugin could not provide the entry its entry point declares."""


@functools.cache
def _installed() -> Any:
    """Every installed entry point, read once for the three groups (each reading walks every
    installed distribution's metadata: ~2 ms); selected by group (``EntryPoints``, or before
    Python 3.12 ``SelectableGroups``: both select)."""
    return entry_points()


def _origin(ep: EntryPoint) -> str:
    dist = ep.dist
    return f"{dist.name} {dist.version}" if dist is not None else ep.value


def load_plugins(registry: Registry[Any], eps: Iterable[EntryPoint] | None = None) -> list[str]:
    """Load the entry points of ``registry``'s group (``optbench.<kind>s``); the names loaded.

    An entry point's value must be the factory its module registers under the entry point's name
    (importing the module a second time, or first from elsewhere, changes nothing).

    ``eps`` replaces the installed entry points (tests pass hand-made ones). The installed ones
    load once; a later call (a module whose union nests the registry's, such as ``partition``'s
    groups, loads them before building it) returns the names loaded the first time.
    """
    group = f"{GROUP_PREFIX}{registry.kind}s"
    if eps is None and group in _LOADED:
        return _LOADED[group]
    found = _installed().select(group=group) if eps is None else eps
    loaded: list[str] = []
    for ep in sorted(found, key=lambda e: e.name):
        origin = _origin(ep)
        try:
            factory = ep.load()
        except Exception as exc:
            raise PluginError(
                f"{origin}: loading {registry.kind} {ep.name!r} from {ep.value!r} failed: {exc}"
            ) from exc
        if ep.name not in registry:
            raise PluginError(
                f"{origin}: entry point {ep.name!r} = {ep.value!r} in group {group!r} did not "
                f"register a {registry.kind} named {ep.name!r}"
            )
        if registry.get(ep.name).factory is not factory:
            raise PluginError(
                f"{origin}: {registry.kind} {ep.name!r} is already provided by "
                f"{registry.get(ep.name).origin}, not by {ep.value!r}"
            )
        registry.set_origin(ep.name, origin)
        loaded.append(ep.name)
    if eps is None:
        _LOADED[group] = loaded
    return loaded
