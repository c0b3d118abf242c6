"""Reusable work buffers for the hot loop.

A large temporary allocated afresh on every step costs page faults (the allocator hands big blocks
back to the system and gets them again), which doubled the time of a 64-run MLP step in
measurements. Functions that accept a :class:`Scratch` write their results and temporaries into
buffers it keeps — one per name and shape — so after the first step nothing is allocated. Results
living in a scratch buffer are overwritten by the next call that uses the same scratch.
"""

from __future__ import annotations

import numpy as np


class Scratch:
    """Named buffers, allocated on first request and reused while the shape and dtype match."""

    def __init__(self) -> None:
        self._buffers: dict[tuple[str, tuple[int, ...], np.dtype], np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        key = (name, shape, np.dtype(dtype))
        buf = self._buffers.get(key)
        if buf is None:
            buf = self._buffers[key] = np.empty(shape, dtype)
        return buf


def buffer(
    scratch: Scratch | None, name: str, shape: tuple[int, ...], dtype: np.dtype
) -> np.ndarray:
    """A buffer from ``scratch``, or a fresh array when there is none."""
    return np.empty(shape, dtype) if scratch is None else scratch.get(name, shape, dtype)
