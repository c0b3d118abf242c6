"""A module that registers entries on import, for the entry-point loader's tests."""

from __future__ import annotations

from typing import Any, Literal

from engine.registry import Registry
from engine.specbase import SpecModel

GADGETS: Registry[Any] = Registry("gadget")


class GoodSpec(SpecModel):
    name: Literal["good"] = "good"


@GADGETS.register("good", GoodSpec)
def good() -> str:
    return "good"


def unregistered() -> str:
    """Importable, but registered under no name."""
    return "unregistered"
