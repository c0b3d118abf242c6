"""Reference values for the normalisation layers from torch autograd, written to
``tests/data/layers_reference.npz`` (``python tests/reference/gen_layers.py``; needs torch).

Torch has no run axis, so each run ``r`` is its own ``torch.nn.BatchNorm1d`` / ``LayerNorm`` with
run ``r``'s parameters; the arrays stack the runs on axis 0. The scalar loss is ``Σ w ⊙ y`` for a
fixed random ``w``, so ``dy = w``. Everything is float64.

Batch norm: one module per run is trained on a sequence of batches of different sizes (``bn_x{k}``),
recording after each batch the output, the gradients and the running statistics; then the module
is switched to eval mode and applied to ``bn_eval_x``.
Layer norm: an affine (``ln_*``) and a non-affine (``lnp_*``) layer on one batch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

OUT = Path(__file__).resolve().parents[1] / "data" / "layers_reference.npz"
R, F = 2, 5
BN_BATCHES = (6, 3, 8, 2)
LN_BATCH = 7


def inputs() -> dict[str, np.ndarray]:
    """The random inputs (seeded): shifted and scaled so the running statistics move visibly."""
    rng = np.random.default_rng(20240611)
    out: dict[str, np.ndarray] = {
        "bn_gamma": rng.uniform(0.5, 1.5, (R, F)),
        "bn_beta": rng.normal(size=(R, F)),
    }
    for k, B in enumerate(BN_BATCHES):
        out[f"bn_x{k}"] = 2.0 + 3.0 * rng.normal(size=(R, B, F))
        out[f"bn_w{k}"] = rng.normal(size=(R, B, F))
    out["bn_eval_x"] = 2.0 + 3.0 * rng.normal(size=(R, 4, F))
    out["bn_eval_w"] = rng.normal(size=(R, 4, F))
    out["ln_x"] = 1.0 + 2.0 * rng.normal(size=(R, LN_BATCH, F))
    out["ln_w"] = rng.normal(size=(R, LN_BATCH, F))
    out["ln_gamma"] = rng.uniform(0.5, 1.5, (R, F))
    out["ln_beta"] = rng.normal(size=(R, F))
    return out


def _grads(module: torch.nn.Module, x: np.ndarray, w: np.ndarray) -> dict[str, np.ndarray]:
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    for p in module.parameters():
        p.grad = None
    y = module(xt)
    (y * torch.tensor(w, dtype=torch.float64)).sum().backward()
    out = {"y": y.detach().numpy(), "dx": xt.grad.numpy()}
    for name, p in module.named_parameters():
        out[{"weight": "dgamma", "bias": "dbeta"}[name]] = p.grad.numpy().copy()
    return out


def reference(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Torch's outputs, gradients and running statistics for :func:`inputs`."""
    per_run: dict[str, list[np.ndarray]] = {}

    def add(key: str, value: np.ndarray) -> None:
        per_run.setdefault(key, []).append(np.array(value, dtype=np.float64))

    for r in range(R):
        bn = torch.nn.BatchNorm1d(F, eps=1e-5, momentum=0.1).double()
        with torch.no_grad():
            bn.weight.copy_(torch.tensor(data["bn_gamma"][r]))
            bn.bias.copy_(torch.tensor(data["bn_beta"][r]))
        bn.train()
        for k in range(len(BN_BATCHES)):
            for name, value in _grads(bn, data[f"bn_x{k}"][r], data[f"bn_w{k}"][r]).items():
                add(f"bn_{name}{k}", value)
            add(f"bn_running_mean{k}", bn.running_mean.numpy())
            add(f"bn_running_var{k}", bn.running_var.numpy())
        bn.eval()
        for name, value in _grads(bn, data["bn_eval_x"][r], data["bn_eval_w"][r]).items():
            add(f"bn_eval_{name}", value)

        ln = torch.nn.LayerNorm(F, eps=1e-5).double()
        with torch.no_grad():
            ln.weight.copy_(torch.tensor(data["ln_gamma"][r]))
            ln.bias.copy_(torch.tensor(data["ln_beta"][r]))
        for name, value in _grads(ln, data["ln_x"][r], data["ln_w"][r]).items():
            add(f"ln_{name}", value)
        plain = torch.nn.LayerNorm(F, eps=1e-5, elementwise_affine=False).double()
        for name, value in _grads(plain, data["ln_x"][r], data["ln_w"][r]).items():
            add(f"lnp_{name}", value)
    return {key: np.stack(values) for key, values in per_run.items()}


def main() -> None:
    data = inputs()
    np.savez_compressed(OUT, **data, **reference(data))
    print(f"wrote {OUT} ({OUT.stat().st_size} B)")


if __name__ == "__main__":
    main()
