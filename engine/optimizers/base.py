"""The optimizer interface: a pair of state transitions over a run-batched parameter buffer.

Shapes: ``params`` and ``grads`` are ``(R, N)`` — one flat row per run (``R = 1`` for a single
run). Every hyper-parameter, and the learning rate, is either a Python float (shared by all runs)
or an ``(R, 1)`` array (one value per run); :func:`hparam` normalises a spec value to that form.

``init(params) -> state`` builds the state (a dict of arrays, including the step count ``"t"``).
``update_(grads, state, params, lr)`` advances ``state`` and ``params`` in place and never
writes to ``grads``: the NumPy statement of the rule, the reference. ``fused_`` (same signature,
optional) is a compiled single-pass kernel that must equal ``update_`` bit for bit on the same
state; :attr:`Optimizer.fast_update_` is the hot path the run loop calls (``fused_`` where there is
one).
``update(grads, state, params, lr) -> (params, state)`` is the pure form (optax's signature):
it leaves its inputs untouched and returns new arrays.

Optimizers that evaluate the gradient more than once per step (L-BFGS with several inner
iterations or a line search) also carry ``step_(closure, state, params, lr)``, torch's
``step(closure)``: ``closure(point)`` returns the loss ``(R,)`` and gradient ``(R, N)`` at an
``(R, N)`` point (buffers the next call may overwrite); the run loop calls ``step_`` instead of
``update_`` and counts every call of the closure as one gradient evaluation.

A family may also carry ``recorded_(grads, state, params, lr, gnorm, unorm)``: its fused update
that also writes each run's ``‖grads[r]‖`` into ``gnorm[r]`` and ``‖Δparams[r]‖`` into
``unorm[r]`` as the run loop records them (:mod:`engine.recording`), in the same pass.

Optimizers whose gradient point is not the point they are judged at (the schedule-free methods:
gradients at ``y``, the model is ``x``) carry ``eval_params(state, params, out)``: it writes the
evaluation point into ``out`` (schedulefree's ``optimizer.eval()``); the run loop records losses,
test metrics and trajectories there.

Structure-aware factories take a keyword ``layout`` (:class:`engine.layout.Layout`): the named
tensors of the row, each seen as a view. ``matrix`` tensors are stored ``(fan_in, fan_out)``, the
transpose of torch's ``weight``; optimizers that read a matrix's shape work on the transposed view,
so that rows and columns mean what they mean in torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, NamedTuple

import numpy as np
from pydantic import Field

from engine.registry import Registry

State = dict[str, np.ndarray]
HParam = float | np.ndarray
InitFn = Callable[[np.ndarray], State]
UpdateFn = Callable[[np.ndarray, State, np.ndarray, HParam], None]
Closure = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
StepFn = Callable[[Closure, State, np.ndarray, HParam], None]
EvalParamsFn = Callable[[State, np.ndarray, np.ndarray], None]
RecordedFn = Callable[[np.ndarray, State, np.ndarray, HParam, np.ndarray, np.ndarray], None]
SGDArgsFn = Callable[[State, np.ndarray, HParam], tuple[Any, ...]]


def copy_state(state: State) -> State:
    """A deep copy: arrays, and the elements of object arrays (per-run histories) by ``copy()``."""
    out: State = {}
    for k, v in state.items():
        out[k] = v.copy()
        if v.dtype == object:
            for i, item in enumerate(v.flat):
                out[k].flat[i] = item.copy()
    return out


class Optimizer(NamedTuple):
    init: InitFn
    update_: UpdateFn
    #: The learning rate the spec names: the base a schedule scales, and the ``lr`` to pass to
    #: ``update_`` for a constant-rate run (a float or an ``(R, 1)`` column).
    lr: HParam = 1e-3
    #: The compiled equivalent of ``update_`` (bit-identical), or ``None``.
    fused_: UpdateFn | None = None
    #: torch's ``step(closure)`` form, for optimizers that choose where to evaluate the gradient.
    step_: StepFn | None = None
    #: Where the model is evaluated, when that is not ``params`` (schedule-free's ``x``).
    eval_params: EvalParamsFn | None = None
    #: ``fused_`` that also records the gradient and update norms (see the module docstring).
    recorded_: RecordedFn | None = None
    #: SGD's ``(state, params, lr) -> args``: advances the step count and returns the arguments of
    #: :func:`engine.optimizers.fused.sgd_step` after ``params, grads``, for a problem that
    #: applies the update itself run by run (:meth:`engine.problems.base.Problem.sgd_step`).
    sgd_args_: SGDArgsFn | None = None

    @property
    def fast_update_(self) -> UpdateFn:
        """The in-place update the run loop calls: ``fused_`` if the family has one."""
        return self.fused_ if self.fused_ is not None else self.update_

    def update(
        self, grads: np.ndarray, state: State, params: np.ndarray, lr: HParam
    ) -> tuple[np.ndarray, State]:
        new_params = params.copy()
        new_state = copy_state(state)
        self.update_(grads, new_state, new_params, lr)
        return new_params, new_state


OptimizerFactory = Callable[..., Optimizer]
OPTIMIZERS: Registry[OptimizerFactory] = Registry("optimizer")


def hparam(value: Any, dtype: Any = np.float64) -> HParam:
    """A hyper-parameter as the update functions take it: a float, or an ``(R, 1)`` array.

    Accepts a scalar, or a sequence / 1-D array of per-run values.
    """
    if np.ndim(value) == 0:
        return float(value)
    arr = np.asarray(value, dtype=dtype)
    return arr.reshape(-1, 1)


# Field types of the optimizers' spec models (each wrapped in ``Sweep[...]`` by the models).
#: A finite value > 0 (learning rates, epsilons).
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
#: A finite value >= 0 (weight decays, momentum_decay, lr_decay, accumulator start values).
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
#: A decay rate in [0, 1) (betas, momentum, alpha, rho).
Rate = Annotated[float, Field(ge=0, lt=1)]
#: A dampening factor in [0, 1].
Fraction = Annotated[float, Field(ge=0, le=1)]
#: ``(beta1, beta2)``.
Betas = tuple[Rate, Rate]
#: The length ``L`` of a sliding window (its buffers hold ``L`` copies of the parameters).
WindowLength = Annotated[int, Field(ge=1, le=1000)]
