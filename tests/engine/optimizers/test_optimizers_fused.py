"""The fused kernels equal the NumPy references bit for bit (torch's "fused equals for-loop" test).

``Optimizer.fast_update_`` (the compiled single-pass kernel the run loop calls) and ``update_`` (the
NumPy statement of the rule) start from equal states and see the same gradients and learning
rates; after every update the parameters and every state array must be equal bit for bit — for
every optimizer and flag combination, batches with per-run hyper-parameters and learning rates,
both dtypes, rows wide enough for the compiled loops' vector bodies, and gradients that turn
non-finite (NaN and inf must propagate the same way).
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pytest
from test_optimizers_batching import BATCHES, gradient, lr_table, start
from test_optimizers_properties import IDS, VARIANTS

from engine.layout import Layout
from engine.optimizers import OPTIMIZERS, build_optimizer, build_optimizer_batch
from engine.optimizers.base import Optimizer, State
from engine.optimizers.chain import TRANSFORMS
from engine.registry import BUILTIN
from tests.engine.optimizers.examples import NUMPY_ONLY, example

STEPS = 40
#: The optimizers optbench ships with a fused kernel (a plugin's may have none, and so may the
#: NumPy-only families of examples.py), with their flag variants.
SHIPPED = [
    n for n in OPTIMIZERS.names() if OPTIMIZERS.get(n).origin == BUILTIN and n not in NUMPY_ONLY
]
SHIPPED_VARIANTS = [(v, i) for v, i in zip(VARIANTS, IDS, strict=True) if v["name"] in SHIPPED]


def assert_same(a: np.ndarray, b: np.ndarray, what: str) -> None:
    assert a.dtype == b.dtype and a.shape == b.shape, what
    # Bitwise: equal values, equal NaN positions, and the same sign of zero.
    np.testing.assert_array_equal(
        np.atleast_1d(a).view(np.uint8), np.atleast_1d(b).view(np.uint8), err_msg=what
    )


def lockstep(opt: Optimizer, x0: np.ndarray, lrs: np.ndarray, *, poison: bool = False) -> None:
    """Step a reference and a fused copy side by side, comparing everything after each step; and
    a third copy through ``recorded_`` where the family has one, whose norms must also equal the
    run loop's NumPy expression of them."""
    ref_x, fused_x, rec_x = x0.copy(), x0.copy(), x0.copy()
    ref_state, fused_state, rec_state = opt.init(ref_x), opt.init(fused_x), opt.init(rec_x)
    lr = np.empty((x0.shape[0], 1), dtype=x0.dtype)
    norms = np.empty((2, x0.shape[0]))
    for t in range(lrs.shape[1]):
        lr[:, 0] = lrs[:, t]
        g = gradient(ref_x)
        if poison and t == lrs.shape[1] // 2:
            g[0, ::3] = np.nan
            g[-1, 1::4] = np.inf
        grads = g.copy()
        before = ref_x.copy()
        opt.update_(g, ref_state, ref_x, lr)
        opt.fast_update_(grads, fused_state, fused_x, lr)
        assert_same(fused_x, ref_x, f"params after update {t + 1}")
        assert_same(grads, g, "gradients untouched")
        compare_states(fused_state, ref_state, t)
        if opt.recorded_ is not None:
            opt.recorded_(grads, rec_state, rec_x, lr, norms[0], norms[1])
            assert_same(rec_x, ref_x, f"recorded params after update {t + 1}")
            assert_same(grads, g, "gradients untouched")
            compare_states(rec_state, ref_state, t)
            diff = ref_x - before
            for got, x in zip(norms, (g, diff), strict=True):
                want = np.sqrt(np.einsum("ij,ij->i", x, x)).astype(np.float64)
                assert_same(got, want, f"recorded norms after update {t + 1}")


def test_sgd_records_its_norms_in_its_kernel() -> None:
    assert build_optimizer({"name": "sgd", "lr": 0.1}).recorded_ is not None


def compare_states(fused_state: State, ref_state: State, t: int) -> None:
    assert fused_state.keys() == ref_state.keys()
    for key, value in ref_state.items():
        # Scratch (``_name``, ``group:_name`` in a partition) is the kernels' own business.
        if not key.rpartition(":")[2].startswith("_"):
            assert_same(fused_state[key], value, f"state {key!r} after update {t + 1}")


def test_every_shipped_optimizer_has_a_fused_kernel() -> None:
    assert {"adam", "sgd", "rmsprop", "adadelta_window", "prodigy", "partition"} <= set(SHIPPED)
    for name in SHIPPED:
        assert build_optimizer(example(name)).fused_ is not None, name


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "variant", [v for v, _ in SHIPPED_VARIANTS], ids=[i for _, i in SHIPPED_VARIANTS]
)
def test_fused_equals_reference_for_every_flag(variant: dict[str, Any], dtype: type) -> None:
    opt = build_optimizer(variant)
    lockstep(opt, start(2, 37, dtype), lr_table([variant, variant], STEPS))


FUSED_BATCHES = sorted(b for b in BATCHES if BATCHES[b][0]["name"] not in NUMPY_ONLY)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch", FUSED_BATCHES)
def test_fused_equals_reference_on_batches(batch: str, dtype: type) -> None:
    """Per-run hyper-parameter columns, per-run learning rates; wide rows (vector bodies)."""
    specs = BATCHES[batch]
    lockstep(build_optimizer_batch(specs), start(len(specs), 301, dtype), lr_table(specs, STEPS))


@pytest.mark.filterwarnings("ignore:invalid value encountered")
@pytest.mark.parametrize("batch", FUSED_BATCHES)
def test_fused_equals_reference_through_non_finite_gradients(batch: str) -> None:
    specs = BATCHES[batch]
    x0 = start(len(specs), 23, np.float64)
    lockstep(build_optimizer_batch(specs), x0, lr_table(specs, 12), poison=True)


#: Rows of a small network, for the structure-aware kernels: per-tensor segments, norms of
#: matrices (which LARS scales) and of vectors.
NETWORK = Layout.build(
    [
        ("w1", (6, 5), "matrix"),
        ("b1", (5,), "bias"),
        ("w2", (5, 3), "matrix"),
        ("b2", (3,), "bias"),
    ]
)
STRUCTURED = [
    n for n in SHIPPED if "layout" in inspect.signature(OPTIMIZERS.get(n).factory).parameters
]


def test_the_structure_aware_kernels_are_covered() -> None:
    assert {"lamb", "lars"} <= set(STRUCTURED)


@pytest.mark.filterwarnings("ignore:invalid value encountered")
@pytest.mark.parametrize("poison", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch", sorted(b for b in BATCHES if BATCHES[b][0]["name"] in STRUCTURED))
def test_fused_equals_reference_per_tensor(batch: str, dtype: type, poison: bool) -> None:
    """A layout of matrices and vectors: each tensor's norms, trust ratios and segment."""
    specs = BATCHES[batch]
    opt = build_optimizer_batch(specs, layout=NETWORK)
    lockstep(opt, start(len(specs), NETWORK.size, dtype), lr_table(specs, STEPS), poison=poison)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "variant",
    [v for v, _ in SHIPPED_VARIANTS if v["name"] in STRUCTURED],
    ids=[i for v, i in SHIPPED_VARIANTS if v["name"] in STRUCTURED],
)
def test_fused_equals_reference_per_tensor_for_every_flag(
    variant: dict[str, Any], dtype: type
) -> None:
    opt = build_optimizer(variant, layout=NETWORK)
    lockstep(opt, start(2, NETWORK.size, dtype), lr_table([variant, variant], STEPS))


def chain(*transforms: dict[str, Any]) -> dict[str, Any]:
    return {"name": "chain", "transforms": [*transforms, {"name": "scale_by_learning_rate"}]}


#: Chains using every transform and flag: a chain's fused form is each transform's in-place step.
CHAINS = {
    "adam_l2": chain(
        {"name": "add_decayed_weights", "weight_decay": 0.1},
        {"name": "scale_by_adam", "betas": [0.8, 0.99]},
    ),
    "lamb": chain(
        {"name": "scale_by_adam", "bias_correction": "none", "eps": 1e-6},
        {"name": "scale_by_trust_ratio", "max_weight_norm": 10.0},
        {"name": "scale_by_bias_correction"},
    ),
    "clipped_rms_nesterov": chain(
        {"name": "clip_by_global_norm", "max_norm": 5.0},
        {"name": "clip", "clip_value": 3.0},
        {"name": "scale_by_rms", "alpha": 0.9},
        {"name": "trace", "momentum": 0.5, "nesterov": True},
    ),
    "lion_sign": chain(
        {"name": "scale_by_lion", "betas": [0.8, 0.95]},
        {"name": "trace", "momentum": 0.3},
        {"name": "scale_by_sign"},
        {"name": "add_decayed_weights", "weight_decay": 0.01},
    ),
    "muon": chain(
        {"name": "trace", "momentum": 0.9, "nesterov": True},
        {"name": "orthogonalize", "ns_steps": 3},
        {"name": "scale_by_trust_ratio", "eps": 1e-8},
    ),
}


def test_the_chains_use_every_transform() -> None:
    used = {t["name"] for spec in CHAINS.values() for t in spec["transforms"]}
    assert used == set(TRANSFORMS.names())


@pytest.mark.filterwarnings("ignore:invalid value encountered")
@pytest.mark.parametrize("poison", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(CHAINS))
def test_fused_chain_equals_reference(name: str, dtype: type, poison: bool) -> None:
    spec = CHAINS[name]
    opt = build_optimizer(spec, layout=NETWORK)
    lockstep(opt, start(2, NETWORK.size, dtype), lr_table([spec, spec], STEPS), poison=poison)
