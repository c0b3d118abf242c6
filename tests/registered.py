"""Which registry entries ship with optbench and which come from installed plugins.

Contract tests run over every registered entry (benchopt's pattern); tests that pin the built-in
catalogue itself (its exact names, its reference data) use :func:`builtin`.
"""

from __future__ import annotations

from typing import Any

from engine.registry import BUILTIN, Registry


def builtin(registry: Registry[Any]) -> list[str]:
    return [n for n in registry.names() if registry.get(n).origin == BUILTIN]


def plugins(registry: Registry[Any]) -> list[str]:
    return [n for n in registry.names() if registry.get(n).origin != BUILTIN]
