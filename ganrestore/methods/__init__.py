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

**Batch independence by construction: index-aligned blocks.**
:func:`run_method` hands a method fixed-shape blocks of ``B`` images (``B`` =
the config's ``microbatch``, or the method's own :attr:`MethodInfo.block` under
``microbatch: auto``, the default) **aligned to the image's index in its split**:
image ``k`` always sits at position ``k mod B`` of block ``floor(k / B)``; slots of
a block that the shard does not hold are padded with a copy of one of its images.
Each block is a fresh, contiguous copy of its images' observations, seeds and
upstream rows.  Every built-in method computes the rows of a block
independently (a sum of per-row objectives, eval-mode networks, element-wise
optimisers, per-row stopping), so another row's *values* never enter row
``k``'s arithmetic; only row ``k``'s *position* and the block's *shape* can
select a kernel's code path (BLAS / oneDNN / cuBLAS choose blocking and
reduction order from shapes, the ISA and the thread count, never from the
data).  Both are fixed by ``k`` and ``B``, so an image's result depends only on
its own data, its index mod ``B``, ``B``, the machine and the thread count:
never on its batch-mates, the shard size or how the run is split into jobs.
``microbatch: 1`` is the per-image special case (position always 0).  The
workflow requires ``shard_size`` to be a multiple of every block it uses, so no
shard starts mid-block (a shard that does is still correct here, only padded).
``tests/test_batch_invariance.py`` checks every registered method bitwise
with other batch-mates, several shard sizes and offsets, at 1 and 2 threads,
plus a negative control (a method that mixes rows is caught).
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
    # images per call under ``microbatch: auto``: > 1 where the method's batched path
    # computes rows independently and is faster on a CPU (benchmarks/bench_gan.py)
    block: int = 1
    # the method whose per-image seeds (initialisation) this one shares: an ablation
    # of a method starts where that method starts, so a paired difference isolates
    # the ablated term (None: its own name)
    seeds_of: str | None = None

    @property
    def seed_name(self) -> str:
        return self.seeds_of or self.name

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


#: largest relative residual ``||A x - y|| / ||y||`` of a constrained solve's returned image
CONSTRAINT_TOL = 1e-3


def flag_failures(res: Restoration) -> Restoration:
    """Flag, per image, a result that is not a result, so that no table shows it
    as a normal row (diagnostic ``failure``: '' when fine, else the reason; the
    image is marked ``diverged`` and its ``x_hat`` becomes NaN):

    * the method itself gave a reason (a non-empty ``failure`` diagnostic, e.g.
      ``lowrank`` on an operator that reads no pixel of whole rows);
    * the method flagged it diverged, or ``x_hat`` is not finite;
    * a constrained solve (diagnostic ``constraint_residual``: the relative
      residual ``||A x - y|| / ||y||`` of the image returned, after any
      clipping) ended above its tolerance (``constraint_tol`` if the method
      reports one, else :data:`CONSTRAINT_TOL`): the constraint is what such a
      method promises, and a clipped or unfinished solve that breaks it must
      not pass as a result;
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
    given = d.get("failure")
    reason = (np.array([str(v) for v in np.asarray(given).reshape(-1)], dtype=object)
              if given is not None and np.asarray(given).shape[:1] == (B,) else np.array([""] * B, dtype=object))
    obj = np.asarray(d["objective"], np.float64)
    iters = np.asarray(d["iterations"])
    reason[np.asarray(d["diverged"], bool) & (reason == "")] = "diverged (non-finite iterate or result)"
    if "constraint_residual" in d:
        res_c = np.asarray(d["constraint_residual"], np.float64)
        tol = np.broadcast_to(np.asarray(d.get("constraint_tol", CONSTRAINT_TOL), np.float64), res_c.shape)
        for i in np.flatnonzero(~(res_c <= tol) & (reason == "")):
            reason[i] = (f"constraint not met: ||A x - y|| / ||y|| = {res_c[i]:.2e} > {tol[i]:.0e} "
                         "for the image returned")
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


AUTO = "auto"


def block_size(info: MethodInfo, microbatch=AUTO) -> int:
    """The block size ``run_method`` uses for ``info``: the method's own
    :attr:`MethodInfo.block` under ``"auto"`` (or None), else ``microbatch``."""
    if microbatch is None or microbatch == AUTO:
        return max(1, int(info.block))
    if isinstance(microbatch, bool) or not isinstance(microbatch, (int, np.integer)) or int(microbatch) < 1:
        raise ValueError(f"microbatch must be 'auto' or an integer >= 1, got {microbatch!r}")
    return int(microbatch)


def blocks(offset: int, n: int, B: int) -> list[list[int | None]]:
    """Index-aligned blocks of ``n`` consecutive images whose first has index
    ``offset`` in its split: one list of ``B`` slots per block touched, slot ``p``
    of block ``q`` holding the shard-local index of the image with split index
    ``q * B + p``, or None where the shard has no such image."""
    if offset < 0 or n < 0 or B < 1:
        raise ValueError(f"bad block layout offset={offset}, n={n}, B={B}")
    out = []
    for q in range(offset // B, (offset + n - 1) // B + 1 if n else offset // B):
        out.append([q * B + p - offset if 0 <= q * B + p - offset < n else None for p in range(B)])
    return out


def run_method(method, y, op, prior, cfg: dict, seeds, upstream: Restoration | None = None, task=None,
               microbatch=AUTO, offset: int = 0) -> Restoration:
    """Restore the ``n`` images of ``y`` with ``method`` (a name or :class:`MethodInfo`)
    in index-aligned blocks (see the module docstring): ``offset`` is the index of
    ``y[0]`` in its split, ``microbatch`` the block size (``"auto"``: the method's
    own).  Returns one :class:`Restoration` of ``n`` rows, in order, with failures
    flagged (:func:`flag_failures`)."""
    info = get_method(method) if isinstance(method, str) else method
    B = block_size(info, microbatch)
    n = int(y.shape[0])
    seeds = list(seeds)
    if len(seeds) != n:
        raise ValueError(f"{info.name}: {len(seeds)} seeds for {n} images")
    if upstream is not None and upstream.x_hat.shape[0] != n:
        raise ValueError(f"{info.name}: upstream has {upstream.x_hat.shape[0]} images, y has {n}")
    parts = []
    for slots in blocks(int(offset), n, B):
        real = [p for p, i in enumerate(slots) if i is not None]
        fill = slots[real[0]]
        idx = [fill if i is None else i for i in slots]      # fixed shape: pad with an image of the block
        yb = y[idx].clone()
        up = _rows(upstream, idx) if upstream is not None else None
        res = info.fn(yb, op, prior, dict(cfg), [seeds[i] for i in idx], upstream=up, task=task)
        parts.append(flag_failures(_rows(res, real) if len(real) < B else res))
    return Restoration.concat(parts)


__all__ = ["Restoration", "MethodInfo", "register", "get_method", "available", "run_method", "flag_failures",
           "CONSTRAINT_TOL",
           "REGISTRY", "load_builtins", "block_size", "blocks", "AUTO"]
