"""An exact sliding-window sum of the last ``L`` arrays pushed, for the seed's windowed rules.

A running sum that adds the newest item and subtracts the one leaving the window is cheap but
wrong here: squared gradients shrink by orders of magnitude during training, and the rounding
error left by subtracting the old large items soon exceeds the small true sum (it can even turn
negative under a square root). This sum never subtracts.

Items arrive in blocks of ``L``. The *back* block (the items since the last fold, at most ``L``)
is kept as a running sum ``back`` plus the items themselves in ``slots[0..pos-1]``. When the back
block fills up it is *folded*: ``slots[k]`` becomes the suffix sum ``items[k] + … + items[L-1]``
of that block, which is now the *front* block, and ``back`` restarts at zero. While the next back
block holds ``pos`` items, the window is those items plus the front items ``pos..L-1``, whose sum
is ``slots[pos]``: ``total = back + slots[pos]``. Item ``pos`` of the new block is written over
``slots[pos]``, which the window no longer needs. Before the first fold there is no front block
and the window is everything pushed so far.

Each push costs a write and an add, each total one add, and each fold ``L - 1`` adds once per
``L`` pushes; every sum adds non-negative terms only. Memory: ``L + 1`` parameter-sized arrays.

The state lives in the optimizer's state dict under ``<key>_slots``, ``<key>_back``, ``<key>_pos``
and ``<key>_full``. All methods act on one column block, so a step runs block by block in cache.
"""

from __future__ import annotations

import numpy as np

from engine.optimizers.base import State


def window_state(params: np.ndarray, key: str, length: int) -> State:
    """The empty window of ``length`` items shaped like ``params``."""
    return {
        f"{key}_slots": np.zeros((length, *params.shape), dtype=params.dtype),
        f"{key}_back": np.zeros_like(params),
        f"{key}_pos": np.zeros((), dtype=np.int64),
        f"{key}_full": np.zeros((), dtype=np.bool_),
    }


class WindowStep:
    """One update's view of a window: where to write the pushed item, and the window's sum.

    Created at the start of an update (it reads the fill position then); :meth:`push` and
    :meth:`total` are called per column block; :meth:`finish` records the push in the state.
    """

    def __init__(self, state: State, key: str) -> None:
        self._key = key
        self._slots = state[f"{key}_slots"]
        self._back = state[f"{key}_back"]
        self.pos = int(state[f"{key}_pos"])
        self.full = bool(state[f"{key}_full"])
        self.length = self._slots.shape[0]
        folds = self.pos + 1 == self.length
        #: Fill position and front flag before (``pos``, ``full``) and after (``pos_after``,
        #: ``full_after``) this update's push.
        self.pos_after = 0 if folds else self.pos + 1
        self.full_after = self.full or folds

    @property
    def count_after(self) -> int:
        """Items in the window after this update's push (the window length once full)."""
        return self.length if self.full_after else self.pos_after

    @property
    def count_before(self) -> int:
        """Items in the window before this update's push."""
        return self.length if self.full else self.pos

    def slot(self, cols: slice) -> np.ndarray:
        """Where the caller writes this update's item (columns ``cols``) before :meth:`push`."""
        return self._slots[self.pos, :, cols]

    def push(self, cols: slice) -> None:
        """Add the item written to :meth:`slot` to the back block, folding it when it is full."""
        back = self._back[:, cols]
        back += self._slots[self.pos, :, cols]
        if self.pos + 1 == self.length:
            for k in range(self.length - 2, -1, -1):
                self._slots[k, :, cols] += self._slots[k + 1, :, cols]
            back[...] = 0

    def total(self, cols: slice, out: np.ndarray, *, pushed: bool) -> np.ndarray:
        """Sum of the window's items (columns ``cols``), before or after this update's push."""
        pos, full = (self.pos_after, self.full_after) if pushed else (self.pos, self.full)
        if full:
            np.add(self._back[:, cols], self._slots[pos, :, cols], out=out)
        else:
            np.copyto(out, self._back[:, cols])
        return out

    def finish(self, state: State) -> None:
        """Record this update's push (after every block was pushed)."""
        state[f"{self._key}_pos"][...] = self.pos_after
        state[f"{self._key}_full"][...] = self.full_after
