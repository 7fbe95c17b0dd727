"""ganrestore-lowpass: an example ganrestore plugin (a method from another package).

It registers one restoration method, ``lowpass``, a Wiener-style (Tikhonov)
baseline that needs nothing but the operator interface of
:mod:`ganrestore.operators` (``A``, ``A_adjoint``, ``A_input``,
``normal_solve``), so it applies to every task:

    x_hat = argmin_x ||A x - y||^2 + lam ||x - m||^2,   m = G_sigma * A_input(y),

that is ``x_hat = (A^T A + lam I)^{-1} (A^T y + lam m)``: the measurements where
they say something, the low-passed observation ``m`` (a Gaussian of ``sigma``
pixels) where they do not, with ``lam`` trading the two.  With a white signal
prior of variance ``s^2`` around ``m`` and white measurement noise of variance
``n^2`` this is the Wiener / MAP estimate for ``lam = n^2 / s^2``.  The normal
equations are solved in closed form where the operator has one, by conjugate
gradients otherwise, and the result is clipped to ``[0, 1]``.

Installed (``pip install examples/plugin``), its entry point in the group
``ganrestore.methods`` makes ``lowpass`` available to every config; without
installing, name the module in a config: ``plugins: [ganrestore_lowpass]``
with ``examples/plugin/src`` on ``PYTHONPATH``.  Then::

    methods: [input, lowpass]
    method_params:
      lowpass: {sigma: 1.5, lam: 0.05}

>>> import torch
>>> from ganrestore.methods import run_method
>>> from ganrestore.tasks import make_task
>>> task = make_task("sr4", 64)
>>> y = task.op.A(torch.rand(2, 3, 64, 64))
>>> run_method("lowpass", y, task.op, None, {}, [0, 1], task=task).x_hat.shape
torch.Size([2, 3, 64, 64])
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from ganrestore.methods import register
from ganrestore.methods.base import Restoration
from ganrestore.operators import conjugate_gradient

__version__ = "0.1.0"

#: JSON Schema of ``method_params.lowpass`` (joins the workflow's config schema:
#: unknown keys are errors, the defaults are filled in)
SCHEMA = {
    "type": "object",
    "properties": {
        "sigma": {"type": "number", "minimum": 0, "default": 1.0,
                  "description": "Std of the Gaussian low-pass of A_input(y), in pixels (0 = none)."},
        "lam": {"type": "number", "exclusiveMinimum": 0, "default": 0.05,
                "description": "Weight of ||x - m||^2 against the data term (noise / signal variance)."},
        "cg_iter": {"type": "integer", "minimum": 1, "default": 200,
                    "description": "Conjugate-gradient iterations where the operator has no closed-form solve."},
    },
}
DEFAULTS = {k: v["default"] for k, v in SCHEMA["properties"].items()}


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(B, C, H, W)`` images, reflected borders."""
    if sigma <= 0:
        return x
    r = max(1, min(math.ceil(3 * sigma), x.shape[-1] - 1, x.shape[-2] - 1))
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    C = x.shape[1]
    x = F.pad(x, (r, r, r, r), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(C, 1, 1, -1), groups=C)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(C, 1, -1, 1), groups=C)


def _sq(t: torch.Tensor) -> torch.Tensor:
    return (t * t).flatten(1).sum(1)


@register("lowpass", schema=SCHEMA)
def restore_lowpass(y, op, prior, cfg, seeds, upstream=None, task=None):
    """Wiener-style baseline: (A^T A + lam I)^-1 (A^T y + lam G_sigma A_input y), clipped to [0, 1]."""
    unknown = sorted(set(cfg) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"lowpass: unknown keys {unknown}; known: {sorted(DEFAULTS)}")
    p = {**DEFAULTS, **cfg}
    lam = float(p["lam"])
    t0 = time.perf_counter()
    m = gaussian_blur(op.A_input(y), float(p["sigma"]))
    b = op.A_adjoint(y) + lam * m
    x = op.normal_solve(b, lam)
    if x is None:
        x = conjugate_gradient(lambda v: op.A_adjoint(op.A(v)) + lam * v, b, x0=m, max_iter=int(p["cg_iter"]))
    objective = _sq(op.A(x) - y) + lam * _sq(x - m)
    B = y.shape[0]
    return Restoration(x.clamp(0, 1), {
        "objective": objective.detach().cpu().double().numpy(),
        "iterations": np.zeros(B, np.int64),
        "seconds": np.full(B, (time.perf_counter() - t0) / max(B, 1)),
    })
