"""Matrix-aware optimizers of torch.optim: Adafactor and Muon, stepping each tensor of the layout.

Both read a tensor's shape — Adafactor factors a matrix's second moment into row and column
statistics, Muon orthogonalises a matrix's momentum — so they see the row through
:func:`~engine.optimizers.tensors.torch_view` (matrices as torch's ``(out, in)``).
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from engine.layout import Layout
from engine.optimizers import fused
from engine.optimizers.base import (
    OPTIMIZERS,
    HParam,
    NonNegative,
    Optimizer,
    Positive,
    Rate,
    State,
    hparam,
)
from engine.optimizers.kernel import buffers, check_params, counter, f64, nonzero, put, tick
from engine.optimizers.tensors import (
    norms,
    norms_into,
    per_tensor,
    resolve,
    segment_stops,
    tensor_column,
    torch_view,
    typed,
)
from engine.specbase import SpecModel, Sweep


def lerp(a: np.ndarray, b: np.ndarray, w: HParam) -> np.ndarray:
    """torch's ``a.lerp(b, w)``: ``a + w·(b - a)`` for ``w < ½``, else ``b - (b - a)·(1 - w)``
    (exact at both ends)."""
    diff = b - a
    return np.where(np.asarray(w) < 0.5, a + w * diff, b - diff * (1.0 - np.asarray(w)))


class AdafactorSpec(SpecModel):
    name: Literal["adafactor"] = "adafactor"
    lr: Sweep[Positive] = 1e-2
    beta2_decay: Sweep[Annotated[float, Field(le=0, allow_inf_nan=False)]] = -0.8
    eps: Sweep[tuple[Positive | None, Positive]] = (None, 1e-3)
    d: Sweep[Positive] = 1.0
    weight_decay: Sweep[NonNegative] = 0.0


@OPTIMIZERS.register("adafactor", AdafactorSpec)
def adafactor(
    *,
    lr: HParam = 1e-2,
    beta2_decay: HParam = -0.8,
    eps: tuple[HParam | None, HParam] = (None, 1e-3),
    d: HParam = 1.0,
    weight_decay: HParam = 0.0,
    layout: Layout | None = None,
) -> Optimizer:
    """Adafactor (Shazeer & Stern), as ``torch.optim.Adafactor``: no first moment, a factored
    second moment, a relative step size.

    At step ``t``, with ``β̂2 = 1 - t^beta2_decay`` and ``ρ = min(lr, 1/√t)``, per tensor:
    ``α = max(eps2, RMS(p))·ρ`` (before decay); ``p *= 1 - lr·weight_decay``; for a matrix ``G``
    (torch's ``(out, in)``) the row and column means of ``G²`` are EMAs ``r``, ``c`` and
    ``V = r·cᵀ / max(mean(r), eps1)``, for a vector ``V`` is the EMA of ``g²``; then
    ``U = G / √max(V, eps1²)`` and ``p -= α/max(1, RMS(U)/d) · U``. ``eps1`` defaults to the
    dtype's machine epsilon. Unlike Adam the step scales with the parameters' RMS.
    """
    eps1, eps2 = eps
    decay, d_, wd, lr0 = hparam(beta2_decay), hparam(d), hparam(weight_decay), lr
    has_wd = nonzero(wd)
    eps2_ = hparam(eps2)

    def init(params: np.ndarray) -> State:
        check_params(params, lr0, decay, d_, wd, eps2_)
        lay = resolve(layout, params)
        state: State = {"t": counter()}
        rows = params.shape[0]
        for tensor in lay.tensors:
            shape = torch_view(tensor, params).shape
            if len(shape) > 2:
                state[f"row:{tensor.name}"] = np.zeros((*shape[:-1], 1), dtype=params.dtype)
                state[f"col:{tensor.name}"] = np.zeros(
                    (*shape[:-2], 1, shape[-1]), dtype=params.dtype
                )
            else:
                state[f"var:{tensor.name}"] = np.zeros((rows, *tensor.shape), dtype=params.dtype)
        state |= buffers(params, (), ("w", "rest", "tiny2", "shrink"))
        state["_small"] = np.empty((rows, 1), dtype=np.bool_)
        state["_u"], state["_squares"] = np.empty_like(params), np.empty_like(params)
        for name in ("p_norm", "u_norm", "scale"):
            state[f"_{name}"] = np.empty((rows, len(lay.tensors)), dtype=params.dtype)
        return state

    def scalars(t: int, lr: HParam, dt: np.dtype) -> tuple[np.ndarray, ...]:
        """``eps1``, ``eps1²``, ``1 - β̂2``, ``ρ``, the decay factor, ``eps2`` and ``d``, each
        rounded once to the parameters' dtype."""
        tiny = np.finfo(dt).eps if eps1 is None else f64(hparam(eps1))
        w = typed(t ** f64(decay), dt)  # torch's one_minus_beta2_t
        rho = typed(np.minimum(lr, 1.0 / t**0.5), dt)
        shrink, floor, d_t = typed(1.0 - lr * wd, dt), typed(f64(eps2_), dt), typed(f64(d_), dt)
        return typed(tiny, dt), typed(np.multiply(tiny, tiny), dt), w, rho, shrink, floor, d_t

    def update_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        t = tick(state)
        lr = f64(lr)
        tiny, tiny2, w, rho, shrink, floor, d_t = scalars(t, lr, params.dtype)
        for tensor in resolve(layout, params).tensors:
            p, g = torch_view(tensor, params), torch_view(tensor, grads)
            nd, size = p.ndim, tensor.size
            wt, tiny_t = per_tensor(w, nd), per_tensor(tiny, nd)
            alpha = np.maximum(per_tensor(floor, nd), norms(p) / size**0.5) * per_tensor(rho, nd)
            if has_wd:
                p *= per_tensor(shrink, nd)
            if nd > 2:
                row, col = state[f"row:{tensor.name}"], state[f"col:{tensor.name}"]
                row[...] = lerp(row, np.sum(g * g, axis=-1, keepdims=True) / g.shape[-1], wt)
                col[...] = lerp(col, np.sum(g * g, axis=-2, keepdims=True) / g.shape[-2], wt)
                var = (row @ col) / np.maximum(row.mean(axis=-2, keepdims=True), tiny_t)
            else:
                v = state[f"var:{tensor.name}"]
                v[...] = lerp(v, g * g, wt)
                var = v.copy()
            u = g / np.sqrt(np.maximum(var, per_tensor(tiny2, nd)))
            denom = np.maximum(1.0, norms(u) / (size**0.5 * per_tensor(d_t, nd)))
            p -= (alpha / denom) * u

    def fused_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        t = tick(state)
        lr = f64(lr)
        tiny, tiny2, w, rho, shrink, floor, d_t = scalars(t, lr, params.dtype)
        w_col, u, squares = put(state["_w"], w), state["_u"], state["_squares"]
        np.less(w_col, 0.5, out=state["_small"])
        np.subtract(1.0, w_col, out=state["_rest"])
        put(state["_tiny2"], tiny2)
        put(state["_shrink"], shrink)
        lay = resolve(layout, params)
        for i, tensor in enumerate(lay.tensors):
            p, sq = torch_view(tensor, params), torch_view(tensor, squares)
            nd, size = p.ndim, tensor.size
            p_norm = norms_into(p, sq, tensor_column(state["_p_norm"], i, nd))
            alpha = np.maximum(per_tensor(floor, nd), p_norm / size**0.5) * per_tensor(rho, nd)
            if nd > 2:
                wt, g = per_tensor(w, nd), torch_view(tensor, grads)
                row, col = state[f"row:{tensor.name}"], state[f"col:{tensor.name}"]
                np.multiply(g, g, out=sq)
                row[...] = lerp(row, np.sum(sq, axis=-1, keepdims=True) / g.shape[-1], wt)
                col[...] = lerp(col, np.sum(sq, axis=-2, keepdims=True) / g.shape[-2], wt)
                var = np.matmul(row, col, out=torch_view(tensor, u))
                np.divide(
                    var, np.maximum(row.mean(axis=-2, keepdims=True), per_tensor(tiny, nd)), out=var
                )
                fused.adafactor_matrix(grads, u, tensor.offset, tensor.stop, state["_tiny2"])
            else:
                fused.adafactor_vector(
                    grads, state[f"var:{tensor.name}"].reshape(params.shape[0], -1), u,
                    tensor.offset, tensor.stop, w_col, state["_small"], state["_rest"],
                    state["_tiny2"],
                )  # fmt: skip
            # The reference's u is a new C-ordered array (``g / √…`` of a transposed view and a
            # C-ordered ``var``): its squares are summed in that order too.
            sq_c = squares[:, tensor.offset : tensor.stop].reshape(p.shape)
            u_norm = norms_into(torch_view(tensor, u), sq_c, tensor_column(state["_u_norm"], i, nd))
            denom = np.maximum(1.0, u_norm / (size**0.5 * per_tensor(d_t, nd)))
            tensor_column(state["_scale"], i, nd)[...] = alpha / denom
        fused.segment_step(params, u, segment_stops(lay), has_wd, state["_shrink"], state["_scale"])

    return Optimizer(init, update_, lr, fused_)


Coefficients = tuple[float, float, float]
#: Muon's quintic Newton–Schulz coefficients (Keller Jordan), torch's defaults.
NS_COEFFICIENTS: Coefficients = (3.4445, -4.775, 2.0315)


def newton_schulz(x: np.ndarray, coefficients: Coefficients, steps: int, eps: float) -> np.ndarray:
    """Approximately orthogonalise each ``(R, A, B)`` matrix (its "zeroth power" ``U·S'·Vᵀ``).

    ``X = G/max(‖G‖_F, eps)`` (transposed when ``A > B`` so that ``X·Xᵀ`` is the small Gram
    matrix), then ``steps`` times ``X ← a·X + (b·XXᵀ + c·(XXᵀ)²)·X``; the singular values are pushed
    towards 1 without an SVD. torch runs this in bfloat16; here it runs in the parameters' dtype.
    """
    a, b, c = coefficients
    tall = x.shape[-2] > x.shape[-1]
    if tall:
        x = np.swapaxes(x, -1, -2)
    x = x / np.maximum(norms(x), eps)
    for _ in range(steps):
        gram = x @ np.swapaxes(x, -1, -2)
        x = a * x + (b * gram + c * (gram @ gram)) @ x
    return np.swapaxes(x, -1, -2) if tall else x


def muon_lr_ratio(shape: tuple[int, ...], adjust_lr_fn: str | None) -> float:
    """torch's ``_adjust_lr`` factor for a torch-shaped ``(A, B)`` matrix."""
    rows, cols = shape[-2], shape[-1]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        return math.sqrt(max(1.0, rows / cols))
    return 0.2 * math.sqrt(max(rows, cols))


class MuonSpec(SpecModel):
    name: Literal["muon"] = "muon"
    lr: Sweep[Positive] = 1e-3
    weight_decay: Sweep[NonNegative] = 0.1
    momentum: Sweep[Rate] = 0.95
    nesterov: bool = True
    ns_coefficients: tuple[float, float, float] = NS_COEFFICIENTS
    eps: Positive = 1e-7
    ns_steps: Annotated[int, Field(ge=0, lt=100)] = 5
    adjust_lr_fn: Literal["original", "match_rms_adamw"] | None = None


@OPTIMIZERS.register("muon", MuonSpec)
def muon(
    *,
    lr: HParam = 1e-3,
    weight_decay: HParam = 0.1,
    momentum: HParam = 0.95,
    nesterov: bool = True,
    ns_coefficients: Coefficients = NS_COEFFICIENTS,
    eps: float = 1e-7,
    ns_steps: int = 5,
    adjust_lr_fn: str | None = None,
    layout: Layout | None = None,
) -> Optimizer:
    """Muon (Jordan et al., "MomentUm Orthogonalized by Newton–Schulz"): ``torch.optim.Muon``.

    Per weight matrix ``W`` (torch's ``(out, in)``): ``B = lerp(B, G, 1-μ)``; the update
    ``U = lerp(G, B, μ)`` (Nesterov) or ``B``; ``O = newton_schulz(U)``; ``W *= 1 - lr·wd``;
    ``W -= lr·√max(1, out/in)·O`` (``adjust_lr_fn="match_rms_adamw"``: ``0.2·√max(out, in)``).
    Like torch it steps matrices only: route biases and normalisation parameters to another
    optimizer with ``partition``. Newton–Schulz runs in the parameters' dtype, not bfloat16.

    No fused kernel: the step is the Newton–Schulz matrix products (74–89 % of it at 64×64,
    784×64 and 256×256, float32, one thread), which must be NumPy's own BLAS calls to stay
    bit-identical — numba's matmul goes through SciPy's BLAS, another build whose blocking, and
    so summation order, differs — and compiling the elementwise passes around them would save at
    most the remaining quarter.
    """
    mom, wd = hparam(momentum), hparam(weight_decay)

    def init(params: np.ndarray) -> State:
        check_params(params, lr, mom, wd)
        others = [t.name for t in resolve(layout, params).tensors if t.kind != "matrix"]
        if others:
            raise ValueError(
                "muon steps weight matrices only (as torch.optim.Muon); route "
                f"{', '.join(others)} to another optimizer with partition"
            )
        return {"t": counter(), "momentum_buffer": np.zeros_like(params)}

    def update_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        tick(state)
        lr, dt = f64(lr), params.dtype
        m, m1 = per_tensor(typed(f64(mom), dt), 3), per_tensor(typed(1.0 - f64(mom), dt), 3)
        shrink = per_tensor(typed(1.0 - lr * wd, dt), 3)
        for tensor in resolve(layout, params).tensors:
            p, g = torch_view(tensor, params), torch_view(tensor, grads)
            buf = torch_view(tensor, state["momentum_buffer"])
            buf[...] = lerp(buf, g, m1)
            u = lerp(g, buf, m) if nesterov else buf
            o = newton_schulz(u, ns_coefficients, ns_steps, eps)
            ratio = muon_lr_ratio(p.shape, adjust_lr_fn)
            p *= shrink
            p -= per_tensor(typed(lr * ratio, dt), 3) * o

    return Optimizer(init, update_, lr)
