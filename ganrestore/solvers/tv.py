r"""Total-variation restoration by a primal-dual (Chambolle-Pock) method.

Problem (the TV baseline of Yeh et al. 2018, after Afonso, Bioucas-Dias &
Figueiredo, "An augmented Lagrangian approach to the constrained optimization
formulation of imaging inverse problems", IEEE TIP 2011 -- SALSA / C-SALSA):

.. math::

    \min_{x \in [0,1]^n}\; \tfrac12 \|A x - y\|_2^2 + \lambda\, \mathrm{TV}(x)
    \qquad\text{or, constrained,}\qquad
    \min_{x \in [0,1]^n,\; A x = y}\; \mathrm{TV}(x).

``TV`` is the isotropic total variation with forward differences and
Neumann boundary (the last row / column difference is zero):

* ``vectorial`` (default, colour TV of Blomgren & Chan / Bresson & Chan):
  :math:`\sum_{ij} \sqrt{\sum_c (\nabla_x x_c)_{ij}^2 + (\nabla_y x_c)_{ij}^2}`,
  one edge set shared by the three channels;
* ``channel``: :math:`\sum_c \sum_{ij} \sqrt{(\nabla_x x_c)_{ij}^2 + (\nabla_y x_c)_{ij}^2}`.

Solver: Chambolle & Pock (J. Math. Imaging Vis. 2011), Algorithm 1, over-relaxed
(Condat 2013, factor 1.8), with ``K = [grad; A]``, ``G`` the indicator of the
box and ``F(q, p) = lambda ||q||_{2,1} + 1/2 ||p - y||^2``.  Only ``A`` and
``A^T`` are used, so every operator works unchanged.  The constrained variant
takes ``G`` = the indicator of ``{A x = y}`` (exact projection
``v - A^+(A v - y)`` through ``A_dagger``) and moves the box to the dual side
(``K = [grad; I]``); for a pixel mask ``G`` is box and data at once (observed
pixels fixed to ``y``).  Where the
data term is ``1/2||x - y||^2`` (``A = I``: denoising, quantisation) it moves
into ``G`` (strongly convex, closed-form prox ``clip((v + tau y)/(1 + tau))``) and
the accelerated Algorithm 2 (O(1/k^2)) is used.  Step sizes satisfy
``tau (8 sigma_q + ||A||^2 sigma_p) < 1``.

Stopping: relative change ``||x_k - x_{k-1}|| / ||x_{k-1}|| <= tol`` per image
(or ``max_iter``); the final primal objective and the duality gap (a
certificate of sub-optimality, available for the penalised problem) are
reported per image.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import operators as ops
from .common import SolverResult, Tracker, data_fit, freeze, initial_estimate, operator_norm_sq

GRAD_NORM_SQ = 8.0  # ||grad||^2 <= 8 for forward differences in 2-D


def grad(x: torch.Tensor) -> torch.Tensor:
    """Forward differences, Neumann boundary: ``(B, C, H, W) -> (B, 2, C, H, W)``
    (component 0 along width, 1 along height)."""
    gx = torch.zeros_like(x)
    gy = torch.zeros_like(x)
    gx[..., :, :-1] = x[..., :, 1:] - x[..., :, :-1]
    gy[..., :-1, :] = x[..., 1:, :] - x[..., :-1, :]
    return torch.stack([gx, gy], 1)


def grad_adjoint(q: torch.Tensor) -> torch.Tensor:
    """``grad^T q`` (minus the discrete divergence), exact adjoint of :func:`grad`."""
    qx, qy = q[:, 0], q[:, 1]
    out = torch.zeros_like(qx)
    a = qx[..., :, :-1]
    out[..., :, 1:] += a
    out[..., :, :-1] -= a
    b = qy[..., :-1, :]
    out[..., 1:, :] += b
    out[..., :-1, :] -= b
    return out


def _dual_ascent(q: torch.Tensor, x: torch.Tensor, sigma: float) -> torch.Tensor:
    """``q + sigma grad(x)`` in one pass (fewer temporaries than ``grad``)."""
    out = q.clone()
    out[:, 0, ..., :, :-1].add_(x[..., :, 1:] - x[..., :, :-1], alpha=sigma)
    out[:, 1, ..., :-1, :].add_(x[..., 1:, :] - x[..., :-1, :], alpha=sigma)
    return out


def _pointwise_norm(g: torch.Tensor, mode: str) -> torch.Tensor:
    """Norm of the gradient at each pixel: (B,2,C,H,W) -> (B,1,1,H,W) (vectorial)
    or (B,1,C,H,W) (per channel)."""
    if mode == "vectorial":
        return (g * g).sum(dim=(1, 2), keepdim=True).sqrt()
    if mode == "channel":
        return (g * g).sum(dim=1, keepdim=True).sqrt()
    raise ValueError(f"unknown TV mode {mode!r} (vectorial | channel)")


def tv_value(x: torch.Tensor, mode: str = "vectorial") -> torch.Tensor:
    """Per-image isotropic TV of ``x`` (B, C, H, W)."""
    return _pointwise_norm(grad(x), mode).flatten(1).sum(1)


def _project_ball(q: torch.Tensor, radius: float, mode: str, inplace: bool = False) -> torch.Tensor:
    """Pointwise projection onto ``{|q_ij| <= radius}`` (vectorial or per channel)."""
    dims = (1, 2) if mode == "vectorial" else (1,)
    if mode not in ("vectorial", "channel"):
        raise ValueError(f"unknown TV mode {mode!r} (vectorial | channel)")
    # (q*q).sum().sqrt(): linalg.vector_norm over these dims is ~40x slower on the CPU
    n = (q * q).sum(dim=dims, keepdim=True).sqrt_().div_(radius).clamp_min_(1.0)
    return q.div_(n) if inplace else q / n


def tv_objective(op, x, y, lam, mode="vectorial", constrained=False):
    """Per-image objective: ``1/2||Ax-y||^2 + lam TV(x)`` or ``TV(x)`` (constrained)."""
    tv = tv_value(x, mode)
    return tv if constrained else data_fit(op, x, y) + lam * tv


def solve_tv(op, y: torch.Tensor, lam: float, *, mode: str = "vectorial",
             constrained: bool = False, x0: torch.Tensor | None = None,
             max_iter: int = 600, tol: float = 3e-5, sigma: float | None = None,
             check_every: int = 10, relax: float = 1.8, box: bool = True,
             dual_ratio: float = 1.0) -> SolverResult:
    """Batched TV restoration (see the module docstring for the maths).

    ``y``: a batch of observations (what ``op.A`` returns); ``lam``: the TV weight
    (unused when ``constrained``: the problem is then ``min TV`` s.t. ``A x = y``);
    ``x0``: start (default :func:`~ganrestore.solvers.common.initial_estimate`
    with the pseudo-inverse);
    ``sigma``: dual step (default ``3 lam``, balancing the primal and dual
    distances; ``tau`` follows from ``tau sigma ||K||^2 = 0.99``); the relative
    change is checked every ``check_every`` iterations.
    Returns a :class:`SolverResult` with ``x`` in ``[0, 1]``.
    """
    lam = float(lam)
    if not constrained and lam < 0:
        raise ValueError("lam must be >= 0")
    with torch.no_grad():
        # start: pseudo-inverse + mean fill of the null space (for the luma
        # operator much closer to the TV minimiser than the grey image)
        x = (initial_estimate(op, y, op.A_dagger) if x0 is None else x0.clone())
        if box:
            x = x.clamp(0, 1)
        B = x.shape[0]
        shape = x.shape[1:]
        radius = 1.0 if constrained else lam
        # pixel-diagonal data terms go into G with a closed-form prox (K = grad only)
        pm = op.pixel_mask()
        m = None if pm is None else pm.to(x)[None, None]
        if m is not None and constrained:
            y_obs = y.clamp(0, 1) if box else y
        # constrained, general A: G = indicator of {A x = y} (exact projection
        # through A_dagger), the box moves to the dual side as K = [grad; I]
        affine = constrained and m is None
        if affine:
            L_A = 1.0 if box else 0.0
        else:
            L_A = 0.0 if m is not None else operator_norm_sq(op, shape)
        if sigma is None:
            sigma = 3.0 * max(radius, 1e-3)
        sigma = float(sigma)
        sigma_p = sigma * float(dual_ratio)   # dual step of the data / box block
        tau = 0.99 / (sigma * GRAD_NORM_SQ + sigma_p * L_A)
        gamma = 1.0 if (op.is_identity and not constrained) else 0.0
        q = torch.zeros((B, 2) + tuple(shape), dtype=x.dtype, device=x.device)
        if affine:
            p = torch.zeros_like(x) if box else None
            x = x - op.A_dagger(op.A(x) - y)
        else:
            p = torch.zeros_like(y) if m is None else None
        rho = 1.0 if gamma > 0 else float(relax)
        # the objective of the start (penalised problem only: a constrained start
        # need not be feasible, so its objective is no yardstick)
        start = None if constrained else tv_objective(op, x, y, lam, mode, False).cpu().numpy()
        tracker = Tracker(B, tol, max_iter, x.device)
        x_prev, k_prev = x, 0
        k = 0
        while not tracker.done():
            k += 1
            act = tracker.active
            # primal step: x~ = prox_{tau G}(x - tau K^T (q, p))
            u = grad_adjoint(q)
            if p is not None:
                u += p if affine else op.A_adjoint(p)
            v = torch.add(x, u, alpha=-tau)
            if affine:
                x_t = v - op.A_dagger(op.A(v) - y)
            elif m is None:
                x_t = v.clamp(0, 1) if box else v
            elif constrained:
                x_t = torch.where(m > 0, y_obs, v.clamp(0, 1) if box else v)
            else:
                x_t = (v + (tau * m) * y) / (1.0 + tau * m)
                if box:
                    x_t = x_t.clamp(0, 1)
            if gamma > 0:   # Chambolle-Pock Algorithm 2 (strongly convex G)
                theta = 1.0 / (1.0 + 2.0 * gamma * tau) ** 0.5
                tau, sigma_new = tau * theta, sigma / theta
            else:
                theta, sigma_new = 1.0, sigma
            x_bar = torch.lerp(x, x_t, 1.0 + theta)
            # dual step: (q~, p~) = prox_{sigma F*}((q, p) + sigma K x_bar)
            q_t = _project_ball(_dual_ascent(q, x_bar, sigma_new), radius, mode, inplace=True)
            sp_new = sigma_p * sigma_new / sigma
            if affine and p is not None:
                w = p + sp_new * x_bar
                p_t = w - sp_new * (w / sp_new).clamp(0, 1)
            elif p is not None:
                w = p + sp_new * (op.A(x_bar) - y)
                p_t = w / (1.0 + sp_new) if not constrained else w
            sigma, sigma_p = sigma_new, sp_new
            # over-relaxation (Condat 2013; rho = 1 is plain Chambolle-Pock)
            if rho != 1.0:
                x_t = torch.lerp(x, x_t, rho)
                q_t = torch.lerp(q, q_t, rho)
                if p is not None:
                    p_t = torch.lerp(p, p_t, rho)
            if bool(act.all()):
                x, q = x_t, q_t
                if p is not None:
                    p = p_t
            else:
                x, q = freeze(act, x_t, x), freeze(act, q_t, q)
                if p is not None:
                    p = freeze(act, p_t, p)
            if k % check_every == 0 or k >= max_iter:
                tracker.update(k, x, x_prev, steps=k - k_prev)
                x_prev, k_prev = x, k
                tracker.check_objective(tv_objective(op, x, y, lam, mode, constrained))
        if affine and box:
            x = x.clamp(0, 1)
        obj = tv_objective(op, x, y, lam, mode, constrained)
        gap = _duality_gap(op, x, y, q, p, lam, mode, constrained, m)
        extra = {"gap": gap}
        if start is not None:
            extra["start_objective"] = start
        if constrained:
            r = op.A(x) - y
            extra["constraint_residual"] = (r.flatten(1).norm(dim=1) /
                                            y.flatten(1).norm(dim=1).clamp_min(1e-12)).cpu().numpy()
        return SolverResult(x, obj.cpu().numpy(), tracker.iterations, tracker.converged,
                            tracker.diverged, extra)


def _duality_gap(op, x, y, q, p, lam, mode, constrained, m):
    """Per-image relative duality gap ``(P(x) - D(q, p)) / |P(x)|`` of the
    penalised problem (NaN for the constrained one, whose primal iterate is only
    approximately feasible)."""
    if constrained:
        return np.full(x.shape[0], np.nan)
    q = _project_ball(q, lam, mode)  # dual feasible
    P = tv_objective(op, x, y, lam, mode, False)
    u = -grad_adjoint(q)
    if m is not None:
        # G(x) = 1/2||m(x-y)||^2 + box (m binary): G*(u) = sum_pixels u x* - m/2 (x* - y)^2
        # with x* = clip(y + u) where m = 1, and x* = [u > 0] where m = 0
        xs = torch.where(m > 0, (y + u).clamp(0, 1), (u > 0).to(u))
        Gs = (u * xs - 0.5 * m * (xs - y) ** 2).flatten(1).sum(1)
        D = -Gs
    else:
        u = u - op.A_adjoint(p)
        Fs = (0.5 * p * p + p * y).flatten(1).sum(1)
        D = -Fs - u.clamp_min(0).flatten(1).sum(1)
    return ((P - D) / P.abs().clamp_min(1e-12)).cpu().numpy()
