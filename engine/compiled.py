"""The run loop compiled, for small analytic problems where per-step Python overhead dominates.

A 2-D Rosenbrock run costs a few dozen floating-point operations per update; the general loop in
:mod:`engine.runner` spends microseconds per update in Python around them. For the batches this
module accepts (:func:`plan`) one compiled call steps every run through a whole chunk of updates —
gradient, optimizer update, divergence check and the recording of every curve — and returns to
Python only at checkpoints, so partial curves, cancellation and budgets work as before.

The curves equal the general loop's bit for bit (tests hold them equal over every supported
optimizer, problem and schedule, in both dtypes, diverging runs included), because every number is
computed as that loop computes it:

- the problem's arithmetic is its NumPy expression in the same order, in the parameters' dtype
  (constants arrive as an array of that dtype: a float64 literal would widen float32 arithmetic);
  NumPy's sums over a row start at 0 and add in order below 8 terms, and ``einsum``'s norms of
  2-vectors likewise, which is why only 2-D problems are accepted;
- per-update coefficients (``-lr/(1-β1^t)``, ``√(1-β2^t)``, …) are the optimizer's own
  expressions in float64 — powers ``β^t`` computed in Python (C ``pow``) per distinct β, the rate
  rounded to the dtype as the loop passes it — then rounded to the dtype;
- the update is the family's fused kernel's per-element expression (:mod:`engine.optimizers.fused`);
- gradient noise is drawn per chunk from each run's noise stream by the problem's own calls.

Not accepted, and stepped by the general loop: schedules that read the loss
(``reduce_on_plateau``), other problems (transcendental functions, whose NumPy and libm
implementations differ, and matrix products), other optimizers and other dimensions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.jit import njit, njit_inline
from engine.optimizers.fused import DECOUPLED_DECAY, L2_DECAY, NO_DECAY, lerp, maximum
from engine.optimizers.kernel import lerp_columns
from engine.problems.base import STREAM_NOISE, Problem, stream_rng
from engine.spec import RunSpec

ROSENBROCK, BEALE, HIMMELBLAU, STYBLINSKI_TANG = range(4)
PROBLEM_KINDS = {
    "rosenbrock": ROSENBROCK,
    "beale": BEALE,
    "himmelblau": HIMMELBLAU,
    "styblinski_tang": STYBLINSKI_TANG,
}
SGD, ADAM, ADAGRAD, RMSPROP = range(4)

#: The problems' constants, in the order of the indices below (passed in the parameters' dtype).
CONSTANTS = (0.0, 0.5, 1.0, 2.0, 2.5, 3.0, 4.0, 5.0, 7.0, 8.0, 11.0, 16.0, 100.0, 200.0, -400.0,
             1.5, 2.25, 2.625)  # fmt: skip
C0, C_HALF, C1, C2, C2_5, C3, C4, C5, C7, C8, C11, C16, C100, C200, C_M400 = range(15)
C1_5, C2_25, C2_625 = range(15, 18)

#: Reasons a run stops (codes of the kernel's ``reason`` array).
LOSS_NOT_FINITE, LOSS_BLOWUP, PARAMS_NOT_FINITE = 1, 2, 3

#: Runs stepped side by side: each run's updates form one chain of dependent operations (a
#: square root and two divisions deep), so the kernel steps a block of runs update by update and
#: the processor overlaps their chains; one run at a time left it waiting on each chain. Four
#: chains are enough to fill it: on an Intel AVX-512 host the 1,024-run Adam sweep of
#: ``bench/sweeps.py`` took 0.075 s at 4 against 0.082-0.092 s at 8 (more rows' curve lines and
#: pages in flight per update; best of 9, three alternating rounds).
BLOCK = 4

#: Upper bound on the bytes of one chunk's table of learning rates.
TABLE_BYTES = 16 << 20


@njit
def evaluate(kind, c, x, y):
    """``(f, ∂f/∂x, ∂f/∂y)`` at ``(x, y)`` as :mod:`engine.problems.analytic` computes them."""
    if kind == ROSENBROCK:
        t = y - x * x
        u = c[C1] - x
        loss = c[C100] * (c[C0] + t * t) + (c[C0] + u * u)
        return loss, (c[C_M400] * x) * t - c[C2] * u, c[C0] + c[C200] * t
    if kind == BEALE:
        v2 = y * y
        v3 = v2 * y
        a1 = c[C1_5] - x + x * y
        a2 = c[C2_25] - x + x * v2
        a3 = c[C2_625] - x + x * v3
        gx = c[C2] * (a1 * (y - c[C1]) + a2 * (v2 - c[C1]) + a3 * (v3 - c[C1]))
        gy = c[C2] * x * (a1 + c[C2] * y * a2 + c[C3] * v2 * a3)
        return a1 * a1 + a2 * a2 + a3 * a3, gx, gy
    if kind == HIMMELBLAU:
        p = x * x + y - c[C11]
        q = x + y * y - c[C7]
        return p * p + q * q, c[C4] * x * p + c[C2] * q, c[C2] * p + c[C4] * y * q
    x2 = x * x
    y2 = y * y
    terms = c[C0] + ((x2 - c[C16]) * x2 + c[C5] * x) + ((y2 - c[C16]) * y2 + c[C5] * y)
    gx = (x2 - c[C8]) * (c[C2] * x) + c[C2_5]
    gy = (y2 - c[C8]) * (c[C2] * y) + c[C2_5]
    return c[C_HALF] * terms, gx, gy


@njit_inline
def update(opt, flags, cons, r, k, bc2_sqrt, decay, first, p, g, a, b, c):
    """One element's update by family ``opt``, as its fused kernel computes it: returns the new
    parameter and state ``(p, a, b, c)``.

    ``a, b, c`` are the element's state (Adam: ``m, v, v_max``; SGD: the momentum buffer;
    RMSprop: ``v``, the centered mean, the momentum buffer; AdaGrad: the sum of squares);
    ``flags`` and the run's row of ``cons`` hold what the kernel takes as flags and constant
    columns, ``k``, ``bc2_sqrt``, ``decay`` its per-update columns."""
    if opt == ADAM:
        # flags: amsgrad, decay mode; cons: wd, w, |w| < ½, 1-w, β2, 1-β2, eps
        if flags[1] == DECOUPLED_DECAY:
            p = p * decay
        elif flags[1] == L2_DECAY:
            g = g + cons[r, 0] * p
        a = lerp(a, g, cons[r, 1], cons[r, 2] != 0, cons[r, 3])
        b = b * cons[r, 4] + (cons[r, 5] * g) * g
        v = b
        if flags[0]:
            c = maximum(c, b)
            v = c
        return p + (k * a) / (np.sqrt(v) / bc2_sqrt + cons[r, 6]), a, b, c
    if opt == SGD:
        # flags: momentum, nesterov, weight decay; cons: wd, μ, gain
        if flags[2]:
            g = g + cons[r, 0] * p
        d = g
        if flags[0]:
            a = g if first else a * cons[r, 1] + cons[r, 2] * g
            d = g + cons[r, 1] * a if flags[1] else a
        return p + k * d, a, b, c
    if opt == RMSPROP:
        # flags: centered, weight decay; cons: wd, α, 1-α, w, |w| < ½, 1-w, eps, μ, μ > 0
        if flags[1]:
            g = g + cons[r, 0] * p
        a = a * cons[r, 1] + (cons[r, 2] * g) * g
        if flags[0]:
            b = lerp(b, g, cons[r, 3], cons[r, 4] != 0, cons[r, 5])
            avg = np.sqrt(a - b * b) + cons[r, 6]
        else:
            avg = np.sqrt(a) + cons[r, 6]
        if cons[r, 8] != 0:
            c = c * cons[r, 7] + g / avg
            return p + k * c, a, b, c
        return p + (k * g) / avg, a, b, c
    # ADAGRAD — flags: weight decay; cons: wd, eps
    if flags[0]:
        g = g + cons[r, 0] * p
    a = a + g * g
    return p + (k * g) / (np.sqrt(a) + cons[r, 1]), a, b, c


def _kernel(opt: int) -> Any:
    """:func:`run_chunk` for the family ``opt`` (a compile-time constant: each family compiles
    only its own update, and only when a batch uses it; numba caches each on disk)."""

    @njit
    def run_chunk(
        kind, c, flags, cons, hp, bases, base_of, lrs, noise, state, params, start, stop,
        steps, blowup, cast, losses, px, py, gnorm, unorm, alive, stop_at, reason, dirty,
    ):  # fmt: skip
        """Updates ``start … stop-1`` of every live run, recording as the general loop records.

        Per update ``t``: the loss, gradient and trajectory at the current point (eval step ``t``),
        the gradient norm, the coefficients, the update, its norm, the loss after the last update,
        then the divergence check of :func:`engine.runner._check_divergence` on the latest loss and
        the new point (a loss above ``blowup · max(1, |first loss|)`` counts); a run that fails it
        stops there (its row is not stepped further).

        Coefficients are computed in float64 as the optimizers compute them — from ``lrs`` (the
        rate each update receives, ``(R, steps)``), ``hp`` (float64 hyper-parameters per run)
        and ``bases`` (per distinct β and update, ``base_of`` picks a run's row) — and rounded to
        the parameters' dtype through ``cast`` (a scratch array of that dtype), as ``put`` rounds
        them.

        ``dirty[r]`` accumulates ``v - v`` over every value written to row ``r``: it stays 0
        while they are all finite and becomes NaN with the first that is not, so the results
        need not scan the curves for non-finite values."""
        zero = c[C0]
        rows = params.shape[0]
        limits = np.empty(BLOCK)
        for block in range(0, rows, BLOCK):
            end = min(rows, block + BLOCK)
            for r in range(block, end):
                limits[r - block] = blowup * maximum(1.0, abs(losses[r, 0])) if start > 0 else 0.0
            for t in range(start, stop):
                for r in range(block, end):
                    if not alive[r]:
                        continue
                    x, y = params[r, 0], params[r, 1]
                    loss, gx, gy = evaluate(kind, c, x, y)
                    if noise.shape[1]:
                        gx = gx + noise[r, t - start, 0]
                        gy = gy + noise[r, t - start, 1]
                    losses[r, t] = loss
                    px[r, t] = x
                    py[r, t] = y
                    gn = np.sqrt(zero + gx * gx + gy * gy)
                    gnorm[r, t] = gn
                    lr = lrs[r, t]
                    if opt == ADAM:
                        cast[0] = -(lr / bases[0, base_of[r, 0], t - start])
                        cast[1] = bases[1, base_of[r, 1], t - start]
                        cast[2] = 1.0 - lr * hp[r, 0]
                    elif opt == ADAGRAD:
                        cast[0] = -(lr / (1 + (t + 1.0 - 1) * hp[r, 0]))
                    else:
                        cast[0] = -lr
                    k, bc2_sqrt, decay = cast[0], cast[1], cast[2]
                    first = t == 0
                    for j in range(2):  # one inlined update: half the compile time of two
                        params[r, j], state[0, r, j], state[1, r, j], state[2, r, j] = update(
                            opt, flags, cons, r, k, bc2_sqrt, decay, first, params[r, j],
                            gx if j == 0 else gy, state[0, r, j], state[1, r, j], state[2, r, j],
                        )  # fmt: skip
                    nx, ny = params[r, 0], params[r, 1]
                    dx, dy = nx - x, ny - y
                    un = np.sqrt(zero + dx * dx + dy * dy)
                    unorm[r, t] = un
                    dirty[r] += (loss - loss) + (x - x) + (y - y) + (gn - gn) + (un - un)
                    k_eval = t
                    if t + 1 == steps:
                        k_eval = steps
                        end_loss = evaluate(kind, c, nx, ny)[0]
                        losses[r, k_eval] = end_loss
                        px[r, k_eval] = nx
                        py[r, k_eval] = ny
                        dirty[r] += (end_loss - end_loss) + (nx - nx) + (ny - ny)
                    if t == 0:
                        limits[r - block] = blowup * maximum(1.0, abs(losses[r, 0]))
                    last = losses[r, k_eval]
                    code = 0
                    if not np.isfinite(last):
                        code = LOSS_NOT_FINITE
                    elif abs(last) > limits[r - block]:
                        code = LOSS_BLOWUP
                    elif not (np.isfinite(nx) and np.isfinite(ny)):
                        code = PARAMS_NOT_FINITE
                    if code:
                        if code == PARAMS_NOT_FINITE and t + 1 < steps:
                            # the general loop measures the next point before the others stop
                            losses[r, t + 1] = evaluate(kind, c, nx, ny)[0]
                            px[r, t + 1] = nx
                            py[r, t + 1] = ny
                            dirty[r] = np.nan  # nx or ny is not finite
                        alive[r] = False
                        reason[r] = code
                        stop_at[r] = t + 1 if code == PARAMS_NOT_FINITE else k_eval

    return run_chunk


#: The compiled loop of each family.
KERNELS = {opt: _kernel(opt) for opt in (SGD, ADAM, ADAGRAD, RMSPROP)}


def _f64(values: Sequence[float]) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


@dataclass
class Plan:
    """What the compiled loop needs of one batch besides the learning rates.

    ``betas`` are the per-run bases of the per-update powers (Adam's β1 and β2), for which
    :meth:`bases` computes ``1 - β1^t`` and ``√(1 - β2^t)`` once per distinct value."""

    kind: int
    opt: int
    flags: np.ndarray
    cons: np.ndarray
    hp: np.ndarray
    state: np.ndarray
    betas: np.ndarray
    #: Gradient noise σ and each run's noise stream (none when σ = 0).
    sigma: float = 0.0
    streams: list[np.random.Generator] = field(default_factory=list)

    def __post_init__(self) -> None:
        distinct = [np.unique(b, return_inverse=True) for b in self.betas]
        self.distinct = [d for d, _ in distinct]
        self.base_of = np.stack([i for _, i in distinct], axis=1).astype(np.int64)

    def bases(self, start: int, stop: int) -> np.ndarray:
        """``(2, B, stop-start)``: ``1 - β1^t`` and ``√(1 - β2^t)`` of updates ``start …`` in
        Python floats, as the optimizers compute them (C ``pow``; NumPy's vectorised ``power``
        may round differently)."""
        ts = [float(t) for t in range(start + 1, stop + 1)]
        width = max(1, max(d.size for d in self.distinct))
        out = np.ones((2, width, len(ts)))
        if self.opt == ADAM:
            b1, b2 = self.distinct
            out[0, : b1.size] = [[1.0 - float(b) ** t for t in ts] for b in b1]
            out[1, : b2.size] = [[(1.0 - float(b) ** t) ** 0.5 for t in ts] for b in b2]
        return out

    def noise(self, start: int, stop: int, dtype: np.dtype) -> np.ndarray:
        """``σ ξ_t`` of updates ``start … stop-1`` per run, ``(R, stop-start, 2)``: the next draws
        of each run's stream, as :meth:`AnalyticProblem._noise_at` draws them (two per update,
        scaled in the dtype); ``(R, 0, 2)`` without noise. Chunks must come in order."""
        if not self.streams:
            return np.zeros((self.state.shape[1], 0, 2), dtype=dtype)
        out = np.empty((len(self.streams), stop - start, 2), dtype=dtype)
        for row, rng in zip(out, self.streams, strict=True):
            rng.standard_normal(out=row.reshape(-1), dtype=dtype)
        out *= self.sigma
        return out


def plan(runs: Sequence[RunSpec], problem: Problem, reads_loss: bool) -> Plan | None:
    """The compiled loop's plan for this batch, or ``None`` when the general loop must step it."""
    first = runs[0]
    kind = PROBLEM_KINDS.get(first.problem.name)  # type: ignore[union-attr]
    if kind is None or problem.dim != 2 or reads_loss:
        return None
    found = _family(kind, runs, np.dtype(first.dtype))
    sigma = float(getattr(first.problem, "noise", 0.0))
    if found is not None and sigma > 0.0:
        found.sigma = sigma
        found.streams = [stream_rng(r.seed, STREAM_NOISE) for r in runs]
    return found


def _family(kind: int, runs: Sequence[RunSpec], dtype: np.dtype) -> Plan | None:
    """The plan of the optimizer family of ``runs``, if the compiled loop has it."""
    # the specs' fields as attributes: dumping 1,024 specs cost more than the rest of the plan
    fields = [r.optimizer.__dict__ for r in runs]
    name = fields[0]["name"]

    def column(key: str, part: int | None = None) -> np.ndarray:
        return _f64([f[key] if part is None else f[key][part] for f in fields])

    def nonzero(key: str) -> bool:
        return bool(np.any(column(key) != 0))

    state = np.zeros((3, len(runs), 2), dtype)
    wd = column("weight_decay") if "weight_decay" in fields[0] else None
    if name in ("adam", "adamw") and wd is not None:
        mode = NO_DECAY if not nonzero("weight_decay") else DECOUPLED_DECAY
        if mode and name == "adam":
            mode = L2_DECAY
        b1, b2 = column("betas", 0), column("betas", 1)
        w = lerp_columns(np.empty((len(runs), 1), dtype), (1.0 - b1)[:, None])
        parts = [wd, w["_w"], w["_w_small"], w["_w_rest"], b2, 1.0 - b2, column("eps")]
        cons = np.stack([np.asarray(x, dtype=dtype).ravel() for x in parts], axis=1)
        flags = np.array([fields[0]["amsgrad"], mode])
        return Plan(kind, ADAM, flags, cons, wd[:, None], state, np.stack([b1, b2]))
    if name == "sgd" and wd is not None:
        mu = column("momentum")
        gain = 1.0 - np.where(mu == 0, 0.0, column("dampening"))
        cons = np.stack([wd, mu, gain], axis=1).astype(dtype)
        flags = np.array([nonzero("momentum"), fields[0]["nesterov"], nonzero("weight_decay")])
        return Plan(kind, SGD, flags, cons, wd[:, None], state, np.zeros((2, len(runs))))
    if name == "rmsprop" and wd is not None:
        alpha, mu = column("alpha"), column("momentum")
        w = lerp_columns(np.empty((len(runs), 1), dtype), (1.0 - alpha)[:, None])
        mu_dtype = mu.astype(dtype)
        parts = [wd, alpha, 1.0 - alpha, w["_w"], w["_w_small"], w["_w_rest"], column("eps")]
        parts += [mu_dtype, mu_dtype > 0]
        cons = np.stack([np.asarray(x, dtype=dtype).ravel() for x in parts], axis=1)
        flags = np.array([fields[0]["centered"], nonzero("weight_decay")])
        return Plan(kind, RMSPROP, flags, cons, wd[:, None], state, np.zeros((2, len(runs))))
    if name == "adagrad" and wd is not None:
        cons = np.stack([wd, column("eps")], axis=1).astype(dtype)
        state[0] = column("initial_accumulator_value")[:, None]
        flags = np.array([nonzero("weight_decay")])
        hp = column("lr_decay")[:, None]
        return Plan(kind, ADAGRAD, flags, cons, hp, state, np.zeros((2, len(runs))))
    return None


def constants(dtype: np.dtype) -> np.ndarray:
    return np.array(CONSTANTS, dtype=dtype)


def chunk_limit(runs: int) -> int:
    """Most updates one chunk may cover (its rates, ``(R, T)`` float64: :data:`TABLE_BYTES`)."""
    return max(1, TABLE_BYTES // (8 * runs))
