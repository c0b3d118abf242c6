"""Fused optimizer kernels: one compiled pass over the ``(R, N)`` buffer per update.

Each kernel reads every state array once and writes it once, element by element, doing the same
floating-point operations in the same order as the family's NumPy reference (``update_``), which
is the readable statement of the rule; the tests hold the two to bit equality. Where a rule needs
a reduction between elementwise passes (LAMB's, LARS's and Adafactor's per-tensor norms, Prodigy's
dot product and L1 norm), the reduction stays the reference's NumPy call on the same values and a
kernel does each elementwise stretch around it; per-tensor kernels step a tensor's columns as 1-D
views indexed from 0, which the compiler vectorises. A ``chain``'s transforms are a kernel each.

Per-run coefficients arrive as the reference's ``(R, 1)`` columns of the parameters' dtype
(computed once per update in float64 and rounded once), so a float32 kernel does float32
arithmetic only: there is no literal constant in a kernel's arithmetic, since a float64 literal
would widen it — except in Prodigy's step, whose reference itself adds float64 columns.

``lerp`` is PyTorch's two-sided form: ``a + w·(b - a)`` for ``|w| < ½`` and ``b - (b - a)·(1 - w)``
otherwise; ``maximum`` propagates NaN as ``np.maximum`` and ``torch.maximum`` do.
"""

from __future__ import annotations

import numpy as np

from engine.jit import inline, njit
from engine.recording import pair_norms

# Weight-decay modes of the kernels that offer both.
NO_DECAY, L2_DECAY, DECOUPLED_DECAY = 0, 1, 2


@inline
def lerp(a, b, w, small, one_minus_w):
    if small:
        return a + w * (b - a)
    return b - (b - a) * one_minus_w


@inline
def maximum(a, b):
    if a != a or b != b:
        return a + b
    return a if a >= b else b


@inline
def decay_and_moments(
    p, g, m, v, r, j, decay_mode, wd_r, decay_r, w_r, small_r, omw_r, b2_r, omb2_r
):
    """The Adam family's head at element ``(r, j)``: weight decay (decoupled on ``p``, or L2 into
    ``g``), then ``m = lerp(m, g, 1-β1)`` and ``v = β2·v + ((1-β2)·g)·g``, both stored; returns
    ``(p, g, m, v)`` after it (the reference's ``_decay_and_moments``)."""
    pj, gj = p[r, j], g[r, j]
    if decay_mode == DECOUPLED_DECAY:
        pj = pj * decay_r
    elif decay_mode == L2_DECAY:
        gj = gj + wd_r * pj
    mj = lerp(m[r, j], gj, w_r, small_r, omw_r)
    m[r, j] = mj
    vj = v[r, j] * b2_r + (omb2_r * gj) * gj
    v[r, j] = vj
    return pj, gj, mj, vj


@inline
def sgd_element(p, g, buf, r, j, first, momentum, nesterov, has_wd, wd_r, mu_r, gain_r, k_r):
    """SGD's update of element ``(r, j)``, stored; returns the parameter's new value."""
    gj = g[r, j]
    if has_wd:
        gj = gj + wd_r * p[r, j]
    d = gj
    if momentum:
        b = gj if first else buf[r, j] * mu_r + gain_r * gj
        buf[r, j] = b
        d = gj + mu_r * b if nesterov else b
    new = p[r, j] + k_r * d
    p[r, j] = new
    return new


@njit
def sgd_step(p, g, buf, first, momentum, nesterov, has_wd, wd, mu, gain, k):
    rows, cols = p.shape
    for r in range(rows):
        wd_r, mu_r, gain_r, k_r = wd[r, 0], mu[r, 0], gain[r, 0], k[r, 0]
        for j in range(cols):
            sgd_element(p, g, buf, r, j, first, momentum, nesterov, has_wd, wd_r, mu_r, gain_r, k_r)


@njit
def sgd_step_recorded(p, g, buf, first, momentum, nesterov, has_wd, wd, mu, gain, k, gn, un):
    """:func:`sgd_step` that also writes ``gn[r] = ‖g[r]‖`` and ``un[r] = ‖Δp[r]‖`` as the run loop
    records them (:mod:`engine.recording`): each row's update goes to a scratch row while the
    row is stepped, then both norms are taken side by side."""
    diff = np.empty(p.shape[1], dtype=p.dtype)
    for r in range(p.shape[0]):
        gn[r], un[r] = sgd_row_recorded(
            p, g, buf, r, first, momentum, nesterov, has_wd, wd, mu, gain, k, diff
        )


@njit
def sgd_row_recorded(p, g, buf, r, first, momentum, nesterov, has_wd, wd, mu, gain, k, diff):
    """Row ``r`` of :func:`sgd_step_recorded` (``diff``: a scratch row); returns ``(‖g[r]‖,
    ‖Δp[r]‖)``. A caller that has just computed ``g[r]`` steps the run while the row is in
    cache (:mod:`engine.problems.mlp_step`)."""
    wd_r, mu_r, gain_r, k_r = wd[r, 0], mu[r, 0], gain[r, 0], k[r, 0]
    for j in range(p.shape[1]):
        old = p[r, j]
        new = sgd_element(
            p, g, buf, r, j, first, momentum, nesterov, has_wd, wd_r, mu_r, gain_r, k_r
        )
        diff[j] = new - old
    return pair_norms(g[r], diff)


@njit
def delta_rule_step(p, g, delta, alpha, k):
    rows, cols = p.shape
    for r in range(rows):
        alpha_r, k_r = alpha[r, 0], k[r, 0]
        for j in range(cols):
            d = delta[r, j] * alpha_r + g[r, j] * k_r
            delta[r, j] = d
            p[r, j] = p[r, j] + d


@njit
def adagrad_step(p, g, acc, has_wd, wd, eps, k):
    rows, cols = p.shape
    for r in range(rows):
        wd_r, eps_r, k_r = wd[r, 0], eps[r, 0], k[r, 0]
        for j in range(cols):
            gj = g[r, j]
            if has_wd:
                gj = gj + wd_r * p[r, j]
            s = acc[r, j] + gj * gj
            acc[r, j] = s
            p[r, j] = p[r, j] + (k_r * gj) / (np.sqrt(s) + eps_r)


@njit
def adagrad_seed_step(p, g, acc, has_wd, wd, eps, k):
    rows, cols = p.shape
    for r in range(rows):
        wd_r, eps_r, k_r = wd[r, 0], eps[r, 0], k[r, 0]
        for j in range(cols):
            gj = g[r, j]
            if has_wd:
                gj = gj + wd_r * p[r, j]
            p[r, j] = p[r, j] + gj / (np.sqrt(acc[r, j]) + eps_r) * k_r
            acc[r, j] = acc[r, j] + gj * gj


@njit
def rmsprop_step(
    p,
    g,
    v,
    g_avg,
    buf,
    centered,
    has_wd,
    wd,
    alpha,
    one_minus_alpha,
    w,
    small,
    one_minus_w,
    eps,
    use_buf,
    mu,
    k,
):
    rows, cols = p.shape
    for r in range(rows):
        wd_r, a_r, oma_r, eps_r, mu_r, k_r = (
            wd[r, 0],
            alpha[r, 0],
            one_minus_alpha[r, 0],
            eps[r, 0],
            mu[r, 0],
            k[r, 0],
        )
        w_r, small_r, omw_r, buf_r = w[r, 0], small[r, 0], one_minus_w[r, 0], use_buf[r, 0]
        for j in range(cols):
            gj = g[r, j]
            if has_wd:
                gj = gj + wd_r * p[r, j]
            vj = v[r, j] * a_r + (oma_r * gj) * gj
            v[r, j] = vj
            if centered:
                ga = lerp(g_avg[r, j], gj, w_r, small_r, omw_r)
                g_avg[r, j] = ga
                avg = np.sqrt(vj - ga * ga) + eps_r
            else:
                avg = np.sqrt(vj) + eps_r
            if buf_r:
                b = buf[r, j] * mu_r + gj / avg
                buf[r, j] = b
                p[r, j] = p[r, j] + k_r * b
            else:
                p[r, j] = p[r, j] + (k_r * gj) / avg


@njit
def rmsprop_plain_step(p, g, v, has_wd, wd, alpha, one_minus_alpha, eps, k):
    """:func:`rmsprop_step` without centring or momentum (the default): the same numbers, one
    loop with no per-element branch on a flag (1e7, float32: 0.89 → 0.95 of the roofline in
    ``bench/optimizers.py``; the same loop reached from :func:`rmsprop_step` row by row, inlined
    beside its flagged loop, stayed as slow)."""
    rows, cols = p.shape
    for r in range(rows):
        wd_r, a_r, oma_r, eps_r, k_r = (
            wd[r, 0],
            alpha[r, 0],
            one_minus_alpha[r, 0],
            eps[r, 0],
            k[r, 0],
        )
        for j in range(cols):
            gj = g[r, j]
            if has_wd:
                gj = gj + wd_r * p[r, j]
            vj = v[r, j] * a_r + (oma_r * gj) * gj
            v[r, j] = vj
            p[r, j] = p[r, j] + (k_r * gj) / (np.sqrt(vj) + eps_r)


@njit
def adadelta_step(p, g, v, u, has_wd, wd, rho, one_minus_rho, eps, k):
    rows, cols = p.shape
    for r in range(rows):
        wd_r, rho_r, omr_r = wd[r, 0], rho[r, 0], one_minus_rho[r, 0]
        eps_r, k_r = eps[r, 0], k[r, 0]
        for j in range(cols):
            gj = g[r, j]
            if has_wd:
                gj = gj + wd_r * p[r, j]
            vj = v[r, j] * rho_r + (omr_r * gj) * gj
            v[r, j] = vj
            delta = np.sqrt(u[r, j] + eps_r) / np.sqrt(vj + eps_r) * gj
            u[r, j] = u[r, j] * rho_r + (omr_r * delta) * delta
            p[r, j] = p[r, j] + k_r * delta


@njit
def adam_step(
    p,
    g,
    m,
    v,
    v_max,
    amsgrad,
    decay_mode,
    wd,
    decay,
    w,
    small,
    one_minus_w,
    b2,
    one_minus_b2,
    bc2_sqrt,
    eps,
    k,
):
    rows, cols = p.shape
    for r in range(rows):
        wd_r, decay_r, w_r, small_r, omw_r = (
            wd[r, 0],
            decay[r, 0],
            w[r, 0],
            small[r, 0],
            one_minus_w[r, 0],
        )
        b2_r, omb2_r, bc2s_r, eps_r, k_r = (
            b2[r, 0],
            one_minus_b2[r, 0],
            bc2_sqrt[r, 0],
            eps[r, 0],
            k[r, 0],
        )
        for j in range(cols):
            pj, _, mj, vj = decay_and_moments(
                p, g, m, v, r, j, decay_mode, wd_r, decay_r, w_r, small_r, omw_r, b2_r, omb2_r
            )
            if amsgrad:
                vj = maximum(v_max[r, j], vj)
                v_max[r, j] = vj
            p[r, j] = pj + (k_r * mj) / (np.sqrt(vj) / bc2s_r + eps_r)


@njit
def adamax_step(p, g, m, u, has_wd, wd, w, small, one_minus_w, b2, eps, k):
    rows, cols = p.shape
    for r in range(rows):
        wd_r, w_r, small_r, omw_r, b2_r, eps_r, k_r = (
            wd[r, 0],
            w[r, 0],
            small[r, 0],
            one_minus_w[r, 0],
            b2[r, 0],
            eps[r, 0],
            k[r, 0],
        )
        for j in range(cols):
            gj = g[r, j]
            if has_wd:
                gj = gj + wd_r * p[r, j]
            mj = lerp(m[r, j], gj, w_r, small_r, omw_r)
            m[r, j] = mj
            uj = maximum(u[r, j] * b2_r, np.abs(gj) + eps_r)
            u[r, j] = uj
            p[r, j] = p[r, j] + (k_r * mj) / uj


@njit
def nadam_step(
    p, g, m, v, decay_mode, wd, decay, w, small, one_minus_w, b2, one_minus_b2, bc2, eps, k1, k2
):
    rows, cols = p.shape
    for r in range(rows):
        wd_r, decay_r, w_r, small_r, omw_r = (
            wd[r, 0],
            decay[r, 0],
            w[r, 0],
            small[r, 0],
            one_minus_w[r, 0],
        )
        b2_r, omb2_r, bc2_r, eps_r, k1_r, k2_r = (
            b2[r, 0],
            one_minus_b2[r, 0],
            bc2[r, 0],
            eps[r, 0],
            k1[r, 0],
            k2[r, 0],
        )
        for j in range(cols):
            pj, gj, mj, vj = decay_and_moments(
                p, g, m, v, r, j, decay_mode, wd_r, decay_r, w_r, small_r, omw_r, b2_r, omb2_r
            )
            den = np.sqrt(vj / bc2_r) + eps_r
            pj = pj + (k1_r * gj) / den
            p[r, j] = pj + (k2_r * mj) / den


@njit
def radam_step(
    p,
    g,
    m,
    v,
    decay_mode,
    wd,
    decay,
    w,
    small,
    one_minus_w,
    b2,
    one_minus_b2,
    rectify,
    bc1,
    lr,
    one,
    eps,
    bc2_sqrt,
    rect,
):
    rows, cols = p.shape
    for r in range(rows):
        wd_r, decay_r, w_r, small_r, omw_r = (
            wd[r, 0],
            decay[r, 0],
            w[r, 0],
            small[r, 0],
            one_minus_w[r, 0],
        )
        b2_r, omb2_r, rectify_r, bc1_r, lr_r = (
            b2[r, 0],
            one_minus_b2[r, 0],
            rectify[r, 0],
            bc1[r, 0],
            lr[r, 0],
        )
        one_r, eps_r, bc2s_r, rect_r = one[r, 0], eps[r, 0], bc2_sqrt[r, 0], rect[r, 0]
        for j in range(cols):
            pj, _, mj, vj = decay_and_moments(
                p, g, m, v, r, j, decay_mode, wd_r, decay_r, w_r, small_r, omw_r, b2_r, omb2_r
            )
            step = mj / bc1_r * lr_r
            if rectify_r:
                step = step * (one_r / (np.sqrt(vj) + eps_r) * bc2s_r) * rect_r
            p[r, j] = pj - step


@njit
def lion_step(p, g, m, has_wd, decay, b1, one_minus_b1, b2, one_minus_b2, k):
    rows, cols = p.shape
    for r in range(rows):
        decay_r, b1_r, omb1_r, b2_r, omb2_r, k_r = (
            decay[r, 0],
            b1[r, 0],
            one_minus_b1[r, 0],
            b2[r, 0],
            one_minus_b2[r, 0],
            k[r, 0],
        )
        for j in range(cols):
            pj, gj, mj = p[r, j], g[r, j], m[r, j]
            if has_wd:
                pj = pj * decay_r
            c = np.sign(mj * b1_r + omb1_r * gj)
            p[r, j] = pj + k_r * c
            m[r, j] = mj * b2_r + omb2_r * gj


@inline
def window_total(slots, back, r, j, pos, full):
    """The window's sum at element ``(r, j)`` with fill position ``pos``."""
    if full:
        return back[r, j] + slots[pos, r, j]
    return back[r, j]


@inline
def window_store(slots, back, r, j, pos, x, zero):
    """Write ``x`` at ``pos`` and add it to the back block, folding the block when it fills."""
    slots[pos, r, j] = x
    back[r, j] = back[r, j] + x
    length = slots.shape[0]
    if pos + 1 == length:
        for q in range(length - 2, -1, -1):
            slots[q, r, j] = slots[q, r, j] + slots[q + 1, r, j]
        back[r, j] = zero


@njit
def rmsprop_window_step(p, g, slots, back, pos, pos_after, full_after, mean, mix, eps, k):
    rows, cols = p.shape
    for r in range(rows):
        mean_r, mix_r, eps_r, k_r = mean[r, 0], mix[r, 0], eps[r, 0], k[r, 0]
        zero = mix_r - mix_r
        for j in range(cols):
            gj = g[r, j]
            g2 = gj * gj
            window_store(slots, back, r, j, pos, g2, zero)
            total = window_total(slots, back, r, j, pos_after, full_after)
            den = np.sqrt(total * mean_r + g2 * mix_r) + eps_r
            p[r, j] = p[r, j] + gj / den * k_r


@njit
def adadelta_window_step(
    p,
    g,
    delta,
    sq_slots,
    sq_back,
    sq_pos,
    sq_pos_after,
    sq_full_after,
    use_dsq,
    dsq_slots,
    dsq_back,
    dsq_pos,
    dsq_full,
    mean1,
    mix1,
    mean2,
    mix2,
    eps,
    k,
):
    rows, cols = p.shape
    for r in range(rows):
        mean1_r, mix1_r, mean2_r, mix2_r, eps_r, k_r = (
            mean1[r, 0],
            mix1[r, 0],
            mean2[r, 0],
            mix2[r, 0],
            eps[r, 0],
            k[r, 0],
        )
        zero = mix1_r - mix1_r
        for j in range(cols):
            gj = g[r, j]
            g2 = gj * gj
            window_store(sq_slots, sq_back, r, j, sq_pos, g2, zero)
            total = window_total(sq_slots, sq_back, r, j, sq_pos_after, sq_full_after)
            den = np.sqrt(total * mean1_r + g2 * mix1_r) + eps_r
            dj = delta[r, j]
            d2 = dj * dj
            if use_dsq:
                num = window_total(dsq_slots, dsq_back, r, j, dsq_pos, dsq_full) * mean2_r
                window_store(dsq_slots, dsq_back, r, j, dsq_pos, d2, zero)
                num = num + d2 * mix2_r
            else:
                num = d2 * mix2_r
            step = np.sqrt(num + eps_r) / den * gj * k_r
            delta[r, j] = step
            p[r, j] = p[r, j] + step


@inline
def minimum(a, b):
    if a != a or b != b:
        return a + b
    return a if a <= b else b


@njit
def rprop_step(p, g, prev, step, minus, plus, one, low, high):
    """``np.clip`` is ``minimum(maximum(x, low), high)``, NaN-propagating like NumPy's; a flipped
    sign stores ``+0`` (the reference's ``np.where(flip, 0.0, g)``), made as ``minus - minus``."""
    rows, cols = p.shape
    for r in range(rows):
        minus_r, plus_r, one_r, low_r, high_r = (
            minus[r, 0],
            plus[r, 0],
            one[r, 0],
            low[r, 0],
            high[r, 0],
        )
        zero = minus_r - minus_r
        for j in range(cols):
            gj = g[r, j]
            s = np.sign(gj * prev[r, j])
            factor = plus_r if s > 0 else (minus_r if s < 0 else one_r)
            st = minimum(maximum(step[r, j] * factor, low_r), high_r)
            step[r, j] = st
            if factor == minus_r:
                gj = zero
            p[r, j] = p[r, j] - np.sign(gj) * st
            prev[r, j] = gj


@njit
def asgd_step(p, g, ax, has_wd, wd, shrink, eta, averaging, mu):
    rows, cols = p.shape
    for r in range(rows):
        wd_r, shrink_r, eta_r, avg_r, mu_r = (
            wd[r, 0],
            shrink[r, 0],
            eta[r, 0],
            averaging[r, 0],
            mu[r, 0],
        )
        for j in range(cols):
            gj = g[r, j]
            if has_wd:
                gj = gj + wd_r * p[r, j]
            pj = p[r, j] * shrink_r - gj * eta_r
            p[r, j] = pj
            if avg_r:
                ax[r, j] = ax[r, j] + (pj - ax[r, j]) * mu_r
            else:
                ax[r, j] = pj


@njit
def schedule_free_step(
    p, g, z, v, adaptive, b2, one_minus_b2, bc2, eps, has_wd, wd, w, small, one_minus_w, k, lr
):
    """``adaptive``: AdamW's ``ĝ = g/(√(v/bc2) + eps)`` with ``v`` updated; else SGD's raw ``g``."""
    rows, cols = p.shape
    for r in range(rows):
        b2_r, omb2_r, bc2_r, eps_r, wd_r = (
            b2[r, 0],
            one_minus_b2[r, 0],
            bc2[r, 0],
            eps[r, 0],
            wd[r, 0],
        )
        w_r, small_r, omw_r, k_r, lr_r = w[r, 0], small[r, 0], one_minus_w[r, 0], k[r, 0], lr[r, 0]
        for j in range(cols):
            gj, pj, zj = g[r, j], p[r, j], z[r, j]
            if adaptive:
                vj = v[r, j] * b2_r + omb2_r * (gj * gj)
                v[r, j] = vj
                gj = gj / (np.sqrt(vj / bc2_r) + eps_r)
            if has_wd:
                gj = gj + wd_r * pj
            p[r, j] = lerp(pj, zj, w_r, small_r, omw_r) + k_r * gj
            z[r, j] = zj - lr_r * gj


@inline
def lars_segment(p, g, buf, scaled, wd, ratio, mu, damp, use_mu, nesterov, lr):
    for j in range(p.shape[0]):
        gj = g[j]
        if scaled:
            gj = (gj + wd * p[j]) * ratio
        b = buf[j] * mu + damp * gj
        buf[j] = b
        d = gj
        if use_mu:
            d = gj + mu * b if nesterov else b
        p[j] = p[j] - lr * d


@njit
def lars_step(p, g, buf, stops, scaled, wd, ratio, mu, damp, use_mu, nesterov, lr):
    """Tensor ``t`` of a row is columns ``stops[t-1]:stops[t]``; where ``scaled[t]`` (a matrix)
    its gradient becomes ``(g + wd·p)·ratio[r, t]`` before the momentum step. Each segment is
    stepped as 1-D views indexed from 0, a loop the compiler vectorises (a loop from a variable
    start is not: the index might be negative, which NumPy semantics wrap)."""
    for r in range(p.shape[0]):
        start = 0
        for t in range(stops.shape[0]):
            stop = stops[t]
            lars_segment(
                p[r, start:stop], g[r, start:stop], buf[r, start:stop], scaled[t], wd[r, 0],
                ratio[r, t], mu[r, 0], damp[r, 0], use_mu[r, 0], nesterov, lr[r, 0],
            )  # fmt: skip
            start = stop


@njit
def lamb_direction(
    p, g, m, v, u, averaging, b1, one_minus_b1, b2, one_minus_b2, mode, shrink, wd, eps
):
    """LAMB up to its per-tensor norms: the moments, decoupled decay of ``p`` (``mode``) and the
    direction ``u = m/(√v + eps)`` (``+ wd·p`` for L2 decay), stored for the norms and the step."""
    rows, cols = p.shape
    for r in range(rows):
        b1_r, omb1_r, b2_r, omb2_r = b1[r, 0], one_minus_b1[r, 0], b2[r, 0], one_minus_b2[r, 0]
        shrink_r, wd_r, eps_r = shrink[r, 0], wd[r, 0], eps[r, 0]
        for j in range(cols):
            gj, pj = g[r, j], p[r, j]
            mj = m[r, j] * b1_r + (omb1_r * gj if averaging else gj)
            m[r, j] = mj
            vj = v[r, j] * b2_r + (omb2_r * gj) * gj
            v[r, j] = vj
            if mode == DECOUPLED_DECAY:
                pj = pj * shrink_r
                p[r, j] = pj
            uj = mj / (np.sqrt(vj) + eps_r)
            if mode == L2_DECAY:
                uj = uj + wd_r * pj
            u[r, j] = uj


@inline
def scaled_decrement(p, u, has_decay, shrink, scale):
    for j in range(p.shape[0]):
        pj = p[j] * shrink if has_decay else p[j]
        p[j] = pj - scale * u[j]


@njit
def segment_step(p, u, stops, has_decay, shrink, scale):
    """``p *= shrink`` (``has_decay``), then ``p -= scale[r, t]·u`` over tensor ``t``'s columns
    ``stops[t-1]:stops[t]`` of each row (as 1-D views, see :func:`lars_step`)."""
    for r in range(p.shape[0]):
        start = 0
        for t in range(stops.shape[0]):
            stop = stops[t]
            scaled_decrement(
                p[r, start:stop], u[r, start:stop], has_decay, shrink[r, 0], scale[r, t]
            )
            start = stop


@njit
def adafactor_vector(g, var, u, start, stop, w, small, one_minus_w, tiny2):
    """A vector tensor (columns ``start:stop``): ``var = lerp(var, g², w)`` (``var`` is the
    tensor's own ``(R, size)`` state) and ``u = g/√max(var, tiny²)``."""
    for r in range(g.shape[0]):
        gr, ur, vr = g[r, start:stop], u[r, start:stop], var[r]
        w_r, small_r, omw_r, tiny2_r = w[r, 0], small[r, 0], one_minus_w[r, 0], tiny2[r, 0]
        for j in range(gr.shape[0]):
            gj = gr[j]
            vj = lerp(vr[j], gj * gj, w_r, small_r, omw_r)
            vr[j] = vj
            ur[j] = gj / np.sqrt(maximum(vj, tiny2_r))


@njit
def adafactor_matrix(g, u, start, stop, tiny2):
    """A factored matrix (columns ``start:stop``): ``u`` holds the factored ``var`` on entry,
    ``u = g/√max(var, tiny²)`` on exit."""
    for r in range(g.shape[0]):
        gr, ur, tiny2_r = g[r, start:stop], u[r, start:stop], tiny2[r, 0]
        for j in range(gr.shape[0]):
            ur[j] = gr[j] / np.sqrt(maximum(ur[j], tiny2_r))


@njit
def prodigy_moments(g, m, v, s, abs_s, b1, c1, b2, c2, b3, c3):
    """Prodigy's state EMAs, ``m = β1·m + c1·g``, ``v = β2·v + c2·g²``, ``s = β3·s + c3·g``, and
    ``|s|`` for its L1 norm. The ``c`` columns are float64 (they carry ``d``), so as in the
    reference each sum is taken in float64 and rounded once to the state's dtype."""
    rows, cols = g.shape
    for r in range(rows):
        b1_r, c1_r, b2_r, c2_r, b3_r, c3_r = (
            b1[r, 0],
            c1[r, 0],
            b2[r, 0],
            c2[r, 0],
            b3[r, 0],
            c3[r, 0],
        )
        for j in range(cols):
            gj = g[r, j]
            m[r, j] = m[r, j] * b1_r + c1_r * gj
            v[r, j] = v[r, j] * b2_r + c2_r * (gj * gj)
            s[r, j] = s[r, j] * b3_r + c3_r * gj
            abs_s[r, j] = np.abs(s[r, j])


@njit
def prodigy_step(p, g, m, v, live, decouple, decay, with_momentum, km, kg, d_eps):
    """Where a run is live: ``p += decay·p`` (decoupled), then ``p += k·m/(√v + d·eps)`` (``k·g``
    without momentum), each sum in float64 (float64 columns) and stored in ``p``'s dtype."""
    rows, cols = p.shape
    for r in range(rows):
        live_r, decay_r, mom_r, km_r, kg_r, d_eps_r = (
            live[r, 0],
            decay[r, 0],
            with_momentum[r, 0],
            km[r, 0],
            kg[r, 0],
            d_eps[r, 0],
        )
        for j in range(cols):
            if decouple:
                p[r, j] = p[r, j] + (p[r, j] * decay_r if live_r else 0.0)
            den = np.sqrt(v[r, j]) + d_eps_r
            move = (km_r * m[r, j] if mom_r else kg_r * g[r, j]) / den
            p[r, j] = p[r, j] + (move if live_r else 0.0)


# --- chain transforms: ``out`` from ``u`` (the same array after the first transform) ----------


@njit
def chain_adam(u, out, m, v, b1, c1, b2, c2, corrected, bc1, bc2, eps):
    rows, cols = u.shape
    for r in range(rows):
        for j in range(cols):
            uj = u[r, j]
            mj = m[r, j] * b1 + c1 * uj
            m[r, j] = mj
            vj = v[r, j] * b2 + c2 * (uj * uj)
            v[r, j] = vj
            if corrected:
                out[r, j] = (mj / bc1) / (np.sqrt(vj / bc2) + eps)
            else:
                out[r, j] = mj / (np.sqrt(vj) + eps)


@njit
def chain_rms(u, out, v, alpha, c, eps):
    rows, cols = u.shape
    for r in range(rows):
        for j in range(cols):
            uj = u[r, j]
            vj = v[r, j] * alpha + c * (uj * uj)
            v[r, j] = vj
            out[r, j] = uj / (np.sqrt(vj) + eps)


@njit
def chain_lion(u, out, m, b1, c1, b2, c2):
    rows, cols = u.shape
    for r in range(rows):
        for j in range(cols):
            uj, mj = u[r, j], m[r, j]
            out[r, j] = np.sign(mj * b1 + uj * c1)
            m[r, j] = mj * b2 + uj * c2


@njit
def chain_trace(u, out, buf, momentum, nesterov):
    rows, cols = u.shape
    for r in range(rows):
        for j in range(cols):
            uj = u[r, j]
            b = buf[r, j] * momentum + uj
            buf[r, j] = b
            out[r, j] = uj + momentum * b if nesterov else b


@njit
def chain_decayed_weights(u, out, p, wd):
    rows, cols = u.shape
    for r in range(rows):
        for j in range(cols):
            out[r, j] = u[r, j] + wd * p[r, j]
