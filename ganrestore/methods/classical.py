"""Classical baselines of Yeh et al. (ICASSP 2018): TV, low-rank (TNNR) and sparse coding.

All three work on every task through the operator interface (``A``,
``A_adjoint``, ``A_dagger``) and are batched over images; the solvers live in
:mod:`ganrestore.solvers` and their docstrings state the maths.

=========  ==========================================================  ===============================
method     problem                                                     solver
=========  ==========================================================  ===============================
``tv``     ``min_{x in [0,1]} 1/2||Ax-y||^2 + lam TV(x)`` (isotropic,   Chambolle-Pock primal-dual
           vectorial colour TV by default; ``constrained: true``:      (:mod:`ganrestore.solvers.tv`)
           ``min TV(x)`` s.t. ``Ax = y``, Afonso et al. C-SALSA's
           exact-data variant)
``lowrank`` ``min 1/2||Ax-y||^2 + lam sum_c ||X_c||_r`` (TNNR of Hu et  ADMM, Hu et al.'s two-step
           al. 2013 per colour channel; ``rank: 0`` = nuclear norm;    scheme
           ``constrained: true``: ``Ax = y`` exactly, ``x`` in         (:mod:`ganrestore.solvers.lowrank`)
           ``[0, 1]`` unless ``box: false``)
``sparse`` patches sparse in a K-SVD dictionary learned on clean       OMP + patch averaging alternated
           validation patches (Elad & Aharon 2006; Yang et al. 2010)   with a data step
                                                                       (:mod:`ganrestore.solvers.sparse`)
=========  ==========================================================  ===============================

**Colourisation** (Yeh et al. left these cells blank).  TV and the nuclear
norm carry no colour model: their minimiser over colour images is not a
colourisation (the data fix only the luma, and either prior is smallest on
images tinted towards the Rec.601 weights -- the vectorial-TV minimiser is
``w y / |w|^2`` up to a constant chroma, the per-channel nuclear norm puts the
whole signal in the green channel).  With ``colorize: gray`` (the value the
validation grid picked; ``generic`` solves the colour problem as it stands) the
solution is restricted to grey images ``x = (g, g, g)`` -- the same objective on
that subspace, solved with the operator ``g -> A(g 1)``.  For noise-free
grey input this returns essentially the grey image, i.e. the ``input`` row.
The sparse baseline colourises for real: grey patches are coded with the luma
projections of colour atoms learned on face patches and re-synthesised in
colour.

**Constrained solves** (``constrained: true``) promise ``A x = y``: the
residual ``||A x - y|| / ||y||`` of the image returned (after clipping to
[0, 1]) is reported as ``constraint_residual`` and above 1e-3 the image is
flagged failed (:func:`ganrestore.methods.flag_failures`), as a diverged one
is.  TV's solver keeps the box; low rank's does by default (``box``), since
Hu et al.'s unboxed minimiser, clipped, missed the constraint by 2-9 % on
``sr4`` / ``sr4_official`` and was reported as a normal number.  ``lowrank`` on
an operator that reads no pixel of whole rows or columns (``sr<k>_official``)
is failed before solving, with the reason (:mod:`ganrestore.solvers.lowrank`).

Config keys (flat; per task already merged by the workflow):

* ``tv``: ``lam``, ``mode`` (vectorial | channel), ``constrained``,
  ``max_iter``, ``tol``, ``colorize`` (gray | generic).
* ``lowrank``: ``lam``, ``rank``, ``outer_iter``, ``max_iter``, ``tol``,
  ``constrained``, ``box``, ``colorize``.
* ``sparse``: ``sparsity``, ``stride``, ``n_iter``, ``beta``, ``C``,
  ``noise_sigma`` (default: the task's ``sigma``, or the quantiser's
  ``step / sqrt(12)``), and the dictionary: ``dictionary_path`` when set
  (a dictionary artifact of :func:`ganrestore.solvers.sparse.save_dictionary`;
  the workflow then makes it the job's input instead of learning one), else
  ``extra_inputs["dictionary"]`` (the workflow's ``learn_dictionary`` output).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch

from ..solvers.common import GrayLift, SolverResult
from ..solvers.lowrank import solve_lowrank
from ..solvers.sparse import load_dictionary, solve_sparse
from ..solvers.tv import solve_tv
from . import register
from .base import Restoration

TV_DEFAULTS = {"lam": 0.05, "mode": "vectorial", "constrained": False, "max_iter": 600,
               "tol": 3e-5, "colorize": "gray"}
LOWRANK_DEFAULTS = {"lam": 0.5, "rank": 0, "outer_iter": 1, "max_iter": 300, "tol": 3e-4,
                    "constrained": False, "colorize": "gray", "box": True}
SPARSE_DEFAULTS = {"sparsity": 6, "stride": 2, "n_iter": 1, "beta": 1.0, "C": 1.15}


def _merged(defaults: dict, cfg: dict | None) -> dict:
    out = dict(defaults)
    for k, v in (cfg or {}).items():
        out[k] = v
    return out


def _family(task) -> str:
    return getattr(task, "family", "") if task is not None else ""


def _noisy(task) -> bool:
    return task is not None and bool(getattr(task, "noisy", False))


def _check_constrained(cfg, task, method):
    if cfg.get("constrained") and _noisy(task):
        raise ValueError(f"{method}: constrained (exact data consistency) makes no sense for the noisy "
                         f"task {task.name!r}; set constrained: false for it")


def check_tv_lowrank(name):
    def check(cfg, task, config=None):
        """Config-time check (before any job): what would fail or mean nothing at run time."""
        _check_constrained(cfg, task, name)
    return check


def check_sparse(cfg, task, config=None):
    """The dictionary's patch must fit in the image; stride must not skip pixels."""
    size = int((config or {}).get("image_size", 64))
    patch = int(((cfg.get("dictionary") or {}).get("patch")) or 6)
    if patch > size:
        raise ValueError(f"dictionary.patch {patch} is larger than the {size}px images")
    stride = int(cfg.get("stride", SPARSE_DEFAULTS["stride"]))
    if stride > patch:
        raise ValueError(f"stride {stride} is larger than the patch ({patch}): pixels would be left uncoded")


def _gray_mode(cfg, op, task) -> bool:
    mode = cfg.get("colorize", "gray")
    if mode not in ("gray", "generic"):
        raise ValueError(f"colorize must be 'gray' or 'generic', got {mode!r}")
    return _family(task) == "colorize" and mode == "gray" and op.channels == 3


def _finite_rows(y: torch.Tensor):
    """Observations with non-finite entries are not solved: they are replaced by
    zeros for the batch solve and flagged diverged (NaN in the result)."""
    bad = ~torch.isfinite(y.flatten(1)).all(1)
    if bool(bad.any()):
        y = torch.where(bad.view((-1,) + (1,) * (y.dim() - 1)), torch.zeros_like(y), y)
    return y, bad.cpu().numpy()


def _to_restoration(res: SolverResult, seconds: float, B: int, expand: bool = False,
                    bad_input=None, op=None, y=None) -> Restoration:
    """The method's result: ``x`` clipped to [0, 1].  A constrained solve's
    ``constraint_residual`` is recomputed for the clipped image (``op``, ``y``:
    the operator and observation the solver saw), the one the tables score:
    :func:`ganrestore.methods.flag_failures` fails it above tolerance."""
    xs = res.x.clamp(0, 1)     # NaN stays NaN (flagged by Restoration)
    diag = res.diagnostics()
    if "constraint_residual" in diag and op is not None and y is not None:
        with torch.no_grad():
            r = op.A(xs) - y
            diag["constraint_residual"] = (r.flatten(1).norm(dim=1) /
                                           y.flatten(1).norm(dim=1).clamp_min(1e-12)).cpu().numpy()
    x = xs.expand(-1, 3, -1, -1) if expand else xs
    if bad_input is not None:
        diag["diverged"] = np.asarray(diag["diverged"], bool) | bad_input
    diag["seconds"] = np.full(B, seconds / max(B, 1))
    diag = {k: np.asarray(v) for k, v in diag.items() if np.asarray(v).shape[:1] == (B,)}
    return Restoration(x.contiguous(), diag)


@register("tv", check=check_tv_lowrank("tv"), block=8)
def restore_tv(y, op, prior, cfg, seeds, upstream=None, task=None):
    """Total variation: min 1/2||Ax-y||^2 + lam TV(x) over [0,1] (Afonso et al. 2011), Chambolle-Pock."""
    c = _merged(TV_DEFAULTS, cfg)
    _check_constrained(c, task, "tv")
    t0 = time.perf_counter()
    lam = float(c["lam"])
    gray = _gray_mode(c, op, task)
    if gray:
        op_s = GrayLift(op)
        # TV of (g, g, g): vectorial sqrt(3) TV(g), per channel 3 TV(g)
        lam = lam * (math.sqrt(3.0) if c["mode"] == "vectorial" else 3.0)
    else:
        op_s = op
    y, bad = _finite_rows(y)
    res = solve_tv(op_s, y, lam, mode=c["mode"], constrained=bool(c["constrained"]),
                   max_iter=int(c["max_iter"]), tol=float(c["tol"]))
    return _to_restoration(res, time.perf_counter() - t0, y.shape[0], expand=gray, bad_input=bad, op=op_s, y=y)


# lowrank stays one image per call: its truncated SVD picks one subspace size for the
# whole batch (the largest any image needs, solvers/lowrank.py), so a batched row's
# code path would depend on its batch-mates' values
@register("lowrank", check=check_tv_lowrank("lowrank"))
def restore_lowrank(y, op, prior, cfg, seeds, upstream=None, task=None):
    """Low rank: TNNR per colour channel (Hu et al. 2013; rank 0 = nuclear norm), ADMM."""
    c = _merged(LOWRANK_DEFAULTS, cfg)
    _check_constrained(c, task, "lowrank")
    t0 = time.perf_counter()
    lam = float(c["lam"])
    gray = _gray_mode(c, op, task)
    if gray:
        op_s = GrayLift(op)
        lam = lam * 3.0   # sum over the three identical channels
    else:
        op_s = op
    y, bad = _finite_rows(y)
    why = _unread_lines_reason(op_s, y)
    if why:
        # every nuclear-norm minimiser may leave those rows black (solvers/lowrank.py):
        # not a restoration, and not worth the solve
        B = y.shape[0]
        x = torch.full((B, 3) + tuple(op_s.image_shape[1:]), float("nan"))
        diag = {"objective": np.full(B, np.nan), "iterations": np.zeros(B, np.int64),
                "converged": np.zeros(B, bool), "diverged": np.ones(B, bool),
                "failure": np.array([why] * B), "seconds": np.full(B, (time.perf_counter() - t0) / max(B, 1))}
        return Restoration(x, diag)
    res = solve_lowrank(op_s, y, lam, rank=int(c["rank"]), constrained=bool(c["constrained"]),
                        outer_iter=int(c["outer_iter"]), max_iter=int(c["max_iter"]),
                        tol=float(c["tol"]), box=bool(c["box"]))
    return _to_restoration(res, time.perf_counter() - t0, y.shape[0], expand=gray, bad_input=bad, op=op_s, y=y)


def _unread_lines_reason(op, y) -> str:
    """'' when ``op`` reads some pixel of every row and column, else why the
    low-rank prior cannot restore on it (:func:`ganrestore.solvers.lowrank.unread_lines`)."""
    from ..solvers.lowrank import unread_lines

    rows, cols = unread_lines(op, op.image_shape)
    if not rows.any() and not cols.any():
        return ""
    return (f"not a restoration: the operator reads no pixel of {int(rows.sum())} of {rows.size} rows and "
            f"{int(cols.sum())} of {cols.size} columns, and a (truncated) nuclear-norm minimiser leaves them at 0 "
            "(zeroing rows never raises a singular value), a striped image (ganrestore.solvers.lowrank)")


def sparse_noise_sigma(task, cfg) -> float:
    """The noise level the sparse coder assumes: ``cfg['noise_sigma']`` if set, else
    the task's Gaussian sigma, else the quantiser's ``1 / ((L - 1) sqrt(12))``."""
    if cfg.get("noise_sigma") is not None:
        return float(cfg["noise_sigma"])
    if task is None:
        return 0.0
    s = float(getattr(task, "sigma", 0.0) or 0.0)
    L = getattr(task, "levels", None) or getattr(task, "extra", {}).get("official_levels")
    if L:
        s = math.sqrt(s * s + (1.0 / (L - 1)) ** 2 / 12.0)
    return s


def _dictionary_path(cfg) -> Path:
    """``dictionary_path`` when the config sets one (it wins: a config means what it
    says), else the workflow's learned dictionary (``extra_inputs``)."""
    extra = cfg.get("extra_inputs") or {}
    path = cfg.get("dictionary_path") or extra.get("dictionary")
    if not path:
        raise ValueError("sparse needs a learned dictionary: run the workflow's learn_dictionary rule "
                         "(results/<name>/classical/dictionary.npz) or set method_params.sparse.dictionary_path")
    return Path(path)


_DICT_CACHE: dict = {}


# sparse stays one image per call: OMP drops converged patches from its working set,
# so the shapes of its matmuls (and a row's code path) would depend on the batch-mates
@register("sparse", check=check_sparse)
def restore_sparse(y, op, prior, cfg, seeds, upstream=None, task=None):
    """Sparse coding: K-SVD patch dictionary + OMP (Elad & Aharon 2006, Yang et al. 2010)."""
    c = _merged(SPARSE_DEFAULTS, cfg)
    t0 = time.perf_counter()
    if "dictionary" in c and isinstance(c["dictionary"], tuple):
        D, meta = c["dictionary"]          # in-memory (tuning)
    else:
        path = _dictionary_path(c)
        key = (str(path), path.stat().st_mtime_ns)
        if key not in _DICT_CACHE:
            _DICT_CACHE.clear()
            _DICT_CACHE[key] = load_dictionary(path)
        D, meta = _DICT_CACHE[key]
    y, bad = _finite_rows(y)
    res = solve_sparse(op, y, D, patch=int(meta["patch"]), stride=int(c["stride"]),
                       sparsity=int(c["sparsity"]), noise_sigma=sparse_noise_sigma(task, c),
                       C=float(c["C"]), n_iter=int(c["n_iter"]), beta=float(c["beta"]),
                       channels=int(meta.get("channels", 3)))
    return _to_restoration(res, time.perf_counter() - t0, y.shape[0], bad_input=bad)
