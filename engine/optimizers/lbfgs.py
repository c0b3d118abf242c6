"""L-BFGS with torch's inner loop and strong-Wolfe line search: ``torch.optim.LBFGS``.

One ``step`` runs up to ``max_iter`` quasi-Newton iterations and evaluates the objective through
the closure as often as they need (at most ``max_eval`` times, plus the line search's own budget),
so the run loop calls :attr:`Optimizer.step_` and counts gradient evaluations. Each run is stepped
alone (its line search decides where to evaluate); with ``R > 1`` rows the rows are stepped one
after the other, each closure call evaluating the point of the row being stepped.

No fused kernel: the two-loop recursion alternates a dot product (NumPy's BLAS, whose summation
order a compiled loop would not reproduce) with a single ``axpy`` pass that depends on it, so
there are no adjacent elementwise passes to fuse; the rest is the line search's scalar logic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from engine.optimizers.base import (
    OPTIMIZERS,
    Closure,
    HParam,
    NonNegative,
    Optimizer,
    Positive,
    State,
)
from engine.optimizers.kernel import check_params, f64
from engine.specbase import SpecModel, Sweep

Objective = Callable[[np.ndarray, float, np.ndarray], tuple[float, np.ndarray]]


def cubic_interpolate(
    x1: float,
    f1: float,
    g1: float,
    x2: float,
    f2: float,
    g2: float,
    bounds: tuple[float, float] | None = None,
) -> float:
    """The minimiser of the cubic through two points with slopes, clipped to ``bounds`` (the
    midpoint of the bounds when the cubic has no minimiser): torch's ``_cubic_interpolate``."""
    lo, hi = bounds if bounds is not None else ((x1, x2) if x1 <= x2 else (x2, x1))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1**2 - g1 * g2
    if d2_square >= 0:
        d2 = float(np.sqrt(d2_square))
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(min_pos, lo), hi)
    return (lo + hi) / 2.0


def strong_wolfe(
    obj: Objective,
    x: np.ndarray,
    t: float,
    d: np.ndarray,
    f: float,
    g: np.ndarray,
    gtd: float,
    c1: float = 1e-4,
    c2: float = 0.9,
    tolerance_change: float = 1e-9,
    max_ls: int = 25,
) -> tuple[float, np.ndarray, float, int]:
    """A step ``t`` along ``d`` meeting the strong Wolfe conditions (bracketing, then zoom with
    cubic interpolation): torch's ``_strong_wolfe``. Returns ``(f, g, t, evaluations)``."""
    d_norm = float(np.abs(d).max())
    g = g.copy()
    f_new, g_new = obj(x, t, d)
    evals = 1
    gtd_new = float(g_new @ d)
    t_prev, f_prev, g_prev, gtd_prev = 0.0, f, g, gtd
    done = False
    ls_iter = 0
    bracket: list[float] = []
    bracket_f: list[float] = []
    bracket_g: list[np.ndarray] = []
    bracket_gtd: list[float] = []
    while ls_iter < max_ls:
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.copy()], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.copy()], [gtd_prev, gtd_new]
            break
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        tmp = t
        t = cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, (min_step, max_step))
        t_prev, f_prev, g_prev, gtd_prev = tmp, f_new, g_new.copy(), gtd_new
        f_new, g_new = obj(x, t, d)
        evals += 1
        gtd_new = float(g_new @ d)
        ls_iter += 1
    if ls_iter == max_ls:
        bracket, bracket_f, bracket_g = [0.0, t], [f, f_new], [g, g_new]
    insuf_progress = False
    low, high = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = cubic_interpolate(
            bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1], bracket_gtd[1]
        )
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                if abs(t - max(bracket)) < abs(t - min(bracket)):
                    t = max(bracket) - eps
                else:
                    t = min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False
        f_new, g_new = obj(x, t, d)
        evals += 1
        gtd_new = float(g_new @ d)
        ls_iter += 1
        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low]:
            bracket[high], bracket_f[high] = t, f_new
            bracket_g[high], bracket_gtd[high] = g_new.copy(), gtd_new
            low, high = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high] - bracket[low]) >= 0:
                bracket[high], bracket_f[high] = bracket[low], bracket_f[low]
                bracket_g[high], bracket_gtd[high] = bracket_g[low], bracket_gtd[low]
            bracket[low], bracket_f[low] = t, f_new
            bracket_g[low], bracket_gtd[low] = g_new.copy(), gtd_new
    return bracket_f[low], bracket_g[low], bracket[low], evals


class LBFGSSpec(SpecModel):
    name: Literal["lbfgs"] = "lbfgs"
    lr: Sweep[Positive] = 1.0
    max_iter: Annotated[int, Field(ge=1, le=1000)] = 20
    max_eval: Annotated[int, Field(ge=1, le=2000)] | None = None
    tolerance_grad: Sweep[NonNegative] = 1e-7
    tolerance_change: Sweep[NonNegative] = 1e-9
    history_size: Annotated[int, Field(ge=1, le=1000)] = 100
    line_search_fn: Literal["strong_wolfe"] | None = None


class _Row:
    """The history of one run (torch keeps it in ``state``): directions, steps, ``1/yᵀs``."""

    def __init__(self) -> None:
        self.n_iter = 0
        self.d = np.empty(0)
        self.t = 0.0
        self.old_dirs: list[np.ndarray] = []
        self.old_stps: list[np.ndarray] = []
        self.ro: list[float] = []
        self.h_diag = 1.0
        self.prev_flat_grad: np.ndarray | None = None
        self.prev_loss = 0.0

    def copy(self) -> _Row:
        out = _Row()
        out.__dict__.update(self.__dict__)
        out.old_dirs, out.old_stps, out.ro = list(self.old_dirs), list(self.old_stps), list(self.ro)
        out.d = self.d.copy()
        if self.prev_flat_grad is not None:
            out.prev_flat_grad = self.prev_flat_grad.copy()
        return out


@OPTIMIZERS.register("lbfgs", LBFGSSpec)
def lbfgs(
    *,
    lr: HParam = 1.0,
    max_iter: int = 20,
    max_eval: int | None = None,
    tolerance_grad: HParam = 1e-7,
    tolerance_change: HParam = 1e-9,
    history_size: int = 100,
    line_search_fn: str | None = None,
) -> Optimizer:
    """L-BFGS (Liu & Nocedal) exactly as ``torch.optim.LBFGS.step(closure)``.

    Per step, from the gradient at ``p`` (first evaluation): stop if ``max|g| <= tolerance_grad``;
    else up to ``max_iter`` times: update the curvature pairs ``(y, s)`` (kept when
    ``yᵀs > 1e-10``, at most ``history_size``), get ``d = -H·g`` by the two-loop recursion with
    ``H₀ = yᵀs/yᵀy``, step ``t = lr`` (the very first iteration ``min(1, 1/‖g‖₁)·lr``) —
    or the strong-Wolfe step from there — and re-evaluate; stop early on ``max_eval``
    evaluations, a small gradient, step or loss change. The step count and the history persist
    across steps; the learning rate may change between them.
    """
    evals_cap = max_iter * 5 // 4 if max_eval is None else max_eval

    def init(params: np.ndarray) -> State:
        check_params(params, lr, tolerance_grad, tolerance_change)
        rows = np.empty(params.shape[0], dtype=object)
        rows[:] = [_Row() for _ in range(params.shape[0])]
        return {"rows": rows}

    def step_(closure: Closure, state: State, params: np.ndarray, lr: HParam) -> None:
        lrs = np.broadcast_to(np.asarray(f64(lr), dtype=np.float64), (params.shape[0], 1))
        tol_g = np.broadcast_to(np.asarray(f64(tolerance_grad)), (params.shape[0], 1))
        tol_c = np.broadcast_to(np.asarray(f64(tolerance_change)), (params.shape[0], 1))
        for r, row in enumerate(state["rows"]):

            def evaluate(x: np.ndarray, r: int = r) -> tuple[float, np.ndarray]:
                point = params.copy()
                point[r] = x
                loss, grad = closure(point)
                return float(loss[r]), grad[r].astype(np.float64)

            x = params[r].astype(np.float64)
            _step_row(row, x, evaluate, float(lrs[r, 0]), float(tol_g[r, 0]), float(tol_c[r, 0]))
            params[r] = x

    def _step_row(
        row: _Row,
        x: np.ndarray,
        evaluate: Callable[[np.ndarray], tuple[float, np.ndarray]],
        lr: float,
        tol_grad: float,
        tol_change: float,
    ) -> None:
        loss, flat_grad = evaluate(x)
        current_evals = 1
        if np.abs(flat_grad).max() <= tol_grad:
            return
        d, t = row.d, row.t
        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            row.n_iter += 1
            if row.n_iter == 1:
                d = -flat_grad
                row.old_dirs, row.old_stps, row.ro, row.h_diag = [], [], [], 1.0
            else:
                assert row.prev_flat_grad is not None
                y = flat_grad - row.prev_flat_grad
                s = d * t
                ys = float(y @ s)
                if ys > 1e-10:
                    if len(row.old_dirs) == history_size:
                        row.old_dirs.pop(0)
                        row.old_stps.pop(0)
                        row.ro.pop(0)
                    row.old_dirs.append(y)
                    row.old_stps.append(s)
                    row.ro.append(1.0 / ys)
                    row.h_diag = ys / float(y @ y)
                al = [0.0] * len(row.old_dirs)
                q = -flat_grad
                for i in range(len(row.old_dirs) - 1, -1, -1):
                    al[i] = float(row.old_stps[i] @ q) * row.ro[i]
                    q = q - al[i] * row.old_dirs[i]
                d = r_ = q * row.h_diag
                for i in range(len(row.old_dirs)):
                    be_i = float(row.old_dirs[i] @ r_) * row.ro[i]
                    r_ += (al[i] - be_i) * row.old_stps[i]
            row.prev_flat_grad = flat_grad.copy()
            row.prev_loss = loss
            t = min(1.0, 1.0 / float(np.abs(flat_grad).sum())) * lr if row.n_iter == 1 else lr
            gtd = float(flat_grad @ d)
            if gtd > -tol_change:
                break
            ls_evals = 0
            if line_search_fn is not None:
                x_init = x.copy()

                def obj(
                    x0: np.ndarray, step: float, direction: np.ndarray
                ) -> tuple[float, np.ndarray]:
                    return evaluate(x0 + step * direction)

                loss, flat_grad, t, ls_evals = strong_wolfe(
                    obj, x_init, t, d, loss, flat_grad, gtd, max_ls=evals_cap - current_evals
                )
                x += t * d
                opt_cond = bool(np.abs(flat_grad).max() <= tol_grad)
            else:
                x += t * d
                opt_cond = False
                if n_iter != max_iter:
                    loss, flat_grad = evaluate(x)
                    opt_cond = bool(np.abs(flat_grad).max() <= tol_grad)
                    ls_evals = 1
            current_evals += ls_evals
            if n_iter == max_iter or current_evals >= evals_cap or opt_cond:
                break
            if np.abs(d * t).max() <= tol_change or abs(loss - row.prev_loss) < tol_change:
                break
        row.d, row.t = d, t

    def update_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        """One step from a given gradient: torch's rule when it evaluates once per step
        (``max_iter = 1``, no line search); otherwise the step needs :attr:`step_`'s closure."""
        if max_iter != 1 or line_search_fn is not None:
            raise ValueError("lbfgs with max_iter > 1 or a line search steps through a closure")
        step_(lambda point: (np.zeros(point.shape[0]), grads), state, params, lr)

    return Optimizer(init, update_, lr, step_=step_)
