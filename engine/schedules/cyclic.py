"""Cyclical schedules with absolute learning rates: ``cyclic`` (PyTorch's ``CyclicLR``, Smith's
CLR) and ``one_cycle`` (``OneCycleLR``, super-convergence).

Both PyTorch schedulers also cycle the optimizer's momentum inversely to the lr by default
(``cycle_momentum=True``). Ours never touch the momentum: an optimizer's momentum / betas are
its own hyper-parameters. The reference data is generated with ``cycle_momentum=False``.
"""

from __future__ import annotations

import itertools
from typing import Annotated, Literal, Self

import numpy as np
from pydantic import Field, model_validator

from engine.schedules.base import SCHEDULES, ClosedForm, powers, sweep_points
from engine.specbase import SpecModel, Sweep

PositiveInt = Annotated[int, Field(ge=1)]
PositiveFloat = Annotated[float, Field(gt=0)]
CyclicMode = Literal["triangular", "triangular2", "exp_range"]
AnnealStrategy = Literal["cos", "linear"]


class CyclicSpec(SpecModel):
    name: Literal["cyclic"] = "cyclic"
    base_lr: Sweep[PositiveFloat | None] = Field(
        default=None, description="Lower lr boundary; default: the optimizer's lr."
    )
    max_lr: Sweep[PositiveFloat]
    step_size_up: Sweep[PositiveInt] = 2000
    step_size_down: Sweep[PositiveInt | None] = Field(
        default=None, description="Updates in the decreasing half-cycle; default: step_size_up."
    )
    mode: Sweep[CyclicMode] = "triangular"
    gamma: Sweep[Annotated[float, Field(gt=0, le=1)]] = 1.0


class OneCycleSpec(SpecModel):
    name: Literal["one_cycle"] = "one_cycle"
    max_lr: Sweep[PositiveFloat | None] = Field(
        default=None, description="Peak lr; default: the optimizer's lr."
    )
    total_steps: Sweep[PositiveInt]
    pct_start: Sweep[Annotated[float, Field(gt=0, lt=1)]] = 0.3
    anneal_strategy: Sweep[AnnealStrategy] = "cos"
    div_factor: Sweep[PositiveFloat] = 25.0
    final_div_factor: Sweep[PositiveFloat] = 1e4
    three_phase: Sweep[bool] = False

    @model_validator(mode="after")
    def _phases_have_positive_length(self) -> Self:
        for total_steps, pct_start, three_phase in sweep_points(
            self, "total_steps", "pct_start", "three_phase"
        ):
            one_cycle_phase_ends(total_steps, pct_start, three_phase)
        return self


@SCHEDULES.register("cyclic", CyclicSpec)
class Cyclic(ClosedForm):
    """Triangular waves between ``base_lr`` and ``max_lr`` (absolute lrs), repeated without end.

    With ``L = step_size_up + step_size_down``, ``c = ⌊1 + t/L⌋`` (1-based cycle) and
    ``x = 1 + t/L − c ∈ [0, 1)``, the rising half is ``h = x / r`` for ``x ≤ r = step_size_up/L``
    and the falling half ``h = (x − 1)/(r − 1)``; ``lr_t = base_lr + (max_lr − base_lr) · h · s``
    with ``s = 1`` (triangular), ``s = 2^{1−c}`` (triangular2: amplitude halves every cycle) or
    ``s = γ^t`` (exp_range). Unlike ``sawtooth`` the lr climbs back gradually instead of jumping,
    and unlike ``one_cycle`` it repeats forever. ``base_lr`` defaults to the optimizer's lr.
    """

    def __init__(
        self,
        lr: float,
        /,
        *,
        base_lr: float | None,
        max_lr: float,
        step_size_up: int,
        step_size_down: int | None,
        mode: CyclicMode,
        gamma: float,
    ) -> None:
        if mode not in ("triangular", "triangular2", "exp_range"):
            raise ValueError(f"unknown cyclic mode {mode!r}")
        up = float(step_size_up)
        down = float(step_size_down) if step_size_down is not None else up
        if up < 1 or down < 1:
            raise ValueError(f"step sizes must be >= 1, got up={up}, down={down}")
        self.base_lr = float(lr if base_lr is None else base_lr)
        self.max_lr, self.mode, self.gamma = float(max_lr), mode, float(gamma)
        self.total_size = up + down
        self.step_ratio = up / self.total_size

    def lrs_at(self, t: np.ndarray) -> np.ndarray:
        cycle = np.floor(1 + t / self.total_size)
        x = 1.0 + t / self.total_size - cycle
        r = self.step_ratio
        height = (self.max_lr - self.base_lr) * np.where(x <= r, x / r, (x - 1) / (r - 1))
        if self.mode == "triangular":
            return self.base_lr + height * 1.0
        if self.mode == "triangular2":
            return self.base_lr + height * np.ldexp(1.0, 1 - cycle.astype(np.int64))
        return self.base_lr + height * powers(self.gamma, t)


def one_cycle_phase_ends(total_steps: int, pct_start: float, three_phase: bool) -> list[float]:
    """The last update index of each phase, as PyTorch's ``OneCycleLR`` computes them.

    Raises ``ValueError`` unless every phase has positive length (PyTorch would divide by zero or
    run a phase backwards): ``pct_start · total_steps > 1``, and with three phases
    ``2 · pct_start · total_steps < total_steps + 1``.
    """
    up = float(pct_start * total_steps) - 1
    if three_phase:
        ends = [up, float(2 * pct_start * total_steps) - 2, float(total_steps - 1)]
    else:
        ends = [up, float(total_steps - 1)]
    if ends[0] <= 0 or any(b <= a for a, b in itertools.pairwise(ends)):
        raise ValueError(
            f"one_cycle phases need positive lengths: pct_start={pct_start}, "
            f"total_steps={total_steps}, three_phase={three_phase} give phase ends {ends}"
        )
    return ends


@SCHEDULES.register("one_cycle", OneCycleSpec)
class OneCycle(ClosedForm):
    """The 1cycle policy: warm up from ``max_lr/div_factor`` to ``max_lr``, then anneal far below.

    Phases end at update ``pct_start·T − 1`` and ``T − 1`` (``T = total_steps``); within a phase
    from ``a`` to ``b`` over ``[s, e]``, ``p = (t − s)/(e − s)`` and the lr is
    ``b + (a − b)(1 + cos π p)/2`` (``cos``) or ``a + (b − a) p`` (``linear``). Two phases go
    ``initial → max_lr → min_lr``; ``three_phase`` goes ``initial → max_lr → initial → min_lr``
    with the first two symmetric. ``initial = max_lr/div_factor``,
    ``min_lr = initial/final_div_factor``; ``max_lr`` defaults to the optimizer's lr. Past
    ``T − 1`` the lr holds its final value (PyTorch extrapolates one step past the end, then
    raises). Unlike ``cyclic`` there is a single cycle.
    """

    def __init__(
        self,
        lr: float,
        /,
        *,
        max_lr: float | None,
        total_steps: int,
        pct_start: float,
        anneal_strategy: AnnealStrategy,
        div_factor: float,
        final_div_factor: float,
        three_phase: bool,
    ) -> None:
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"unknown anneal_strategy {anneal_strategy!r}")
        self.ends = one_cycle_phase_ends(total_steps, pct_start, three_phase)
        peak = float(lr if max_lr is None else max_lr)
        initial = peak / div_factor
        final = initial / final_div_factor
        levels = [initial, peak, initial, final] if three_phase else [initial, peak, final]
        self.levels = levels
        self.anneal_strategy = anneal_strategy

    def _anneal(self, start: float, end: float, pct: np.ndarray) -> np.ndarray:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (np.cos(np.pi * pct) + 1)
        return (end - start) * pct + start

    def lrs_at(self, t: np.ndarray) -> np.ndarray:
        out = np.empty(t.shape, dtype=np.float64)
        todo = np.ones(t.shape, dtype=bool)
        start_step = 0.0
        last = len(self.ends) - 1
        for i, end_step in enumerate(self.ends):
            sel = todo if i == last else todo & (t <= end_step)
            pct = (t[sel] - start_step) / (end_step - start_step)
            if i == last:
                pct = np.minimum(pct, 1.0)
            out[sel] = self._anneal(self.levels[i], self.levels[i + 1], pct)
            todo &= ~sel
            start_step = end_step
        return out
