"""Your own optimizer as JSON: ``chain`` composes named gradient transformations, as optax does.

The gradient flows through the transforms in order — each maps the update ``u`` (starting as the
gradient) to a new ``u``, keeping its own state — and the parameters move by the final ``u``:
``p += u``. Hyper-parameters carry PyTorch's names (``lr``, ``betas``, ``eps``, ``weight_decay``,
``momentum``). Exactly one ``scale_by_learning_rate`` turns the update into a step, ``u ← -lr·u``;
its ``lr`` is the chain's ``lr``, the base a schedule scales. Structure-aware transforms
(``scale_by_trust_ratio``, ``orthogonalize``) work per tensor of the layout.

Examples (each equals the named optimizer, see the tests): Adam is ``scale_by_adam →
scale_by_learning_rate``; AdamW adds ``add_decayed_weights`` between them; SGD with momentum is
``trace → scale_by_learning_rate``; Lion is ``scale_by_lion → scale_by_learning_rate``; LAMB (its
pytorch-optimizer variant) is ``scale_by_adam(bias_correction="none") →
scale_by_trust_ratio(max_weight_norm=10) → scale_by_bias_correction → scale_by_learning_rate``;
Muon on a matrix is ``trace(nesterov) → orthogonalize → scale_by_learning_rate``.

The fused form (``fused_``) runs each transform as one pass from ``u`` into a scratch row —
compiled kernels for the transforms with state (:mod:`engine.optimizers.fused`), NumPy's in-place
ufuncs for the one-operation ones, the reference's ``apply`` for the per-tensor ones
(``scale_by_trust_ratio``, ``orthogonalize``) — with the reference's operations in its order, so it
equals ``update_`` bit for bit. It is a pass per transform, not one pass: a single pass over a
chain composed at run time would need a kernel generated and compiled per composition (seconds of
JIT and a cache entry for every distinct chain). The named optimizers a chain spells (adam, adamw,
sgd, lion, lamb) are one pass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, NamedTuple

import numpy as np
from pydantic import Field, model_validator

from engine.layout import Layout
from engine.optimizers import fused
from engine.optimizers.base import (
    OPTIMIZERS,
    Betas,
    HParam,
    NonNegative,
    Optimizer,
    Positive,
    Rate,
    State,
)
from engine.optimizers.factored import NS_COEFFICIENTS, muon_lr_ratio, newton_schulz
from engine.optimizers.kernel import check_params, counter, f64
from engine.optimizers.tensors import norms, norms_into, resolve, torch_view, typed
from engine.registry import Registry
from engine.specbase import SpecModel, Sweep, union_of

#: ``apply(u, state, params, lr, t) -> u``: one transform's step on the update (``t`` 1-based).
ApplyFn = Callable[[np.ndarray, State, np.ndarray, HParam, int], np.ndarray]
#: ``apply_(u, out, state, params, lr, t)``: the same step written into ``out`` (which may be
#: ``u``), without temporaries of the row's size; equal to ``apply`` bit for bit.
InPlaceFn = Callable[[np.ndarray, np.ndarray, State, np.ndarray, HParam, int], None]


class Transform(NamedTuple):
    init: Callable[[np.ndarray], State]
    apply: ApplyFn
    apply_: InPlaceFn | None = None


def _scalar(value: float, params: np.ndarray) -> np.generic:
    """A Python float as the kernels take it: rounded once to the parameters' dtype, as NumPy
    rounds a Python scalar operand of a float32 array."""
    return params.dtype.type(value)  # type: ignore[no-any-return]


TransformFactory = Callable[..., Transform]
TRANSFORMS: Registry[TransformFactory] = Registry("transform")


def _no_state(params: np.ndarray) -> State:
    return {}


class ScaleByAdamSpec(SpecModel):
    name: Literal["scale_by_adam"] = "scale_by_adam"
    betas: Sweep[Betas] = (0.9, 0.999)
    eps: Sweep[Positive] = 1e-8
    bias_correction: Literal["both", "none"] = "both"


@TRANSFORMS.register("scale_by_adam", ScaleByAdamSpec)
def scale_by_adam(
    *,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    bias_correction: str = "both",
    layout: Layout | None = None,
) -> Transform:
    """``m = β1·m + (1-β1)·u``, ``v = β2·v + (1-β2)·u²``; ``u ← m̂/(√v̂ + eps)`` with
    ``m̂ = m/(1-β1^t)`` and ``v̂ = v/(1-β2^t)`` (``bias_correction="none"``: ``u ← m/(√v + eps)``,
    the direction of pytorch-optimizer's LAMB)."""
    b1, b2 = betas

    def init(params: np.ndarray) -> State:
        return {"m": np.zeros_like(params), "v": np.zeros_like(params)}

    def apply(u: np.ndarray, state: State, params: np.ndarray, lr: HParam, t: int) -> np.ndarray:
        m, v = state["m"], state["v"]
        m *= b1
        m += (1.0 - b1) * u
        v *= b2
        v += (1.0 - b2) * (u * u)
        if bias_correction == "none":
            return m / (np.sqrt(v) + eps)
        return (m / (1.0 - b1**t)) / (np.sqrt(v / (1.0 - b2**t)) + eps)

    def apply_(
        u: np.ndarray, out: np.ndarray, state: State, params: np.ndarray, lr: HParam, t: int
    ) -> None:
        fused.chain_adam(
            u, out, state["m"], state["v"], _scalar(b1, params), _scalar(1.0 - b1, params),
            _scalar(b2, params), _scalar(1.0 - b2, params), bias_correction != "none",
            _scalar(1.0 - b1**t, params), _scalar(1.0 - b2**t, params), _scalar(eps, params),
        )  # fmt: skip

    return Transform(init, apply, apply_)


class ScaleByBiasCorrectionSpec(SpecModel):
    name: Literal["scale_by_bias_correction"] = "scale_by_bias_correction"
    beta: Sweep[Rate] = 0.9


@TRANSFORMS.register("scale_by_bias_correction", ScaleByBiasCorrectionSpec)
def scale_by_bias_correction(*, beta: float = 0.9, layout: Layout | None = None) -> Transform:
    """``u ← u/(1-β^t)``: an EMA's bias correction as a separate factor (pytorch-optimizer's LAMB
    applies β1's after the trust ratio, so it does not cancel in the ratio)."""

    def apply_(
        u: np.ndarray, out: np.ndarray, state: State, params: np.ndarray, lr: HParam, t: int
    ) -> None:
        np.divide(u, 1.0 - beta**t, out=out)

    return Transform(_no_state, lambda u, state, params, lr, t: u / (1.0 - beta**t), apply_)


class ScaleByRmsSpec(SpecModel):
    name: Literal["scale_by_rms"] = "scale_by_rms"
    alpha: Sweep[Rate] = 0.99
    eps: Sweep[Positive] = 1e-8


@TRANSFORMS.register("scale_by_rms", ScaleByRmsSpec)
def scale_by_rms(
    *, alpha: float = 0.99, eps: float = 1e-8, layout: Layout | None = None
) -> Transform:
    """torch's RMSprop denominator: ``v = α·v + (1-α)·u²``, ``u ← u/(√v + eps)`` (no bias
    correction; ``v`` starts at 0)."""

    def init(params: np.ndarray) -> State:
        return {"v": np.zeros_like(params)}

    def apply(u: np.ndarray, state: State, params: np.ndarray, lr: HParam, t: int) -> np.ndarray:
        v = state["v"]
        v *= alpha
        v += (1.0 - alpha) * (u * u)
        return u / (np.sqrt(v) + eps)

    def apply_(
        u: np.ndarray, out: np.ndarray, state: State, params: np.ndarray, lr: HParam, t: int
    ) -> None:
        fused.chain_rms(
            u, out, state["v"], _scalar(alpha, params), _scalar(1.0 - alpha, params),
            _scalar(eps, params),
        )  # fmt: skip

    return Transform(init, apply, apply_)


class ScaleBySignSpec(SpecModel):
    name: Literal["scale_by_sign"] = "scale_by_sign"


@TRANSFORMS.register("scale_by_sign", ScaleBySignSpec)
def scale_by_sign(*, layout: Layout | None = None) -> Transform:
    """``u ← sign(u)`` (signSGD; 0 stays 0)."""

    def apply_(
        u: np.ndarray, out: np.ndarray, state: State, params: np.ndarray, lr: HParam, t: int
    ) -> None:
        np.sign(u, out=out)

    return Transform(_no_state, lambda u, state, params, lr, t: np.sign(u), apply_)


class ScaleByLionSpec(SpecModel):
    name: Literal["scale_by_lion"] = "scale_by_lion"
    betas: Sweep[Betas] = (0.9, 0.99)


@TRANSFORMS.register("scale_by_lion", ScaleByLionSpec)
def scale_by_lion(
    *, betas: tuple[float, float] = (0.9, 0.99), layout: Layout | None = None
) -> Transform:
    """Lion's direction: ``u ← sign(β1·m + (1-β1)·u)``, then ``m = β2·m + (1-β2)·u``."""
    b1, b2 = betas

    def init(params: np.ndarray) -> State:
        return {"m": np.zeros_like(params)}

    def apply(u: np.ndarray, state: State, params: np.ndarray, lr: HParam, t: int) -> np.ndarray:
        m = state["m"]
        out = np.sign(m * b1 + u * (1.0 - b1))
        m *= b2
        m += u * (1.0 - b2)
        return out

    def apply_(
        u: np.ndarray, out: np.ndarray, state: State, params: np.ndarray, lr: HParam, t: int
    ) -> None:
        fused.chain_lion(
            u, out, state["m"], _scalar(b1, params), _scalar(1.0 - b1, params),
            _scalar(b2, params), _scalar(1.0 - b2, params),
        )  # fmt: skip

    return Transform(init, apply, apply_)


class TraceSpec(SpecModel):
    name: Literal["trace"] = "trace"
    momentum: Sweep[Rate] = 0.9
    nesterov: bool = False


@TRANSFORMS.register("trace", TraceSpec)
def trace(
    *, momentum: float = 0.9, nesterov: bool = False, layout: Layout | None = None
) -> Transform:
    """Heavy-ball momentum as torch's SGD: ``b = μ·b + u`` (``b = u`` at the first step);
    ``u ← b``, or ``u ← u + μ·b`` with Nesterov."""

    def init(params: np.ndarray) -> State:
        return {"momentum_buffer": np.zeros_like(params)}

    def apply(u: np.ndarray, state: State, params: np.ndarray, lr: HParam, t: int) -> np.ndarray:
        b = state["momentum_buffer"]
        b *= momentum
        b += u
        return u + momentum * b if nesterov else b.copy()

    def apply_(
        u: np.ndarray, out: np.ndarray, state: State, params: np.ndarray, lr: HParam, t: int
    ) -> None:
        fused.chain_trace(u, out, state["momentum_buffer"], _scalar(momentum, params), nesterov)

    return Transform(init, apply, apply_)


class AddDecayedWeightsSpec(SpecModel):
    name: Literal["add_decayed_weights"] = "add_decayed_weights"
    weight_decay: Sweep[NonNegative] = 1e-2


@TRANSFORMS.register("add_decayed_weights", AddDecayedWeightsSpec)
def add_decayed_weights(*, weight_decay: float = 1e-2, layout: Layout | None = None) -> Transform:
    """``u ← u + weight_decay·p``: before an adaptive transform it is L2 regularisation (Adam's
    ``weight_decay``), after it decoupled decay (AdamW's)."""

    def apply_(
        u: np.ndarray, out: np.ndarray, state: State, params: np.ndarray, lr: HParam, t: int
    ) -> None:
        fused.chain_decayed_weights(u, out, params, _scalar(weight_decay, params))

    return Transform(_no_state, lambda u, state, params, lr, t: u + weight_decay * params, apply_)


class ClipByGlobalNormSpec(SpecModel):
    name: Literal["clip_by_global_norm"] = "clip_by_global_norm"
    max_norm: Sweep[Positive] = 1.0


@TRANSFORMS.register("clip_by_global_norm", ClipByGlobalNormSpec)
def clip_by_global_norm(*, max_norm: float = 1.0, layout: Layout | None = None) -> Transform:
    """torch's ``clip_grad_norm_``: ``u ← u·min(1, max_norm/(‖u‖ + 1e-6))`` over the whole row."""

    def init(params: np.ndarray) -> State:
        rows = params.shape[0]
        return {"_squares": np.empty_like(params), "_norm": np.empty((rows, 1), params.dtype)}

    def apply(u: np.ndarray, state: State, params: np.ndarray, lr: HParam, t: int) -> np.ndarray:
        coef = np.minimum(max_norm / (norms(u) + 1e-6), 1.0)
        return u * coef

    def apply_(
        u: np.ndarray, out: np.ndarray, state: State, params: np.ndarray, lr: HParam, t: int
    ) -> None:
        norm = norms_into(u, state["_squares"], state["_norm"])
        np.multiply(u, np.minimum(max_norm / (norm + 1e-6), 1.0), out=out)

    return Transform(init, apply, apply_)


class ClipSpec(SpecModel):
    name: Literal["clip"] = "clip"
    clip_value: Sweep[Positive] = 1.0


@TRANSFORMS.register("clip", ClipSpec)
def clip(*, clip_value: float = 1.0, layout: Layout | None = None) -> Transform:
    """torch's ``clip_grad_value_``: each entry clipped to ``[-clip_value, clip_value]``."""

    def apply_(
        u: np.ndarray, out: np.ndarray, state: State, params: np.ndarray, lr: HParam, t: int
    ) -> None:
        np.clip(u, -clip_value, clip_value, out=out)

    return Transform(
        _no_state, lambda u, state, params, lr, t: np.clip(u, -clip_value, clip_value), apply_
    )


class ScaleByTrustRatioSpec(SpecModel):
    name: Literal["scale_by_trust_ratio"] = "scale_by_trust_ratio"
    eps: Sweep[NonNegative] = 0.0
    max_weight_norm: Sweep[Positive] | None = None


@TRANSFORMS.register("scale_by_trust_ratio", ScaleByTrustRatioSpec)
def scale_by_trust_ratio(
    *, eps: float = 0.0, max_weight_norm: float | None = None, layout: Layout | None = None
) -> Transform:
    """Per tensor, ``u ← u·‖p‖/(‖u‖ + eps)`` (1 where either norm is 0), the weight norm first
    clipped at ``max_weight_norm`` (LAMB's layer-wise adaptation)."""
    from engine.optimizers.trust import trust_ratio

    def apply(u: np.ndarray, state: State, params: np.ndarray, lr: HParam, t: int) -> np.ndarray:
        out = u.copy()
        for tensor in resolve(layout, params).tensors:
            p, ut = tensor.view(params), tensor.view(out)
            weight = norms(p) if max_weight_norm is None else np.minimum(norms(p), max_weight_norm)
            ut *= trust_ratio(weight, norms(ut), eps)
        return out

    return Transform(_no_state, apply)


class OrthogonalizeSpec(SpecModel):
    name: Literal["orthogonalize"] = "orthogonalize"
    ns_coefficients: tuple[float, float, float] = NS_COEFFICIENTS
    ns_steps: Annotated[int, Field(ge=0, lt=100)] = 5
    eps: Sweep[Positive] = 1e-7
    adjust_lr_fn: Literal["original", "match_rms_adamw"] | None = None


@TRANSFORMS.register("orthogonalize", OrthogonalizeSpec)
def orthogonalize(
    *,
    ns_coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
    ns_steps: int = 5,
    eps: float = 1e-7,
    adjust_lr_fn: str | None = None,
    layout: Layout | None = None,
) -> Transform:
    """Muon's Newton–Schulz orthogonalisation of each ``matrix`` tensor (torch's ``(out, in)``
    view), times Muon's shape factor; other tensors pass unchanged."""

    def apply(u: np.ndarray, state: State, params: np.ndarray, lr: HParam, t: int) -> np.ndarray:
        out = u.copy()
        for tensor in resolve(layout, params).tensors:
            if tensor.kind != "matrix":
                continue
            view = torch_view(tensor, out)
            ratio = muon_lr_ratio(view.shape, adjust_lr_fn)
            view[...] = newton_schulz(view, ns_coefficients, ns_steps, eps) * ratio
        return out

    return Transform(_no_state, apply)


class ScaleByLearningRateSpec(SpecModel):
    name: Literal["scale_by_learning_rate"] = "scale_by_learning_rate"
    lr: Sweep[Positive] = 1e-3


@TRANSFORMS.register("scale_by_learning_rate", ScaleByLearningRateSpec)
def scale_by_learning_rate(*, lr: float = 1e-3, layout: Layout | None = None) -> Transform:
    """``u ← -lr_t·u`` with the step's (scheduled) learning rate."""

    def apply(u: np.ndarray, state: State, params: np.ndarray, rate: HParam, t: int) -> np.ndarray:
        return u * typed(-f64(rate), params.dtype)

    def apply_(
        u: np.ndarray, out: np.ndarray, state: State, params: np.ndarray, rate: HParam, t: int
    ) -> None:
        np.multiply(u, typed(-f64(rate), params.dtype), out=out)

    return Transform(_no_state, apply, apply_)


TransformSpec = union_of(TRANSFORMS.specs())


class ChainSpec(SpecModel):
    name: Literal["chain"] = "chain"
    transforms: Annotated[tuple[TransformSpec, ...], Field(min_length=1, max_length=32)]  # type: ignore[valid-type]

    def _rates(self) -> list[Any]:
        return [t for t in self.transforms if isinstance(t, ScaleByLearningRateSpec)]

    @property
    def lr(self) -> float:
        """The ``lr`` of the chain's ``scale_by_learning_rate``: what a schedule scales."""
        return float(self._rates()[0].lr)

    @model_validator(mode="after")
    def _one_learning_rate(self) -> ChainSpec:
        count = len(self._rates())
        if count != 1:
            raise ValueError(
                f"a chain needs exactly one scale_by_learning_rate (it has {count}): its lr is "
                "the rate a schedule scales"
            )
        return self


@OPTIMIZERS.register("chain", ChainSpec)
def chain(*, transforms: tuple[Any, ...], layout: Layout | None = None) -> Optimizer:
    """The transforms applied in order to the gradient, ``p += u`` (module docstring)."""
    built = [
        TRANSFORMS.get(spec.name).factory(
            **{n: getattr(spec, n) for n in type(spec).model_fields if n != "name"}, layout=layout
        )
        for spec in transforms
    ]
    lr0 = next(float(s.lr) for s in transforms if s.name == "scale_by_learning_rate")

    def init(params: np.ndarray) -> State:
        check_params(params)
        resolve(layout, params)
        state: State = {"t": counter(), "_u": np.empty_like(params)}
        for i, transform in enumerate(built):
            state.update({f"{i}:{k}": v for k, v in transform.init(params).items()})
        return state

    def substates(state: State) -> list[State]:
        return [
            {k[len(p) :]: v for k, v in state.items() if k.startswith(p)}
            for p in (f"{i}:" for i in range(len(built)))
        ]

    def update_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        state["t"] += 1
        t = int(state["t"])
        u = grads
        for transform, sub in zip(built, substates(state), strict=True):
            u = transform.apply(u, sub, params, lr, t)
        params += u

    def fused_(grads: np.ndarray, state: State, params: np.ndarray, lr: HParam) -> None:
        state["t"] += 1
        t = int(state["t"])
        u, out = grads, state["_u"]
        for transform, sub in zip(built, substates(state), strict=True):
            if transform.apply_ is not None:
                transform.apply_(u, out, sub, params, lr, t)
            else:
                out[...] = transform.apply(u, sub, params, lr, t)
            u = out
        params += u

    return Optimizer(init, update_, lr0, fused_)
