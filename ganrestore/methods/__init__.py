"""Restoration methods and their registry.

A method is a function

    restore(y, op, prior, cfg, seeds, upstream=None, task=None) -> Restoration

batched over images: ``y`` holds B observations, ``op`` the task's operator,
``prior`` the GAN prior (or None), ``cfg`` the method's config dict, ``seeds``
one integer per image (from ``(global seed, task, image id)``), ``upstream``
the :class:`Restoration` of the method it builds on (``csgm_bp`` on ``csgm``,
``iagan`` on ``csgm``, ...), ``task`` the :class:`ganrestore.tasks.Task`.

Register with :func:`register`; look up with :func:`get_method`; run with
:func:`run_method` (never call ``MethodInfo.fn`` on a shard directly).

**Where methods come from.**  The built-in modules, imported explicitly by
:func:`load_builtins` on the first lookup (not at ``import ganrestore.methods``,
which stays cheap), then plugins (:mod:`ganrestore.plugins`): installed
``ganrestore.methods`` entry points and the modules a config names under
``plugins``.  A name is registered once: registering a taken name with another
function raises :class:`ganrestore.plugins.DuplicateNameError` (re-registering
the same definition, as ``importlib.reload`` or a test runner's re-import does,
replaces it).

**Batch independence by construction.**  :func:`run_method` hands a method
fixed-shape micro-batches of ``microbatch`` images (default 1), each a fresh,
contiguous copy of that image's observation, seed and upstream rows.  With
``microbatch=1`` every image goes through exactly the same sequence of kernel
calls on tensors of the same shapes, whatever its batch-mates, the batch size
or the shard size: BLAS / oneDNN / cuBLAS choose their blocking and reduction
order from the shapes, the ISA and the thread count, never from the other
rows, so the result is bitwise that of the image alone on any CPU (for a given
machine and thread count; with ``torch.use_deterministic_algorithms`` on CUDA).
A batched implementation cannot promise this: a matmul's kernel, and so the
rounding of every row, may change with the number of rows (seen on an AMD
EPYC: IAGAN's result moved by up to 0.056 with the shard size, Adam turning
last-bit differences of tiny gradients into full steps).  Per-image runs cost
nothing measurable on a CPU (``benchmarks/bench_gan.py``).  ``microbatch > 1``
(for a GPU) pads the last micro-batch to the same shape by repeating its last
image, so shapes stay fixed; the rows of one call are still computed
independently by every method here, but whether a kernel rounds a row the same
at every position of the batch is the kernel's property, not guaranteed by
construction, so results may then differ in the last bits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from .base import Restoration


@dataclass(frozen=True)
class MethodInfo:
    name: str
    fn: Callable
    needs_prior: bool = False          # needs a GAN prior checkpoint
    upstream: str | None = None        # method whose output this one starts from
    applies: Callable | None = None    # task -> bool (None: every task)
    gpu: bool = False                  # benefits from a GPU (rule resources)
    description: str = ""
    check: Callable | None = None      # (cfg, task, config) -> None; raises ValueError on a bad setting
    # JSON Schema of the method's method_params block; plugin methods only (the
    # built-in ones are described in config/schema.yaml): ganrestore.plugins.method_schema
    schema: dict | None = field(default=None, compare=False)

    def applies_to(self, task) -> bool:
        return True if self.applies is None else bool(self.applies(task))


REGISTRY: dict[str, MethodInfo] = {}


def register(name: str, **kw):
    """Decorator: register ``fn`` as the method ``name`` (keywords: the fields of
    :class:`MethodInfo`; ``schema``: the JSON Schema of a plugin method's
    ``method_params`` block, see :func:`ganrestore.plugins.method_schema`).

    A name that is taken by another function is refused
    (:class:`ganrestore.plugins.DuplicateNameError`); code outside this package
    first loads the built-in methods, so that a plugin cannot take their names
    whatever the import order."""
    from ..plugins import check_free, check_schema  # noqa: PLC0415

    def deco(fn):
        if not str(getattr(fn, "__module__", "")).startswith(__name__ + "."):
            load_builtins()
        old = REGISTRY.get(name)
        check_free("method", name, old.fn if old else None, fn)
        if kw.get("schema") is not None:
            check_schema(kw["schema"], f"method {name!r}")
        REGISTRY[name] = MethodInfo(name=name, fn=fn, description=(fn.__doc__ or "").strip().split("\n")[0], **kw)
        return fn
    return deco


def load_builtins() -> None:
    """Import the built-in method modules (each registers its methods)."""
    from . import classical, dip, gan, trivial  # noqa: F401, PLC0415
    from . import cgan  # noqa: F401, PLC0415


def _load_all():
    """Every method: the built-in ones, then the plugins (ganrestore.plugins)."""
    from ..plugins import ensure_loaded  # noqa: PLC0415

    load_builtins()
    ensure_loaded()


def available() -> list[str]:
    _load_all()
    return sorted(REGISTRY)


def get_method(name: str) -> MethodInfo:
    _load_all()
    if name not in REGISTRY:
        raise KeyError(f"unknown method {name!r}; available: {sorted(REGISTRY)}")
    return REGISTRY[name]


def _rows(r: Restoration, idx: list[int]) -> Restoration:
    """Rows ``idx`` of a restoration, as fresh contiguous copies."""
    sel = np.asarray(idx, dtype=np.int64)
    return Restoration(r.x_hat[torch.from_numpy(sel).to(r.x_hat.device)].clone(),
                       {k: np.array(np.asarray(v)[sel]) for k, v in r.diagnostics.items()},
                       {k: np.array(np.asarray(v)[sel]) for k, v in r.extras.items()})


def flag_failures(res: Restoration) -> Restoration:
    """Flag, per image, a result that is not a result, so that no table shows it
    as a normal row (diagnostic ``failure``: '' when fine, else the reason; the
    image is marked ``diverged`` and its ``x_hat`` becomes NaN):

    * the method flagged it diverged, or ``x_hat`` is not finite;
    * an iterative method (``iterations > 0``) ended with a non-finite objective
      (e.g. TV with lam = 1e38: an infinite objective, the input returned);
    * a method that reports ``start_objective`` (the objective of its starting
      point: GAN searches, penalised convex solvers) did not end below it, when
      there was something to gain (start > 1e-12) and the solver did not report
      convergence (a convex solver may start at the minimiser, e.g. TV with
      lam = 0): e.g. CSGM at lr 1e6, whose every step made the objective worse,
      so that the kept iterate is the random start.
    """
    d = res.diagnostics
    B = res.x_hat.shape[0]
    reason = np.array([""] * B, dtype=object)
    obj = np.asarray(d["objective"], np.float64)
    iters = np.asarray(d["iterations"])
    reason[np.asarray(d["diverged"], bool)] = "diverged (non-finite iterate or result)"
    bad_obj = (iters > 0) & ~np.isfinite(obj) & (reason == "")
    reason[bad_obj] = "objective not finite"
    if "start_objective" in d:
        start = np.asarray(d["start_objective"], np.float64)
        converged = np.asarray(d.get("converged", np.zeros(B, bool)), bool)
        stuck = (iters > 0) & np.isfinite(start) & (start > 1e-12) & ~(obj < start) & ~converged & (reason == "")
        for i in np.flatnonzero(stuck):
            reason[i] = f"no progress (final objective {obj[i]:.4g} not below the start {start[i]:.4g})"
    d["failure"] = reason.astype(str)
    failed = reason != ""
    if failed.any():
        d["diverged"] = np.asarray(d["diverged"], bool) | failed
        res.x_hat = res.x_hat.clone()
        res.x_hat[torch.from_numpy(failed).to(res.x_hat.device)] = float("nan")
    return res


def run_method(method, y, op, prior, cfg: dict, seeds, upstream: Restoration | None = None, task=None,
               microbatch: int = 1) -> Restoration:
    """Restore the ``B`` images of ``y`` with ``method`` (a name or :class:`MethodInfo`),
    ``microbatch`` images per call, so that each image's result depends on that
    image alone (see the module docstring).  Returns one :class:`Restoration`
    of ``B`` rows, in order, with failures flagged (:func:`flag_failures`)."""
    info = get_method(method) if isinstance(method, str) else method
    microbatch = int(microbatch)
    if microbatch < 1:
        raise ValueError(f"microbatch must be >= 1, got {microbatch}")
    B = int(y.shape[0])
    seeds = list(seeds)
    if len(seeds) != B:
        raise ValueError(f"{info.name}: {len(seeds)} seeds for {B} images")
    if upstream is not None and upstream.x_hat.shape[0] != B:
        raise ValueError(f"{info.name}: upstream has {upstream.x_hat.shape[0]} images, y has {B}")
    parts = []
    for a in range(0, B, microbatch):
        idx = list(range(a, min(a + microbatch, B)))
        n = len(idx)
        idx = idx + [idx[-1]] * (microbatch - n)          # fixed shape: pad with the last image
        yb = y[idx].clone()
        up = _rows(upstream, idx) if upstream is not None else None
        res = info.fn(yb, op, prior, dict(cfg), [seeds[i] for i in idx], upstream=up, task=task)
        parts.append(flag_failures(_rows(res, list(range(n))) if n < microbatch else res))
    return Restoration.concat(parts)


__all__ = ["Restoration", "MethodInfo", "register", "get_method", "available", "run_method", "flag_failures",
           "REGISTRY", "load_builtins"]
