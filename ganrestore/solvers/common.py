"""Pieces shared by the classical solvers: quadratic data-term solves, operator
norms, convergence bookkeeping.

The data term of every classical baseline is ``f(x) = 1/2 ||A x - y||^2``.  The
splitting solvers need the resolvent

    (A^T A + rho I)^{-1} b,

which is closed form for the operators that provide
``Operator.normal_solve`` (identity, masks, luma, separable bicubic, Fourier
masks, circular blurs: see :mod:`ganrestore.operators`) and conjugate
gradients (:func:`ganrestore.operators.conjugate_gradient`) for every other.
No function here branches on an operator's type.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .. import operators as ops


def _shape(x: torch.Tensor):
    return (-1,) + (1,) * (x.dim() - 1)


def per_image_norm(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).norm(dim=1)


def data_fit(op, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image ``1/2 ||A x - y||^2``."""
    r = op.A(x) - y
    return 0.5 * (r * r).flatten(1).sum(1)


def operator_norm_sq(op, shape, n_iter: int = 50, dtype=torch.float32) -> float:
    """``||A||_2^2`` by power iteration on ``A^T A`` (deterministic start), with a
    1 % safety margin."""
    closed = _closed_form_norm_sq(op)
    if closed is not None:
        return closed
    g = torch.Generator().manual_seed(0)
    v = torch.randn((1,) + tuple(shape), generator=g, dtype=dtype)
    v = v / v.norm()
    lam = 0.0
    for _ in range(n_iter):
        w = op.A_adjoint(op.A(v))
        lam = float(w.norm())
        if lam == 0:
            return 0.0
        v = w / lam
    return 1.01 * lam


def _closed_form_norm_sq(op):
    norm_sq = getattr(op, "norm_sq", None)
    return norm_sq() if norm_sq is not None else None


def initial_estimate(op, y: torch.Tensor, right_inverse=None) -> torch.Tensor:
    """A starting point for the iterative solvers: the observation shown as an
    image plus, in the null space of ``A``, a constant image of the per-channel
    mean the data imply,

        x0 = B y + (I - B A) c,   c_ch = sum(A^T y)_ch / sum(A^T A 1)_ch,

    with ``B`` a right inverse of ``A`` (default ``op.A_input``: the
    pseudo-inverse, or the grey replicate for the luma operator; the TV solver
    passes ``op.A_dagger``), so ``A x0 = y`` before clipping.  This fills a hole
    with the mean of the observed pixels and leaves a pseudo-inverse upsampling
    as it is; clipped to ``[0, 1]``.
    """
    B = op.A_input if right_inverse is None else right_inverse
    xd = B(y)
    ones = torch.ones_like(xd[:1])
    den = op.A_adjoint(op.A(ones)).sum(dim=(2, 3), keepdim=True)
    num = op.A_adjoint(y).sum(dim=(2, 3), keepdim=True)
    c = (num / den.clamp_min(1e-12)).clamp(0, 1).expand_as(xd)
    return (xd + c - B(op.A(c))).clamp(0, 1)


class NormalSolver:
    """``x = (A^T A + rho I)^{-1} b``: the operator's closed form
    (``Operator.normal_solve``) where it has one, warm-started conjugate
    gradients otherwise.  ``kind``: ``'closed'`` or ``'cg'``."""

    def __init__(self, op, cg_iter: int = 50, cg_tol: float = 1e-6):
        self.op = op
        self.cg_iter = cg_iter
        self.cg_tol = cg_tol
        self.kind = "closed" if getattr(op, "has_closed_normal_solve", False) else "cg"
        self._last = None

    def __call__(self, b: torch.Tensor, rho: float) -> torch.Tensor:
        op = self.op
        if self.kind == "closed":
            return op.normal_solve(b, rho)
        x0 = self._last if (self._last is not None and self._last.shape == b.shape) else b / (1.0 + rho)
        x = ops.conjugate_gradient(lambda v: op.A_adjoint(op.A(v)) + rho * v, b, x0=x0,
                                   max_iter=self.cg_iter, tol=self.cg_tol)
        self._last = x
        return x


class GrayLift(ops.Operator):
    """``A'(g) = A(g 1)``: the task operator restricted to grey images ``x = (g, g, g)``.

    Used by the colour-blind priors (TV, low-rank) on colourisation when
    ``colorize: gray`` is configured: the solution is constrained to the grey
    images, the only ones a prior without a colour model can justify.
    """

    name = "graylift"

    def __init__(self, op):
        super().__init__(op.image_size, 1)
        self.inner = op

    def A(self, g):
        return self.inner.A(g.expand(-1, 3, -1, -1))

    def A_adjoint(self, r):
        return self.inner.A_adjoint(r).sum(1, keepdim=True)

    def A_dagger(self, y):
        return ops.Operator.A_dagger(self, y)


@dataclass
class SolverResult:
    """What a solver returns for a batch: the estimate and per-image diagnostics."""

    x: torch.Tensor
    objective: np.ndarray
    iterations: np.ndarray
    converged: np.ndarray
    diverged: np.ndarray
    extra: dict

    def diagnostics(self) -> dict:
        d = {"objective": self.objective, "iterations": self.iterations,
             "converged": self.converged, "diverged": self.diverged}
        d.update(self.extra)
        return d


class Tracker:
    """Per-image stopping on the relative change ``||x_k - x_{k-1}|| / ||x_{k-1}||``
    (averaged over the ``steps`` iterations since the last check when the solver
    checks only every few iterations).

    Converged images are frozen (their updates masked out) so the reported
    iteration count is where each image met the tolerance.  Non-finite iterates
    and an objective that grows past ``blowup`` times its initial value mark an
    image diverged (it is frozen too; the caller writes NaN for it).
    """

    def __init__(self, B: int, tol: float, max_iter: int, device, blowup: float = 1e6):
        self.tol = float(tol)
        self.max_iter = int(max_iter)
        self.active = torch.ones(B, dtype=torch.bool, device=device)
        self.iterations = np.zeros(B, dtype=np.int64)
        self.converged = np.zeros(B, dtype=bool)
        self.diverged = np.zeros(B, dtype=bool)
        self.blowup = blowup
        self.obj0 = None

    def done(self) -> bool:
        return not bool(self.active.any())

    def update(self, k: int, x_new: torch.Tensor, x_old: torch.Tensor, steps: int = 1) -> torch.Tensor:
        """Record iteration ``k`` (1-based); returns the per-image relative change
        per iteration."""
        rel = per_image_norm(x_new - x_old) / per_image_norm(x_old).clamp_min(1e-12) / max(steps, 1)
        # a non-finite entry in x_new makes its difference norm (so rel) non-finite
        # (x_old is finite: a non-finite image is frozen when first seen)
        return self.update_rel(k, rel)

    def update_rel(self, k: int, rel: torch.Tensor) -> torch.Tensor:
        """Like :meth:`update` with the per-image relative change ``rel`` computed
        by the caller (a non-finite value marks the image diverged)."""
        act = self.active.cpu().numpy()
        self.iterations[act] = k
        rel_np = rel.cpu().numpy()
        bad = ~np.isfinite(rel_np) & act
        if bad.any():
            self.diverged |= bad
        conv = (rel_np <= self.tol) & act & ~bad
        self.converged |= conv
        stop = torch.from_numpy(conv | bad).to(self.active.device)
        self.active &= ~stop
        if k >= self.max_iter:
            self.active[:] = False
        return rel

    def check_objective(self, obj: torch.Tensor):
        o = obj.detach().cpu().numpy()
        if self.obj0 is None:
            self.obj0 = np.abs(o) + 1e-12
            return
        bad = (~np.isfinite(o) | (o > self.blowup * self.obj0)) & self.active.cpu().numpy()
        if bad.any():
            self.diverged |= bad
            self.active &= ~torch.from_numpy(bad).to(self.active.device)


def freeze(active: torch.Tensor, new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """``new`` for active images, ``old`` for frozen ones."""
    return torch.where(active.view(_shape(new)), new, old)
