"""The run loop: every run of an experiment goes through :func:`run_batch`.

Runs whose :func:`batch_key` agrees (same problem spec, optimizer family and flags, dtype, budget)
are stepped together along the run axis: one ``(R, N)`` parameter buffer, one problem instance
holding the R seeds, per-run hyper-parameters and learning rates as ``(R, 1)`` columns. Rows never
interact, so a run's numbers do not depend on which runs share its batch.

Per run and per update ``t`` the loop records the learning rate, the gradient norm and the update
norm; losses are recorded at *eval steps*: every step for a full-batch problem (the loss at the
start point and after each update, ``steps + 1`` values, all measured the way the gradient sees the
loss — e.g. batch statistics for a full-batch network with batchnorm) and every ``eval_every``
updates for a minibatch problem (the full training-set loss, inference mode). A run whose loss
or parameters become non-finite, or whose loss exceeds :data:`BLOWUP_FACTOR` times its start
value, is marked diverged and stops recording at that step; its test metrics are those of the
model at the update where the divergence was detected, which is where the run would end if it
were stepped alone (the rows of the batch that are still alive carry on).

With ``schedule_unit: "epoch"`` a schedule's ``t`` counts passes over the training data: every
update of epoch ``k`` uses ``lr_at(k)``, and a loss-reading schedule observes once per epoch the
mean of that epoch's minibatch losses (a full-batch problem's epoch is one update).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import TypeAdapter

from engine import compiled, recording
from engine.optimizers import batch_key as optimizer_batch_key
from engine.optimizers import build_optimizer_batch, steps_alone
from engine.problems import build_problem
from engine.schedules import Schedule, build_schedule
from engine.spec import RunSpec, is_minibatch

METRIC_KEYS = (
    "final_loss",
    "best_loss",
    "f_star",
    "suboptimality",
    "steps_to_target",
    "diverged",
    "divergence_step",
    "divergence_reason",
    "test_loss",
    "test_accuracy",
    "wall_time_s",
    "batch_size",
    "batch_wall_time_s",
    "steps_done",
    "grad_evals_done",
    "stopped",
)
EVAL_CURVES = ("eval_steps", "grad_evals", "losses", "wall_times", "params_x", "params_y")
UPDATE_CURVES = ("lrs", "grad_norms", "update_norms")
CURVE_KEYS = EVAL_CURVES + UPDATE_CURVES

#: Upper bound on the bytes of one batch's ``(R, N)`` parameter buffer (see :func:`batch_capacity`).
BATCH_BYTES = 512 * 1024
#: The same for runs stepped run by run (:mod:`engine.problems.mlp_step`).
RUN_BY_RUN_BATCH_BYTES = 1_250_000

#: A loss above this multiple of ``max(1, |initial loss|)`` counts as a blow-up.
BLOWUP_FACTOR = 1e10

Checkpoint = Callable[[list[dict[str, Any]]], None]
#: Dumps a batch's specs in one call (a fifth faster than one dump per run).
_RUN_SPECS: TypeAdapter[list[RunSpec]] = TypeAdapter(list[RunSpec])
StopCheck = Callable[[], bool]


def batch_key(run: RunSpec) -> tuple[Any, ...]:
    """Runs with equal keys can be stepped together along the run axis."""
    return (
        run.problem.model_dump_json(),
        optimizer_batch_key(run.optimizer),
        run.dtype,
        run.steps,
        run.eval_every,
        run.max_grad_evals,
    )


def batch_capacity(run: RunSpec) -> int:
    """How many runs like ``run`` one batch steps together.

    Stepping is memory-bound once a batch's buffers leave the cache: a 64-run MLP sweep ran ~25 %
    faster as batches of 8–16 runs than as one batch of 64 (measured on 2 cores, 2 MiB L2), so a
    batch's parameter buffer is capped at :data:`BATCH_BYTES`. A batch stepped run by run keeps
    each run's products and passes in cache whatever its size, and larger batches save per-step
    work: the same sweep ran ~5 % faster as two batches of 32 than as five of 13 (the cap
    :data:`RUN_BY_RUN_BATCH_BYTES`).
    """
    if steps_alone(run.optimizer):
        return 1
    row = max(run.num_params(), 1) * np.dtype(run.dtype).itemsize
    by_run = getattr(run.problem, "steps_run_by_run", None)
    budget = RUN_BY_RUN_BATCH_BYTES if by_run is not None and by_run(run.dtype) else BATCH_BYTES
    return max(1, budget // row)


def estimate_cost(run: RunSpec) -> float:
    """A relative cost (≈ steps × parameters × examples per step) for grouping runs into tasks."""
    examples = getattr(run.problem, "batch_size", None) or 1
    return float(run.steps) * max(run.num_params(), 1) * max(examples, 1) ** 0.5


def _curve(values: np.ndarray) -> np.ndarray:
    """A float curve as results carry it: float64, NaN wherever the value is not finite (the
    ``null`` of JSON and of the store). Curves stay arrays until a consumer encodes them (the
    store packs their bytes, the CLI writes them with :func:`jsonable`): turning millions of
    values into Python floats was a third of a small sweep's time."""
    if np.isfinite(values).all():
        return values
    return np.where(np.isfinite(values), values, np.nan)


def plain_result(result: dict[str, Any]) -> dict[str, Any]:
    """A result as JSON carries it: every curve a list, ``None`` for a non-finite value."""
    return {k: jsonable(v) if isinstance(v, np.ndarray) else v for k, v in result.items()}


def jsonable(value: np.ndarray) -> list[Any]:
    """A curve array as a JSON list: ``None`` for NaN."""
    out: list[Any] = value.tolist()
    if value.dtype.kind == "f":
        for i in np.flatnonzero(np.isnan(value)).tolist():
            out[i] = None
    return out


def _num(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None  # math's: a tenth of NumPy's cost on a scalar


@dataclass
class _Recorder:
    """Preallocated per-batch traces; row ``r`` belongs to run ``r`` of the batch."""

    runs: Sequence[RunSpec]
    n_evals: int
    traj: bool
    R: int = field(init=False)

    def __post_init__(self) -> None:
        self.R = len(self.runs)
        steps = self.runs[0].steps
        self.eval_steps = np.zeros(self.n_evals, dtype=np.int64)
        # Per-run traces are read only where they were written (a run's first ``n`` eval points
        # and ``steps_done`` updates), so they start uninitialised: filling them cost a pass
        # over every buffer.
        self.losses = np.empty((self.R, self.n_evals))
        self.wall = np.zeros(self.n_evals)
        self.px = np.empty((self.R, self.n_evals)) if self.traj else None
        self.py = np.empty((self.R, self.n_evals)) if self.traj else None
        self.lrs = np.empty((self.R, steps))
        self.gnorm = np.empty((self.R, steps))
        self.unorm = np.empty((self.R, steps))
        #: gradient evaluations consumed by the first ``u`` updates, ``u = 0 … steps``
        self.evals = np.zeros(steps + 1, dtype=np.int64)
        self.n_eval = 0  # eval points recorded so far
        self.stop_at = np.full(self.R, -1, dtype=np.int64)  # update count at divergence, or -1
        self.reason: list[str | None] = [None] * self.R
        self.test: dict[str, np.ndarray] = {}
        #: ``BLOWUP_FACTOR · max(1, |initial loss|)`` per run, once the start point is recorded.
        self.blowup_limit: np.ndarray | None = None
        #: Rows whose every value written so far to the curves other than ``lrs`` is finite,
        #: when the loop that writes them keeps track (else the results check the curves).
        self.finite_rows: np.ndarray | None = None
        #: The runs' specs as JSON, made once for every checkpoint's results.
        self.specs: list[dict[str, Any]] | None = None

    def keep_test(self, metrics: dict[str, np.ndarray], rows: np.ndarray) -> None:
        """Record the test metrics (``(R,)`` each) of the runs in ``rows``."""
        for key, values in metrics.items():
            self.test.setdefault(key, np.full(self.R, np.nan))[rows] = values[rows]

    def eval_point(self, step: int, loss: np.ndarray, params: np.ndarray, t0: float) -> None:
        k = self.n_eval
        self.eval_steps[k] = step
        self.losses[:, k] = loss
        self.wall[k] = time.perf_counter() - t0
        if self.px is not None and self.py is not None:
            self.px[:, k] = params[:, 0]
            self.py[:, k] = params[:, 1]
        self.n_eval += 1

    def results(self, f_star: float | None, updates: int, stopped: bool) -> list[dict[str, Any]]:
        """Every run's result after ``updates`` updates (partial while the batch is running).

        Times are amortised: the R runs of a batch are stepped together, each row costing the
        same, so a run's ``wall_time_s`` (and each point of ``wall_times``) is the batch's elapsed
        time at the run's last (each) eval point divided by R. ``batch_wall_time_s`` is that
        elapsed time itself and ``batch_size`` is R, so the per-run times of a batch sum to its
        time (less, when some runs diverged early), not to R times it.

        Curves are NumPy arrays (``eval_steps``/``grad_evals`` int64, the rest float64 with NaN
        for a non-finite value), mostly views of the recorder's buffers: the part a result shows
        is never written again, so a partial result stays valid while the batch goes on. What
        can be is computed for all rows at once (a sweep has thousands of short runs): a row
        whose sum is finite (or that :attr:`finite_rows` vouches for) has only finite values, the
        others are checked value by value.
        """
        m = self.n_eval
        eval_steps = self.eval_steps[:m]
        steps_done = np.where(self.stop_at >= 0, self.stop_at, updates)
        shown = np.searchsorted(eval_steps, steps_done, side="right")
        grad_evals = self.evals[eval_steps]
        wall_times = self.wall[:m] / self.R
        losses = self.losses[:, :m]
        evals_at = {"losses": losses}
        if self.px is not None and self.py is not None:
            evals_at |= {"params_x": self.px[:, :m], "params_y": self.py[:, :m]}
        per_update = {"lrs": self.lrs, "grad_norms": self.gnorm, "update_norms": self.unorm}
        per_update = {k: v[:, :updates] for k, v in per_update.items()}
        curves = evals_at | per_update
        known = self.finite_rows
        scanned = curves if known is None else {"lrs": per_update["lrs"]}
        with np.errstate(over="ignore", invalid="ignore"):
            clean = {k: np.isfinite(v.sum(axis=1)) for k, v in scanned.items()}
        if known is not None:
            clean |= {k: known for k in curves if k not in clean}
        lowest = losses.min(axis=1) if m else np.full(self.R, np.nan)
        targets = np.array([np.nan if r.target_loss is None else r.target_loss for r in self.runs])
        if np.isnan(targets).all():  # no run has a target: nothing to search for
            first_hit = np.full(self.R, m)
        else:
            hits = losses <= targets[:, None]
            first_hit = np.where(hits.any(axis=1), hits.argmax(axis=1), m)
        if self.specs is None:
            self.specs = _RUN_SPECS.dump_python(list(self.runs), mode="json")
        # Per-run values as Python objects and rows as views, made for all runs at once: a
        # sweep has thousands of short runs, and indexing arrays run by run cost more than the
        # results' other work.
        finals = losses[np.arange(self.R), np.maximum(shown - 1, 0)] if m else lowest
        finals = np.where(shown > 0, finals, np.nan).tolist()
        rows = {k: list(v) for k, v in (evals_at | per_update).items()}
        is_clean = {k: v.tolist() for k, v in clean.items()}
        stop_at, walls, evals = self.stop_at.tolist(), self.wall[:m].tolist(), self.evals.tolist()
        steps_of = eval_steps.tolist()
        whole = (eval_steps, grad_evals, wall_times)
        out = []
        for r, (run, done, n, hit, low) in enumerate(
            zip(self.runs, steps_done.tolist(), shown.tolist(), first_hit.tolist(),
                lowest.tolist(), strict=True)
        ):  # fmt: skip
            diverged = stop_at[r] >= 0
            if is_clean["losses"][r] and n == m:
                best = low
            else:
                finite = losses[r, :n][np.isfinite(losses[r, :n])]
                best = float(finite.min()) if finite.size else float("nan")
            batch_time = walls[n - 1] if n else 0.0
            result: dict[str, Any] = {
                "run_id": run.run_id,
                "spec": self.specs[r],
                "final_loss": _num(finals[r]),
                "best_loss": _num(best),
                "f_star": f_star,
                "suboptimality": _num(finals[r] - f_star) if f_star is not None else None,
                "steps_to_target": steps_of[hit] if hit < n else None,
                "diverged": diverged,
                "divergence_step": done if diverged else None,
                "divergence_reason": self.reason[r],
                "test_loss": None,
                "test_accuracy": None,
                "wall_time_s": batch_time / self.R,
                "batch_size": self.R,
                "batch_wall_time_s": batch_time,
                "steps_done": done,
                "grad_evals_done": evals[done],
            }
            result.update(
                stopped=stopped,
                eval_steps=whole[0] if n == m else eval_steps[:n],
                grad_evals=whole[1] if n == m else grad_evals[:n],
                wall_times=whole[2] if n == m else wall_times[:n],
            )
            for key in evals_at:
                row = rows[key][r] if n == m else rows[key][r][:n]
                result[key] = row if is_clean[key][r] else _curve(row)
            for key in per_update:
                row = rows[key][r] if done == updates else rows[key][r][:done]
                result[key] = row if is_clean[key][r] else _curve(row)
            for key, values in self.test.items():
                result[key] = _num(float(values[r]))
            out.append(result)
        return out


def _run_group(
    runs: Sequence[RunSpec],
    on_checkpoint: Checkpoint | None,
    checkpoint_every_s: float,
    should_stop: StopCheck | None,
) -> list[dict[str, Any]]:
    first = runs[0]
    steps, every, budget = first.steps, first.eval_every, first.max_grad_evals
    minibatch = is_minibatch(first.problem)
    dtype = np.dtype(first.dtype)
    problem = build_problem(first.problem, [r.seed for r in runs], dtype)
    optimizer = build_optimizer_batch([r.optimizer for r in runs], layout=problem.layout)
    schedules = [build_schedule(r.schedule, base_lr=r.optimizer.lr) for r in runs]
    loss_driven = [i for i, s in enumerate(schedules) if s.reads_loss]
    period = [problem.steps_per_epoch if r.schedule_unit == "epoch" else 1 for r in runs]
    lr_table = np.empty((len(runs), steps))
    for row, schedule, p in zip(lr_table, schedules, period, strict=True):
        row[:] = _lrs(schedule, steps, p)
    period_loss = np.zeros(len(runs))
    lr_col = np.empty((len(runs), 1), dtype=dtype)

    n_evals = steps + 1 if not minibatch else steps // every + 1 + (steps % every != 0)
    rec = _Recorder(runs, n_evals, traj=problem.dim == 2)
    params = problem.init_params()
    state = optimizer.init(params)
    prev = np.empty_like(params)
    alive = np.ones(len(runs), dtype=bool)
    f_star = problem.f_star
    # The model as evaluated: params itself, or the optimizer's evaluation point (schedule-free x).
    model = params if optimizer.eval_params is None else np.empty_like(params)

    def judged() -> np.ndarray:
        if optimizer.eval_params is not None:
            optimizer.eval_params(state, params, model)
        return model

    def eval_loss(step: int) -> np.ndarray:
        """The loss recorded at eval step ``step`` where no gradient was taken at the same point:
        the full training loss (inference mode) for a minibatch problem, the loss the gradient
        sees for a full-batch one."""
        point = judged()
        return problem.loss(point) if minibatch else problem.loss_and_grad(point, step)[0]

    def checkpoint(updates: int) -> bool:
        """Partial results to ``on_checkpoint``; returns whether to stop."""
        if on_checkpoint is not None:
            on_checkpoint(rec.results(f_star, updates, False))
        return should_stop is not None and should_stop()

    compiled_plan = None
    # SGD applied by the problem run by run as it computes each gradient (the same numbers): the
    # minibatch problems that offer it, when no schedule reads the loss (the update's rate is then
    # known before its gradient)
    fuse_sgd = minibatch and problem.fuses_sgd and params.flags.c_contiguous and not loss_driven
    sgd_args = optimizer.sgd_args_ if fuse_sgd and optimizer.eval_params is None else None
    if not minibatch and optimizer.step_ is None and optimizer.eval_params is None:
        compiled_plan = compiled.plan(runs, problem, bool(loss_driven))
    t0 = time.perf_counter()
    next_checkpoint = t0 + checkpoint_every_s
    stopped = exhausted = False
    updates = 0
    with np.errstate(all="ignore"):
        if compiled_plan is not None:
            updates, stopped, exhausted = _step_compiled(
                compiled_plan, rec, params, lr_table, alive, budget, t0, checkpoint,
                checkpoint_every_s,
            )  # fmt: skip
        else:
            if minibatch:
                rec.eval_point(0, eval_loss(0), model, t0)
            for t in range(steps):
                if budget is not None and rec.evals[t] >= budget:
                    exhausted = True
                    break
                if not minibatch and optimizer.eval_params is not None:
                    rec.eval_point(t, eval_loss(t), model, t0)
                loss: np.ndarray | None
                if sgd_args is not None:  # the problem computes the gradient with the update
                    loss, calls = None, 1
                elif optimizer.step_ is None:
                    loss, grad = problem.loss_and_grad(params, t)
                    calls = 1
                else:
                    # torch's step(closure): the first evaluation at params is the one recorded
                    loss = problem.loss_and_grad(params, t)[0].copy() if not minibatch else None
                    calls = 0
                if not minibatch and optimizer.eval_params is None:
                    assert loss is not None
                    rec.eval_point(t, loss, params, t0)
                if loss_driven:
                    for i in loss_driven:
                        lr_table[i, t] = schedules[i].lr_at(t // period[i])
                lr_col[:, 0] = lr_table[:, t]
                rec.lrs[:, t] = lr_table[:, t]
                gnorm, unorm = rec.gnorm[:, t], rec.unorm[:, t]
                if sgd_args is not None:
                    sgd = sgd_args(state, params, lr_col)
                    loss = problem.sgd_step(params, t, sgd, gnorm, unorm)
                elif optimizer.step_ is None:
                    if optimizer.recorded_ is not None:
                        optimizer.recorded_(grad, state, params, lr_col, gnorm, unorm)
                    else:
                        recording.before_update(grad, params, prev, gnorm)
                        optimizer.fast_update_(grad, state, params, lr_col)
                        recording.after_update(params, prev, unorm)
                else:
                    np.copyto(prev, params)

                    def closure(
                        point: np.ndarray, t: int = t, gnorm: np.ndarray = gnorm
                    ) -> tuple[np.ndarray, np.ndarray]:
                        nonlocal calls, loss
                        value, g = problem.loss_and_grad(point, t)
                        if calls == 0:
                            recording.row_norms(g, gnorm)
                            loss = value.copy()
                        calls += 1
                        return value, g

                    optimizer.step_(closure, state, params, lr_col)
                    recording.after_update(params, prev, unorm)
                rec.evals[t + 1] = rec.evals[t] + calls
                updates = t + 1
                if loss is not None:
                    for i in loss_driven:
                        period_loss[i] += loss[i]
                        if updates % period[i] == 0:
                            schedules[i].observe(float(period_loss[i] / period[i]))
                            period_loss[i] = 0.0
                if updates == steps or (minibatch and updates % every == 0):
                    rec.eval_point(updates, eval_loss(updates), model, t0)
                # a finite update norm means finite parameters (inf or NaN on either side of the
                # difference gives one too), so the check need not sum them
                stepped_finite = optimizer.eval_params is None and np.isfinite(unorm).all()
                newly = _check_divergence(rec, alive, judged(), updates, bool(stepped_finite))
                if newly.size:
                    rec.keep_test(problem.test_metrics(model), newly)
                if not alive.any():
                    break
                if time.perf_counter() >= next_checkpoint:
                    if checkpoint(updates):
                        stopped = True
                        break
                    next_checkpoint = time.perf_counter() + checkpoint_every_s
        ending = np.flatnonzero(alive)
        if (stopped or exhausted) and rec.eval_steps[rec.n_eval - 1] != updates:
            rec.eval_point(updates, eval_loss(updates), model, t0)
            _check_divergence(rec, alive, model, updates)
        if ending.size:
            rec.keep_test(problem.test_metrics(judged()), ending)
    results = rec.results(f_star, updates, stopped)
    if on_checkpoint is not None:
        on_checkpoint(results)
    return results


def _step_compiled(
    plan: compiled.Plan,
    rec: _Recorder,
    params: np.ndarray,
    lr_table: np.ndarray,
    alive: np.ndarray,
    budget: int | None,
    t0: float,
    checkpoint: Callable[[int], bool],
    checkpoint_every_s: float,
) -> tuple[int, bool, bool]:
    """Step a full-batch batch through the compiled loop (:data:`engine.compiled.KERNELS`), chunk
    by chunk; returns ``(updates, stopped, exhausted)`` as the general loop would have left them.

    A chunk ends at the next checkpoint as timed from the previous chunk's pace (its table of
    rates bounded by :func:`engine.compiled.chunk_limit`). Wall times of the eval points inside a
    chunk are spread evenly over the chunk's time, every update of a chunk costing the same."""
    R, steps = lr_table.shape
    end = steps if budget is None else min(steps, budget)
    dtype = params.dtype
    consts = compiled.constants(dtype)
    reason = np.zeros(R, dtype=np.int64)
    dirty = np.zeros(R)
    cast = np.empty(3, dtype=dtype)
    longest = compiled.chunk_limit(R)
    size = 1  # the first chunk times an update
    traj_x = rec.px if rec.px is not None else np.empty_like(rec.losses)
    traj_y = rec.py if rec.py is not None else np.empty_like(rec.losses)
    # the rates as the optimizer receives them: rounded to the dtype
    received = lr_table if dtype == np.float64 else lr_table.astype(dtype).astype(np.float64)
    rec.lrs = lr_table  # no schedule reads the loss: the table is what the runs get
    updates = 0
    began = time.perf_counter()
    next_checkpoint = t0 + checkpoint_every_s
    while updates < end:
        stop = min(end, updates + size)
        compiled.KERNELS[plan.opt](
            plan.kind, consts, plan.flags, plan.cons, plan.hp,
            plan.bases(updates, stop), plan.base_of, received,
            plan.noise(updates, stop, dtype), plan.state, params, updates,
            stop, steps, BLOWUP_FACTOR, cast, rec.losses, traj_x, traj_y, rec.gnorm,
            rec.unorm, alive, rec.stop_at, reason, dirty,
        )  # fmt: skip
        rec.finite_rows = dirty == 0
        now = time.perf_counter()
        points = stop + (stop == steps)  # eval steps 0 … stop-1, and the last point at the end
        rec.eval_steps[updates:points] = np.arange(updates, points)
        share = np.arange(1, points - updates + 1) / (points - updates)
        rec.wall[updates:points] = (began - t0) + share * (now - began)
        rec.evals[updates + 1 : stop + 1] = np.arange(updates + 1, stop + 1)
        rec.n_eval = points
        for r in np.flatnonzero(reason).tolist():
            if rec.reason[r] is None:
                rec.reason[r] = _reason(int(reason[r]), rec.losses[r, rec.stop_at[r]])
        pace = (now - began) / (stop - updates)
        updates, began = stop, now
        if not alive.any():
            # the general loop stops after the update that stopped the last run
            params_bad = reason == compiled.PARAMS_NOT_FINITE
            ended = np.where(params_bad, rec.stop_at, np.minimum(rec.stop_at + 1, steps))
            updates = int(ended.max())
            rec.n_eval = updates + (updates == steps)
            return updates, False, False
        if now >= next_checkpoint:
            if checkpoint(updates):
                return updates, True, False
            began = time.perf_counter()
            next_checkpoint = began + checkpoint_every_s
        size = int(min(longest, max(1.0, (next_checkpoint - began) / max(pace, 1e-12))))
    return updates, False, end < steps


def _reason(code: int, loss: float) -> str:
    if code == compiled.LOSS_NOT_FINITE:
        return f"loss became {loss}"
    if code == compiled.LOSS_BLOWUP:
        return f"loss exceeded {BLOWUP_FACTOR:g} × max(1, |initial loss|)"
    return "parameters became non-finite"


def _lrs(schedule: Schedule, steps: int, period: int) -> np.ndarray:
    """The lrs of updates ``0 .. steps-1`` when the schedule's ``t`` counts blocks of ``period``
    updates (epochs): every update of block ``k`` uses ``lr_at(k)``."""
    if period == 1:
        return schedule.preview(steps).astype(np.float64, copy=False)
    lrs = np.repeat(schedule.preview(-(-steps // period)), period)[:steps]
    return lrs.astype(np.float64, copy=False)


def _check_divergence(
    rec: _Recorder, alive: np.ndarray, params: np.ndarray, updates: int, finite: bool = False
) -> np.ndarray:
    """Mark runs whose latest loss or parameters went bad; returns their row indices.

    A bad loss stops the run at the eval step that recorded it; non-finite parameters (seen before
    their loss is evaluated) stop it at ``updates``. ``finite``: the caller knows every parameter
    is finite.
    """
    k = rec.n_eval - 1
    last = rec.losses[:, k]
    if rec.blowup_limit is None:
        rec.blowup_limit = BLOWUP_FACTOR * np.maximum(1.0, np.abs(rec.losses[:, 0]))
    limit = rec.blowup_limit
    # The common case in few operations: every loss within a finite limit (so finite) and a
    # finite sum of the parameters (so every parameter finite; an overflowing sum of finite
    # values merely takes the full check below).
    within = (np.abs(last) <= limit).all() and np.isfinite(limit).all()
    if within and (finite or np.isfinite(params.sum())):
        return np.empty(0, dtype=np.intp)
    bad_loss = ~np.isfinite(last)
    blowup = np.abs(last) > limit
    bad_params = ~np.isfinite(params).all(axis=1)
    newly = np.flatnonzero(alive & (bad_loss | blowup | bad_params))
    for r in newly:
        if bad_loss[r] or blowup[r]:
            rec.stop_at[r] = rec.eval_steps[k]
            code = compiled.LOSS_NOT_FINITE if bad_loss[r] else compiled.LOSS_BLOWUP
            rec.reason[r] = _reason(code, last[r])
        else:
            rec.stop_at[r] = updates
            rec.reason[r] = _reason(compiled.PARAMS_NOT_FINITE, last[r])
    alive[newly] = False
    return newly


def run_batch(
    runs: Sequence[RunSpec],
    *,
    on_checkpoint: Checkpoint | None = None,
    checkpoint_every_s: float = 2.0,
    should_stop: StopCheck | None = None,
) -> list[dict[str, Any]]:
    """Run every run (batched where :func:`batch_key` allows); results in input order.

    ``on_checkpoint`` receives partial results of the batch being stepped about every
    ``checkpoint_every_s`` seconds, and its final results when it ends; ``should_stop`` is polled at
    the same moments and stops the remaining updates (results then carry ``stopped: true``).
    """
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, run in enumerate(runs):
        groups.setdefault(batch_key(run), []).append(i)
    batches = [
        indices[start : start + batch_capacity(runs[indices[0]])]
        for indices in groups.values()
        for start in range(0, len(indices), batch_capacity(runs[indices[0]]))
    ]
    results: list[dict[str, Any] | None] = [None] * len(runs)
    halted = False
    for indices in batches:
        group = [runs[i] for i in indices]
        if halted:
            out = [_unstarted(run) for run in group]
        else:
            out = _run_group(group, on_checkpoint, checkpoint_every_s, should_stop)
            halted = any(r["stopped"] for r in out)
        for i, res in zip(indices, out, strict=True):
            results[i] = res
    return [r for r in results if r is not None]


def _unstarted(run: RunSpec) -> dict[str, Any]:
    result: dict[str, Any] = dict.fromkeys(METRIC_KEYS)
    result.update(run_id=run.run_id, spec=run.model_dump(mode="json"), diverged=False)
    result.update(steps_done=0, grad_evals_done=0, stopped=True, wall_time_s=0.0)
    result.update(eval_steps=np.empty(0, dtype=np.int64), grad_evals=np.empty(0, dtype=np.int64))
    result.update({k: np.empty(0) for k in ("losses", "wall_times", *UPDATE_CURVES)})
    return result


def run_one(run: RunSpec) -> dict[str, Any]:
    """The plain path: a single run stepped alone (``R = 1``)."""
    return run_batch([run])[0]
