"""The compiled training step of a one-hidden-layer ReLU classifier equals the NumPy path.

:func:`engine.problems.mlp_step.loss_and_grad` must give the losses and gradients of
:meth:`Network.forward`, :meth:`Network.data_loss` and :meth:`Network.backward` bit for bit, for
any number of runs, minibatches and the full batch, and parameters large enough for the losses to
overflow or turn NaN; and it must be used exactly where it applies.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import TypeAdapter

from engine.layers.blas import dgemm_address
from engine.optimizers import build_optimizer
from engine.problems import ProblemSpec, build_problem
from engine.problems.learning import SupervisedProblem
from engine.problems.mlp_step import compiled_step_applies, evaluate, loss_and_grad
from engine.problems.network import Network
from engine.spec import expand, parse_experiment
from tests.engine.test_runner import without_times
from tests.results import plain_batch, plain_one

SPEC: TypeAdapter[Any] = TypeAdapter(ProblemSpec)
pytestmark = pytest.mark.skipif(dgemm_address() is None, reason="NumPy's BLAS not found")


def numpy_step(net: Network, params: np.ndarray, x1: np.ndarray, target: np.ndarray) -> Any:
    ws = net.workspace()
    grad = np.full_like(params, np.nan)
    out, tape = net.forward(params, x1, training=True, ws=ws)
    loss, dout = net.data_loss(out, target, grad=True)
    assert dout is not None
    net.backward(params, dout, tape, grad, ws=ws)
    return loss, grad


def same_bits(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_array_equal(np.ascontiguousarray(a).view(np.uint8), b.view(np.uint8))


@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value encountered")
@pytest.mark.parametrize("runs", [1, 2, 5])
@pytest.mark.parametrize("sizes", [(64, 64, 10, 64), (7, 3, 2, 300), (13, 40, 5, 2)])
def test_compiled_step_equals_the_numpy_path(runs: int, sizes: tuple[int, int, int, int]) -> None:
    n_in, hidden, classes, batch = sizes
    net = Network(n_in, [hidden], classes)
    assert compiled_step_applies(net, batch, np.dtype(np.float64))
    rng = np.random.default_rng(runs * 1000 + n_in)
    params = net.init(list(range(runs)), np.dtype(np.float64))
    params[-1] *= 1e155  # the last run's losses overflow
    x1 = np.ones((batch, n_in + 1))
    x1[:, :-1] = rng.standard_normal((batch, n_in))
    labels = rng.integers(0, classes, batch)
    target = (labels == np.arange(classes)[:, None]).astype(np.float64)
    with np.errstate(all="ignore"):
        want_loss, want_grad = numpy_step(net, params, x1, target)
        grad = np.full_like(params, np.nan)
        loss = loss_and_grad(net, params, x1, target, grad, net.workspace())
    same_bits(loss, want_loss)
    same_bits(grad, want_grad)
    if runs > 1:
        assert np.isfinite(loss[:-1]).all() and not np.isfinite(want_grad[-1]).all()


@pytest.mark.parametrize(
    "problem",
    [
        {"name": "mlp", "dataset": "digits", "hidden": [32], "batch_size": 16},
        {"name": "mlp", "dataset": "wine", "hidden": [8]},
    ],
)
def test_problems_step_the_same_with_and_without_the_compiled_step(problem: dict[str, Any]) -> None:
    seeds = [3, 3, 3]
    fast = build_problem(SPEC.validate_python(problem), seeds, np.float64)
    slow = build_problem(SPEC.validate_python(problem), seeds, np.float64)
    assert isinstance(fast, SupervisedProblem) and isinstance(slow, SupervisedProblem)
    assert fast._compiled_step
    slow._compiled_step = False
    params = fast.init_params()
    strided = np.repeat(params, 2, axis=1)[:, ::2]  # a point an optimizer may hand the problem
    same_bits(fast.loss_and_grad(strided, 0)[1], slow.loss_and_grad(params, 0)[1])
    for step in range(3):
        loss, grad = fast.loss_and_grad(params, step)
        want_loss, want_grad = slow.loss_and_grad(params, step)
        same_bits(loss, want_loss)
        same_bits(grad, want_grad)
        params = params - 0.1 * grad


def mlp(**fields: Any) -> dict[str, Any]:
    return {"name": "mlp", "dataset": "digits", "hidden": [32], **fields}


@pytest.mark.parametrize(
    ("problem", "seeds", "dtype"),
    [
        (mlp(batchnorm=True), [0], "float64"),
        (mlp(activation="tanh"), [0], "float64"),
        (mlp(hidden=[32, 16]), [0], "float64"),
        (mlp(dataset="diabetes"), [0], "float64"),
        (mlp(), [0], "float32"),
        (mlp(hidden=[1]), [0], "float64"),
        (mlp(batch_size=1), [0], "float64"),
        (mlp(batch_size=8), [0, 1], "float64"),
        ({"name": "logistic_regression", "dataset": "digits"}, [0], "float64"),
    ],
)
def test_the_compiled_step_is_used_only_where_it_applies(
    problem: dict[str, Any], seeds: list[int], dtype: str
) -> None:
    built = build_problem(SPEC.validate_python(problem), seeds, np.dtype(dtype))
    assert isinstance(built, SupervisedProblem)
    assert not built._compiled_step


@pytest.mark.parametrize(
    ("problem", "dtype"),
    [
        (mlp(), "float64"),
        (mlp(hidden=[64], batch_size=64), "float64"),
        (mlp(), "float32"),
        (mlp(batchnorm=True), "float64"),
        (mlp(activation="tanh"), "float64"),
        (mlp(hidden=[32, 16]), "float64"),
        (mlp(dataset="diabetes"), "float64"),
    ],
)
def test_the_batch_sizing_rule_agrees_with_the_compiled_step(
    problem: dict[str, Any], dtype: str
) -> None:
    """:meth:`MLPSpec.steps_run_by_run` (which sizes batches for the compiled step) says yes
    exactly where one run's built problem takes it (sizes of 2 and more, shared batches)."""
    spec = SPEC.validate_python(problem)
    built = build_problem(spec, [0], np.dtype(dtype))
    assert isinstance(built, SupervisedProblem)
    assert spec.steps_run_by_run(dtype) == bool(built._compiled_step)


SGD_VARIANTS = [
    {"momentum": 0.9},
    {"momentum": 0.5, "dampening": 0.3, "weight_decay": 0.01},
    {"momentum": 0.9, "nesterov": True},
    {},
]


@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value encountered")
@pytest.mark.parametrize("sgd", SGD_VARIANTS)
def test_sgd_step_equals_the_gradient_then_the_recorded_update(sgd: dict[str, Any]) -> None:
    """:meth:`SupervisedProblem.sgd_step` gives the losses, parameters, state and norms of
    ``loss_and_grad`` followed by SGD's ``recorded_``, bit for bit, also for a run that diverges."""
    problem = SPEC.validate_python(mlp(hidden=[16], batch_size=24))
    lrs = [1e-3, 0.3, 1e305]  # the last run overflows
    fused_problem, plain_problem = (build_problem(problem, [5] * 3, np.float64) for _ in range(2))
    assert fused_problem.fuses_sgd
    opt = build_optimizer({"name": "sgd", **sgd})
    params = fused_problem.init_params()
    want_params, state, want_state = params.copy(), opt.init(params), opt.init(params)
    lr = np.array(lrs)[:, None]
    norms, want_norms = np.empty((2, 3)), np.empty((2, 3))
    assert opt.sgd_args_ is not None and opt.recorded_ is not None
    with np.errstate(all="ignore"):
        for step in range(6):
            sgd_args = opt.sgd_args_(state, params, lr)
            loss = fused_problem.sgd_step(params, step, sgd_args, norms[0], norms[1])
            want_loss, grad = plain_problem.loss_and_grad(want_params, step)
            opt.recorded_(grad, want_state, want_params, lr, want_norms[0], want_norms[1])
            same_bits(loss, want_loss)
            same_bits(norms, want_norms)
            same_bits(params, want_params)
            for key in ("t", "momentum_buffer") if sgd.get("momentum") else ("t",):
                same_bits(np.atleast_1d(state[key]), np.atleast_1d(want_state[key]))
    assert np.isfinite(params[0]).all() and not np.isfinite(params[-1]).all()


@pytest.mark.parametrize("sgd", SGD_VARIANTS[:2])
def test_runs_with_the_fused_sgd_step_equal_runs_without(
    sgd: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep the run loop steps through :meth:`SupervisedProblem.sgd_step` records what it
    records without (and what each run records alone), diverging runs included."""
    runs = expand(
        parse_experiment(
            {
                "name": "t",
                "problems": [mlp(hidden=[8], batch_size=32)],
                "optimizers": [{"name": "sgd", "lr": [0.01, 0.5, 1e8], **sgd}],
                "steps": 30,
                "eval_every": 7,
            }
        )
    )
    calls = []
    original = SupervisedProblem.sgd_step

    def counted(self: SupervisedProblem, *args: Any) -> np.ndarray:
        calls.append(1)
        return original(self, *args)

    monkeypatch.setattr(SupervisedProblem, "sgd_step", counted)
    fused = [without_times(r) for r in plain_batch(runs)]
    alone = [without_times(plain_one(r)) for r in runs]
    assert calls and fused[-1]["diverged"]
    monkeypatch.setattr(SupervisedProblem, "fuses_sgd", property(lambda self: False))
    calls.clear()
    plain = [without_times(r) for r in plain_batch(runs)]
    assert not calls
    assert fused == plain == alone


@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value encountered")
@pytest.mark.parametrize("rows", [2, 7, 128, 129, 157, 256])
def test_compiled_evaluation_equals_the_numpy_path(rows: int) -> None:
    """:func:`evaluate` gives :meth:`Network.infer`'s losses and ``argmax`` hits bit for bit:
    blocks below, at and above the inference row blocks, ties between classes (the first
    wins), and runs whose outputs overflow or turn NaN."""
    net = Network(9, [6], 4)
    rng = np.random.default_rng(rows)
    params = net.init(list(range(4)), np.dtype(np.float64))
    w2 = net.views(params)[1].wb
    w2[1, :, 2] = w2[1, :, 0]  # run 1: classes 0 and 2 tie everywhere
    params[2] *= 1e155  # run 2 overflows
    params[3, 5] = np.nan  # run 3 is NaN
    x1 = np.ones((rows, 10))
    x1[:, :-1] = rng.standard_normal((rows, 9))
    labels = rng.integers(0, 4, rows)
    target = (labels == np.arange(4)[:, None]).astype(np.float64)
    with np.errstate(all="ignore"):
        out = net.infer(params, x1, [], net.workspace())
        want_hits = (out.argmax(axis=1) == labels).sum(axis=1)
        want_loss, _ = net.data_loss(out, target, grad=False)
        loss, hits = evaluate(net, params, x1, target, labels, net.workspace())
    same_bits(loss, want_loss)
    np.testing.assert_array_equal(hits, want_hits)
    assert np.isfinite(loss[:2]).all() and not np.isfinite(loss[3])


@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value encountered")
def test_problems_evaluate_the_same_with_and_without_the_compiled_evaluation() -> None:
    spec = SPEC.validate_python(mlp(batch_size=16))
    fast, slow = (build_problem(spec, [0, 1, 2], np.float64) for _ in range(2))
    assert isinstance(fast, SupervisedProblem) and isinstance(slow, SupervisedProblem)
    assert fast._compiled_eval
    slow._compiled_eval = False
    params = fast.init_params()
    params[2] *= 1e155
    with np.errstate(all="ignore"):
        same_bits(fast.loss(params), slow.loss(params))
        got, want = fast.test_metrics(params), slow.test_metrics(params)
    assert got.keys() == want.keys() == {"test_loss", "test_accuracy"}
    for key in got:
        same_bits(got[key], want[key])
