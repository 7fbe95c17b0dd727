"""Grid search of a method's hyper-parameters on the *validation* split.

The test split is never touched: the caller passes clean validation images,
they are corrupted exactly as the workflow corrupts a split
(:func:`ganrestore.tasks.corrupt`, noise seeded per image id), restored with
every combination of the grid, and scored with the workflow's metrics (PSNR of
the mean MSE by default; mean per-image PSNR and SSIM reported too).

>>> from ganrestore.tuning import expand_grid
>>> expand_grid({"lam": [0.1, 0.2], "rank": [0]})
[{'lam': 0.1, 'rank': 0}, {'lam': 0.2, 'rank': 0}]
"""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import torch

from . import metrics
from .methods import get_method, run_method
from .seeding import image_seeds
from .tasks import corrupt, make_task


def expand_grid(grid) -> list[dict]:
    """All combinations of ``{key: [values]}`` (in key order); a list of such
    dicts is the concatenation of their grids (for grids whose keys depend on
    each other, e.g. ``lam`` only matters when ``constrained`` is false)."""
    if isinstance(grid, (list, tuple)):
        return [p for g in grid for p in expand_grid(g)]
    keys = list(grid)
    return [dict(zip(keys, vals)) for vals in itertools.product(*(grid[k] for k in keys))]


def evaluate_config(method: str, task_name: str, x: torch.Tensor, ids, cfg: dict,
                    global_seed: int = 0, y: torch.Tensor | None = None) -> dict:
    """Restore the corrupted ``x`` with ``method`` under ``cfg``; mean metrics.

    Diverged images count as failures: the row's ``n_diverged`` is reported and
    its PSNR is ``-inf`` when any image diverged (a grid point that diverges is
    never chosen).
    """
    info = get_method(method)
    task = make_task(task_name, x.shape[-1], global_seed)
    if y is None:
        y = corrupt(x, task, ids, global_seed)
    seeds = image_seeds(global_seed, task_name, ids, f"method:{method}")
    t0 = time.perf_counter()
    res = run_method(info, y, task.op, None, dict(cfg), seeds, upstream=None, task=task)
    sec = time.perf_counter() - t0
    bad = res.diagnostics["diverged"]
    ok = ~bad
    x = task.clean(x)                       # the task's ground truth (misaligned SR: the shifted image)
    p = metrics.psnr(res.x_hat[torch.from_numpy(ok)], x[torch.from_numpy(ok)]) if ok.any() else np.array([])
    s = metrics.ssim(res.x_hat[torch.from_numpy(ok)], x[torch.from_numpy(ok)]) if ok.any() else np.array([])
    n_bad = int(bad.sum())
    mse = metrics.mse(res.x_hat[torch.from_numpy(ok)], x[torch.from_numpy(ok)]) if ok.any() else np.array([])
    return {"psnr_mse": metrics.psnr_of_mean_mse(mse) if n_bad == 0 and len(mse) else -math.inf,
            "psnr": float(p.mean()) if n_bad == 0 else -math.inf,
            "ssim": float(s.mean()) if n_bad == 0 and len(s) else math.nan,
            "seconds": sec, "n_images": int(x.shape[0]), "n_diverged": n_bad,
            "iterations": float(np.mean(res.diagnostics["iterations"]))}


def grid_search(method: str, task_name: str, x: torch.Tensor, ids, grid,
                base_cfg: dict | None = None, global_seed: int = 0, metric: str = "psnr_mse",
                log=None) -> tuple[dict, list[dict]]:
    """Best configuration of ``method`` on ``task_name`` over ``grid``.

    ``grid``: ``{key: [values]}`` or a list of those (see :func:`expand_grid`).
    Returns ``(best_cfg, rows)``: ``best_cfg`` is ``base_cfg`` updated with the
    winning grid point (highest ``metric``; ties go to the earlier point; the
    default ``psnr_mse`` is the PSNR of the mean MSE over the images, which --
    unlike the mean of per-image PSNRs -- a single near-perfect image (a grey
    photograph under colourisation: 150 dB) cannot dominate),
    ``rows`` one dict per grid point with its parameters and scores.
    """
    base_cfg = dict(base_cfg or {})
    task = make_task(task_name, x.shape[-1], global_seed)
    y = corrupt(x, task, ids, global_seed)
    rows = []
    best, best_score = None, -math.inf
    for point in expand_grid(grid):
        cfg = {**base_cfg, **point}
        try:
            sc = evaluate_config(method, task_name, x, ids, cfg, global_seed, y=y)
        except ValueError as e:          # an invalid combination (e.g. constrained on a noisy task)
            sc = {"psnr_mse": -math.inf, "psnr": -math.inf, "ssim": math.nan, "error": str(e)}
        row = {"method": method, "task": task_name, **point, **sc}
        rows.append(row)
        if log:
            log(row)
        if sc[metric] > best_score:
            best, best_score = point, sc[metric]
    return {**base_cfg, **(best or {})}, rows
