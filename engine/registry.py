"""Name → (factory, spec model) registries: one per concept (problems, optimizers, schedules)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from pydantic import BaseModel

F = TypeVar("F", bound=Callable[..., object])


class UnknownNameError(ValueError):
    """Raised for a name that no entry of a registry carries."""


#: The origin of the entries that ship with optbench (a plugin's is its distribution).
BUILTIN = "optbench"


@dataclass(frozen=True)
class Entry(Generic[F]):
    name: str
    factory: F
    spec: type[BaseModel]
    origin: str = BUILTIN


class Registry(Generic[F]):
    """Entries keyed by name; each pairs a factory with the pydantic model of its parameters.

    The spec model's fields (minus ``name``) are exactly the factory's keyword arguments, so
    ``entry.factory(**spec.model_dump(exclude={"name"}))`` builds the object a spec describes.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[F]] = {}

    def register(self, name: str, spec: type[BaseModel]) -> Callable[[F], F]:
        def decorate(factory: F) -> F:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = Entry(name, factory, spec)
            return factory

        return decorate

    def set_origin(self, name: str, origin: str) -> None:
        """Record where entry ``name`` comes from (see :mod:`engine.plugins`)."""
        self._entries[name] = replace(self.get(name), origin=origin)

    def get(self, name: str) -> Entry[F]:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self.names())
            raise UnknownNameError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def specs(self) -> list[type[BaseModel]]:
        return [self._entries[n].spec for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)
