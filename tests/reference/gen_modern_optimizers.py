"""Reference trajectories of the optimizers added after torch's classic set, written to
``tests/data/optimizers_modern.npz`` (``.venv/bin/python tests/reference/gen_modern_optimizers.py``;
needs the ``reference`` extra: torch, schedulefree, prodigyopt, pytorch-optimizer, lion-pytorch).

Each case names one of our specs and the reference that implements it (``REFERENCES``), on two
problems, float64, :data:`STEPS` updates at a constant learning rate:

- ``analytic``: :mod:`gen_optimizers`'s coupled quartic in six variables, one vector (for Muon,
  which steps matrices only, the same six numbers held as one 3 × 2 weight matrix);
- ``mlp``: our ``mlp`` problem on iris (hidden [5, 4], tanh, layer norm, full batch); the reference
  holds one torch tensor per layout tensor (matrices as torch's ``(out, in)``) and gets its
  gradient from our problem — what is under test is the optimizer, and both sides see the same
  gradient at the same point.

Muon on the MLP runs as ``partition`` (Muon on the weight matrices, AdamW on the rest, no weight
decay on the normalisation parameters) against torch's Muon on the matrices and an AdamW with two
parameter groups (biases decayed, norm parameters with ``weight_decay = 0``). torch's
Newton–Schulz casts to bfloat16 (a GPU speed choice); the generator makes that cast an identity
while it steps, so the reference is torch's algorithm in float64. The schedule-free cases also
record the evaluation point ``x`` (what ``optimizer.eval()`` gives), computed on a copy so the
training iterate is undisturbed.
The npz holds ``cases`` (JSON) and per case ``<problem>__<id>`` (params after 0..STEPS
updates, the row layout of our engine), ``<problem>__<id>__x`` (schedule-free evaluation points)
and ``<problem>__<id>__evals`` (L-BFGS: closure calls per step).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "data" / "optimizers_modern.npz"
STEPS = 200
MLP = {"name": "mlp", "dataset": "iris", "hidden": [5, 4], "activation": "tanh", "layernorm": True}

#: spec name → (module, class) of the reference implementation.
REFERENCES = {
    "rprop": ("torch.optim", "Rprop"),
    "asgd": ("torch.optim", "ASGD"),
    "adafactor": ("torch.optim", "Adafactor"),
    "muon": ("torch.optim", "Muon"),
    "lbfgs": ("torch.optim", "LBFGS"),
    "schedule_free_adamw": ("schedulefree", "AdamWScheduleFree"),
    "schedule_free_sgd": ("schedulefree", "SGDScheduleFree"),
    "prodigy": ("prodigyopt", "Prodigy"),
    "lamb": ("pytorch_optimizer", "Lamb"),
    "lars": ("pytorch_optimizer", "LARS"),
    "lion": ("lion_pytorch", "Lion"),
}


def _case(case_id: str, spec: dict[str, Any], problems: tuple[str, ...] = ("analytic", "mlp")):
    return {"id": case_id, "spec": spec, "problems": list(problems)}


MUON_MLP = {
    "name": "partition",
    "groups": [
        {"kinds": ["matrix"], "optimizer": {"name": "muon", "lr": 0.005}},
        {"optimizer": {"name": "adamw", "lr": 0.003, "weight_decay": 0.1}},
    ],
    "no_weight_decay": ["norm_scale", "norm_shift"],
}

CASES: list[dict[str, Any]] = [
    _case("rprop_default", {"name": "rprop"}),
    _case(
        "rprop_etas", {"name": "rprop", "lr": 0.05, "etas": [0.4, 1.3], "step_sizes": [1e-4, 0.5]}
    ),
    _case("asgd_default", {"name": "asgd", "lr": 0.004}),
    _case(
        "asgd_averaging",
        {"name": "asgd", "lr": 0.004, "lambd": 0.01, "alpha": 0.6, "t0": 50, "weight_decay": 0.01},
    ),
    _case("adafactor_default", {"name": "adafactor"}),
    _case(
        "adafactor_options",
        {
            "name": "adafactor",
            "lr": 0.01,
            "beta2_decay": -0.5,
            "eps": [1e-20, 1e-3],
            "d": 2.0,
            "weight_decay": 0.01,
        },
    ),
    _case("muon_default", {"name": "muon", "lr": 0.01}, ("analytic",)),
    _case(
        "muon_plain_momentum",
        {"name": "muon", "lr": 0.01, "nesterov": False, "adjust_lr_fn": "match_rms_adamw"},
        ("analytic",),
    ),
    _case("muon_partition", MUON_MLP, ("mlp",)),
    _case("lbfgs_default", {"name": "lbfgs"}),
    _case("lbfgs_one_iteration", {"name": "lbfgs", "lr": 0.2, "max_iter": 1, "history_size": 10}),
    _case(
        "lbfgs_strong_wolfe",
        {"name": "lbfgs", "max_iter": 5, "line_search_fn": "strong_wolfe", "tolerance_grad": 1e-5},
    ),
    _case("schedule_free_adamw_default", {"name": "schedule_free_adamw", "lr": 0.01}),
    _case(
        "schedule_free_adamw_options",
        {
            "name": "schedule_free_adamw",
            "lr": 0.02,
            "betas": [0.8, 0.99],
            "weight_decay": 0.01,
            "warmup_steps": 20,
            "r": 0.5,
        },
    ),
    _case("schedule_free_sgd_default", {"name": "schedule_free_sgd", "lr": 0.002}),
    _case(
        "schedule_free_sgd_options",
        {
            "name": "schedule_free_sgd",
            "lr": 0.003,
            "momentum": 0.8,
            "weight_decay": 0.01,
            "warmup_steps": 10,
            "weight_lr_power": 1.0,
        },
    ),
    _case("prodigy_default", {"name": "prodigy"}),
    _case(
        "prodigy_options",
        {
            "name": "prodigy",
            "lr": 0.5,
            "weight_decay": 0.01,
            "use_bias_correction": True,
            "safeguard_warmup": True,
            "d_coef": 0.5,
            "growth_rate": 1.05,
        },
    ),
    _case(
        "prodigy_coupled_decay",
        {"name": "prodigy", "lr": 0.5, "weight_decay": 0.01, "decouple": False},
    ),
    _case("lamb_default", {"name": "lamb", "lr": 0.01}),
    _case("lamb_decoupled_decay", {"name": "lamb", "lr": 0.01, "weight_decay": 0.01}),
    _case(
        "lamb_coupled_decay",
        {"name": "lamb", "lr": 0.005, "weight_decay": 0.01, "weight_decouple": False},
    ),
    _case("lars_default", {"name": "lars", "lr": 0.01}),
    _case(
        "lars_nesterov",
        {
            "name": "lars",
            "lr": 0.003,
            "weight_decay": 0.01,
            "nesterov": True,
            "trust_coefficient": 0.02,
            "dampening": 0.1,
        },
    ),
    _case("lion_default", {"name": "lion", "lr": 1e-3}),
    _case("lion_decay", {"name": "lion", "lr": 1e-3, "weight_decay": 0.1, "betas": [0.95, 0.98]}),
]


def _generator(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN = _generator("gen_optimizers")


def analytic_loss_and_grad(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:mod:`gen_optimizers`'s objective and gradient for ``(R, 6)`` rows."""
    h, a = np.asarray(GEN.H), np.asarray(GEN.A)
    d = x - a
    loss = (0.5 * h * d**2 + 0.25 * GEN.Q * d**4).sum(axis=-1)
    loss = loss + 0.5 * GEN.C * ((x[..., :-1] - x[..., 1:]) ** 2).sum(axis=-1)
    grad = GEN.gradient(
        x, lambda v, k: np.roll(v, k, axis=-1), lambda vals: np.asarray(vals, dtype=x.dtype)
    )
    return loss, grad


def problem(kind: str, muon: bool = False) -> tuple[Any, np.ndarray, Callable[..., Any]]:
    """``(layout, x0 (1, N), loss_and_grad)`` of a problem in our engine's row form."""
    sys.path.insert(0, str(ROOT))
    from pydantic import TypeAdapter

    from engine.layout import Layout
    from engine.problems import ProblemSpec, build_problem

    if kind == "analytic":
        layout = Layout.build([("w", (3, 2), "matrix")]) if muon else Layout.vector(6)
        return layout, np.asarray(GEN.X0, dtype=np.float64)[None], analytic_loss_and_grad
    prob = build_problem(TypeAdapter(ProblemSpec).validate_python(MLP), [0], np.float64)

    def loss_and_grad(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        loss, grad = prob.loss_and_grad(x, 0)
        return loss.copy(), grad.copy()

    return prob.layout, prob.init_params(), loss_and_grad


def _reference(spec: dict[str, Any], params: list[Any]) -> Any:
    """The reference optimizer for our ``spec`` over torch tensors ``params``."""
    import torch

    spec = dict(spec)
    module, cls_name = REFERENCES[spec.pop("name")]
    cls = getattr(importlib.import_module(module), cls_name)
    for key in ("betas", "etas", "step_sizes", "eps", "ns_coefficients"):
        if isinstance(spec.get(key), list):
            spec[key] = tuple(spec[key])
    if cls_name == "Prodigy" and spec.get("growth_rate") is None:
        spec.pop("growth_rate", None)
    if module == "torch.optim" and cls_name not in ("LBFGS", "Muon"):
        spec["foreach"] = False
    if module == "pytorch_optimizer":
        spec["foreach"] = False
    if cls_name == "Lion":
        spec["use_triton"] = False
    del torch
    return cls(params, **spec)


def trajectory(case: dict[str, Any], kind: str) -> dict[str, np.ndarray]:
    import torch

    torch.set_default_dtype(torch.float64)
    spec = case["spec"]
    names = [g["optimizer"]["name"] for g in spec["groups"]] if spec["name"] == "partition" else []
    layout, x0, loss_and_grad = problem(kind, muon=spec["name"] == "muon")
    tensors = [
        torch.tensor(t.view(x0)[0].T if t.kind == "matrix" else t.view(x0)[0])
        for t in layout.tensors
    ]
    for t in tensors:
        t.requires_grad_(True)

    def row() -> np.ndarray:
        out = np.empty_like(x0)
        for t, tensor in zip(layout.tensors, tensors, strict=True):
            value = tensor.detach().numpy()
            t.view(out)[0] = value.T if t.kind == "matrix" else value
        return out

    def set_grads(grad: np.ndarray) -> None:
        for t, tensor in zip(layout.tensors, tensors, strict=True):
            g = t.view(grad)[0]
            tensor.grad = torch.tensor(g.T.copy() if t.kind == "matrix" else g.copy())

    if spec["name"] == "partition":
        assert names == ["muon", "adamw"]
        matrices = [x for x, t in zip(tensors, layout.tensors, strict=True) if t.kind == "matrix"]
        exempt = set(spec["no_weight_decay"])
        pairs = list(zip(tensors, layout.tensors, strict=True))
        decayed = [x for x, t in pairs if t.kind != "matrix" and t.kind not in exempt]
        free = [x for x, t in pairs if t.kind in exempt]
        adamw = {k: v for k, v in spec["groups"][1]["optimizer"].items() if k != "name"}
        opts = [
            _reference(spec["groups"][0]["optimizer"], matrices),
            torch.optim.AdamW(
                [{"params": decayed}, {"params": free, "weight_decay": 0.0}],
                foreach=False,
                **adamw,
            ),
        ]
    else:
        opts = [_reference(spec, tensors)]
    evals: list[int] = []

    def closure() -> Any:
        evals[-1] += 1
        loss, grad = loss_and_grad(row())
        set_grads(grad)
        return torch.tensor(float(loss[0]))

    out, xs = [row()[0]], []
    schedule_free = spec["name"].startswith("schedule_free")
    identity = torch.Tensor.bfloat16
    torch.Tensor.bfloat16 = lambda self: self.clone()  # type: ignore[method-assign]
    try:
        for opt in opts:
            if schedule_free:
                opt.train()
        for _ in range(STEPS):
            if schedule_free:
                xs.append(_eval_point(opts[0], tensors, layout, row))
            evals.append(0)
            if spec["name"] == "lbfgs":
                opts[0].step(closure)
            else:
                _, grad = loss_and_grad(row())
                set_grads(grad)
                for opt in opts:
                    opt.step()
            out.append(row()[0])
        if schedule_free:
            xs.append(_eval_point(opts[0], tensors, layout, row))
    finally:
        torch.Tensor.bfloat16 = identity  # type: ignore[method-assign]
    result = {"": np.stack(out)}
    if xs:
        result["__x"] = np.stack(xs)
    if spec["name"] == "lbfgs":
        result["__evals"] = np.asarray(evals)
    return result


def _eval_point(opt: Any, tensors: list[Any], layout: Any, row: Callable[[], np.ndarray]) -> Any:
    """``x`` as ``opt.eval()`` would set it, computed on copies (``y`` stays untouched)."""
    saved = [t.detach().clone() for t in tensors]
    beta = (
        opt.param_groups[0]["betas"][0]
        if "betas" in opt.param_groups[0]
        else opt.param_groups[0]["momentum"]
    )
    with __import__("torch").no_grad():
        for t in tensors:
            if "z" in opt.state[t]:
                t.lerp_(end=opt.state[t]["z"], weight=1 - 1 / beta)
    x = row()[0]
    with __import__("torch").no_grad():
        for t, s in zip(tensors, saved, strict=True):
            t.copy_(s)
    return x


def main() -> None:
    arrays: dict[str, np.ndarray] = {"cases": np.array(json.dumps(CASES))}
    for case in CASES:
        for kind in case["problems"]:
            for suffix, values in trajectory(case, kind).items():
                arrays[f"{kind}__{case['id']}{suffix}"] = values
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {len(CASES)} cases to {OUT}")


if __name__ == "__main__":
    main()
