"""The optimizers beyond torch's classic set against their reference implementations: the
committed trajectories of ``tests/reference/gen_modern_optimizers.py`` (torch.optim, schedulefree,
prodigyopt, pytorch-optimizer, lion-pytorch), on an analytic problem and on the MLP's layout.

Our replay steps the same problem from the same start; every one of the 200 float64 iterates must
match to 1e-10 relative to the iterate's largest entry, or to ten times what a rounding error
does to the trajectory where that is more. They are not bit-identical: the references reduce norms
and dot products (``torch.linalg.norm``, BLAS ``dot``, ``addcmul``'s fused scalar) in another order
than NumPy, the MLP's products round as the host's BLAS kernels do, and training amplifies
rounding differences, so the tolerance is taken per iterate rather than per entry (a weight near 0
carries the absolute error of its layer). How much it amplifies them is measured, not assumed: the
replay is run again with every gradient larger by one unit in the last place (``1 + 2⁻⁵²``), and
the two replays' distance is the trajectory's sensitivity to rounding. On most cases it is
~1e-15; LAMB's trust ratio, Prodigy's step-size estimate and one-iteration L-BFGS on the MLP reach
1e-11–6e-10, and on an AMD Zen 1 host their distance from the committed references (made on
another CPU) was 0.2–2.7 times it, above 1e-10 for two of them. A wrong update rule is off by
orders of magnitude more.
L-BFGS must also make the same number of closure calls per step, and the schedule-free methods
must give the same evaluation point ``x``.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from engine.optimizers import build_optimizer

ROOT = Path(__file__).resolve().parents[3]
RTOL = 1e-10


#: Unit in the last place of 1.0: the relative size of the gradient's nudge.
ULP = 2.0**-52


def relative_error(ours: np.ndarray, ref: np.ndarray) -> float:
    """The worst iterate's distance from the reference, relative to its largest entry."""
    assert ours.shape == ref.shape
    scale = np.abs(ref).max(axis=-1, keepdims=True)
    return float((np.abs(ours - ref) / scale).max())


def assert_close(ours: np.ndarray, ref: np.ndarray, rtol: float = RTOL) -> None:
    worst = relative_error(ours, ref)
    assert worst <= rtol, f"relative error {worst:.2e} (tolerance {rtol:.2e})"


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_modern_optimizers", ROOT / "tests/reference/gen_modern_optimizers.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN = load_generator()
with np.load(ROOT / "tests/data/optimizers_modern.npz") as _data:
    DATA = {k: _data[k] for k in _data.files}
CASES: list[dict[str, Any]] = json.loads(str(DATA["cases"]))
PAIRS = [(c, kind) for c in CASES for kind in c["problems"]]


def replay(case: dict[str, Any], kind: str, nudge: float = 1.0) -> dict[str, np.ndarray]:
    """Our iterates 0..STEPS (and evaluation points / closure calls) on the generator's problem,
    every gradient multiplied by ``nudge``."""
    layout, x0, exact_loss_and_grad = GEN.problem(kind, muon=case["spec"]["name"] == "muon")

    def loss_and_grad(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        loss, grad = exact_loss_and_grad(p)
        return loss, grad * nudge

    opt = build_optimizer(case["spec"], layout=layout)
    x = x0.copy()
    state = opt.init(x)
    out, xs, evals = [x[0].copy()], [], []
    point = np.empty_like(x)
    calls = 0

    def closure(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        nonlocal calls
        calls += 1
        return loss_and_grad(p)

    for _ in range(GEN.STEPS):
        if opt.eval_params is not None:
            opt.eval_params(state, x, point)
            xs.append(point[0].copy())
        calls = 0
        if opt.step_ is not None:
            opt.step_(closure, state, x, case["spec"].get("lr", 1.0))
        else:
            opt.update_(loss_and_grad(x)[1], state, x, opt.lr)
        evals.append(calls)
        out.append(x[0].copy())
    result = {"": np.stack(out)}
    if opt.eval_params is not None:
        opt.eval_params(state, x, point)
        result["__x"] = np.stack([*xs, point[0].copy()])
    if opt.step_ is not None:
        result["__evals"] = np.asarray(evals)
    return result


def test_committed_cases_are_the_generators() -> None:
    assert CASES == GEN.CASES


def test_every_new_optimizer_has_a_reference_on_both_kinds_of_problem() -> None:
    names = {c["spec"]["name"] for c in CASES} | {"muon"}
    assert names - {"partition"} == set(GEN.REFERENCES)
    for name in GEN.REFERENCES:
        kinds = {
            kind
            for c in CASES
            if name
            in (c["spec"]["name"], *(g["optimizer"]["name"] for g in c["spec"].get("groups", [])))
            for kind in c["problems"]
        }
        assert kinds == {"analytic", "mlp"}, name


@pytest.mark.parametrize(("case", "kind"), PAIRS, ids=[f"{k}-{c['id']}" for c, k in PAIRS])
def test_matches_the_reference(case: dict[str, Any], kind: str) -> None:
    ours = replay(case, kind)
    prefix = f"{kind}__{case['id']}"
    assert set(ours) == {
        k[len(prefix) :] for k in DATA if k.startswith(prefix + "_") or k == prefix
    }
    nudged = replay(case, kind, 1.0 + ULP)
    for key in ("", "__x"):
        if key in ours:
            sensitivity = relative_error(nudged[key], ours[key])
            assert_close(ours[key], DATA[prefix + key], max(RTOL, 10 * sensitivity))
    if "__evals" in ours:
        np.testing.assert_array_equal(ours["__evals"], DATA[prefix + "__evals"])
    assert np.isfinite(ours[""]).all()
    assert not np.allclose(ours[""][-1], ours[""][0])  # it moved
