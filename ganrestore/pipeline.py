"""The stages of the workflow as plain functions (the Snakemake scripts call these).

Each stage reads the artifacts the previous one wrote and writes its own
atomically: ``prepare -> corrupt -> restore -> evaluate -> summarise``.
"""

from __future__ import annotations

import csv
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch

from . import io
from .imagekinds import image_kinds, kinds_aggregates, summarize_images
from .methods import Restoration, block_size, get_method, run_method
from .seeding import image_seeds
from .tasks import corrupt, make_task

log = logging.getLogger("ganrestore")


def method_config(method_params: dict, method: str, task: str) -> dict:
    """The flat config of ``method`` for ``task``: shared keys overridden by ``per_task[task]``."""
    params = dict(method_params.get(method, {}) or {})
    per_task = params.pop("per_task", {}) or {}
    params.update(per_task.get(task, {}) or {})
    return params


def shard_bounds(n_images: int, shard_size: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` of consecutive shards covering ``n_images``."""
    if shard_size < 1:
        raise ValueError("shard_size must be >= 1")
    return [(a, min(a + shard_size, n_images)) for a in range(0, n_images, shard_size)]


def n_shards(n_images: int, shard_size: int) -> int:
    return math.ceil(n_images / shard_size)


# -- prepare -----------------------------------------------------------------

def write_split(path, images_uint8: np.ndarray, ids, meta: dict, extra: dict | None = None) -> None:
    arrays = {"images": np.asarray(images_uint8, np.uint8), "ids": np.asarray(list(ids), dtype=str)}
    arrays.update(extra or {})
    io.save_artifact(path, arrays, meta)


def write_manifest(path, rows: list[dict]) -> None:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with io.atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: (r.get(k, "") if not isinstance(r.get(k), (list, tuple, np.ndarray))
                            else np.asarray(r[k]).round(2).tolist()) for k in keys})


# -- corrupt -----------------------------------------------------------------

def run_corrupt(split_path, task_name: str, image_size: int, global_seed: int, out_path,
                task_options: dict | None = None) -> None:
    """One corruption artifact per (task, split): ``y`` for every image, seeded per image id.
    ``task_options``: the config's (:data:`ganrestore.tasks.TASK_OPTIONS`)."""
    t0 = time.perf_counter()
    x, ids = io.load_split(split_path)
    if x.shape[-1] != image_size:
        raise ValueError(f"{split_path}: images are {x.shape[-1]}px, config says image_size={image_size}")
    task = make_task(task_name, image_size, global_seed, task_options)
    y = corrupt(x, task, ids, global_seed)
    io.save_artifact(out_path, {"y": y.numpy().astype(np.float32), "ids": np.asarray(ids, dtype=str)},
                     {"stage": "corrupt", "task": task.spec(), "seed": global_seed,
                      "noise_seeds": image_seeds(global_seed, task.name, ids, "noise") if task.sigma else None,
                      "source": str(split_path), "seconds": time.perf_counter() - t0})


# -- restore -----------------------------------------------------------------

def load_restoration(path) -> Restoration:
    d = io.load_artifact(path)
    diag = {k[5:]: v for k, v in d.items() if k.startswith("diag_")}
    extras = {k[6:]: v for k, v in d.items() if k.startswith("extra_")}
    return Restoration(torch.from_numpy(d["x_hat"]), diag, extras)


def save_restoration(path, res: Restoration, ids, meta: dict) -> None:
    arrays = {"x_hat": res.x_hat.detach().cpu().numpy().astype(np.float32),
              "ids": np.asarray(ids, dtype=str)}
    arrays.update({f"diag_{k}": v for k, v in res.diagnostics.items()})
    arrays.update({f"extra_{k}": np.asarray(v) for k, v in res.extras.items()})
    io.save_artifact(path, arrays, meta)


def run_restore(corrupt_path, task_name: str, method: str, cfg: dict, image_size: int,
                global_seed: int, start: int, stop: int, out_path,
                prior_path=None, upstream_path=None, device=None, microbatch="auto",
                task_options: dict | None = None) -> Restoration:
    """Restore images ``[start, stop)`` of a corruption artifact with one method, in
    blocks aligned to the image index (:func:`ganrestore.methods.run_method`: an
    image's result is bitwise independent of the shard it sits in)."""
    info = get_method(method)
    task = make_task(task_name, image_size, global_seed, task_options)
    d = io.load_artifact(corrupt_path)
    ids = [str(i) for i in d["ids"][start:stop]]
    if not ids:
        raise ValueError(f"shard [{start}, {stop}) of {corrupt_path} is empty")
    y = torch.from_numpy(d["y"][start:stop])
    prior = None
    if info.needs_prior:
        from .priors.checkpoint import load_prior  # noqa: PLC0415  (torch-heavy, only when needed)

        prior = load_prior(prior_path, device=device)
        dev = prior.device
    else:
        dev = torch.device(device or "cpu")
    op = task.op.to(dev)
    upstream = None
    if info.upstream:
        upstream = load_restoration(upstream_path)
        if upstream.x_hat.shape[0] != len(ids):
            raise ValueError(f"upstream {upstream_path} has {upstream.x_hat.shape[0]} images, shard has {len(ids)}")
    seeds = image_seeds(global_seed, task_name, ids, f"method:{info.seed_name}")
    t0 = time.perf_counter()
    block = block_size(info, microbatch)
    res = run_method(info, y.to(dev), op, prior, dict(cfg), seeds, upstream=upstream, task=task,
                     microbatch=block, offset=start)
    seconds = time.perf_counter() - t0
    res.x_hat = res.x_hat.detach().cpu()
    n_bad = int(res.diagnostics["diverged"].sum())
    if n_bad:
        log.warning("%s/%s: %d of %d images diverged and are flagged (NaN), not results",
                    task_name, method, n_bad, len(ids))
    save_restoration(out_path, res, ids, {
        "stage": "restore", "task": task.spec(), "method": method, "config": cfg,
        "seed": global_seed, "shard": [start, stop], "device": str(dev), "seconds": seconds,
        "microbatch": microbatch, "block": block, "threads": torch.get_num_threads(),
        "prior": str(prior_path) if prior_path else None,
        "upstream": str(upstream_path) if upstream_path else None, "n_diverged": n_bad})
    return res


# -- evaluate ----------------------------------------------------------------

METRIC_COLUMNS = ["psnr", "ssim", "mse"]


def run_evaluate(split_path, shard_paths, task_name: str, method: str, out_csv, out_json,
                 extra_metrics: dict | None = None, task_options: dict | None = None,
                 ssim_window: str = "gaussian11") -> dict:
    """Per-image metrics of one (task, method) over all its shards, plus aggregates.

    ``extra_metrics``: name -> callable(x_hat, x) -> (B,) array (e.g. LPIPS);
    ``task_options``: the config's (the ground truth of a misaligned task
    depends on its shift); ``ssim_window``: :data:`ganrestore.metrics.SSIM_WINDOWS`.
    """
    from . import metrics  # noqa: PLC0415  (scikit-image / SciPy: only evaluate jobs pay for them)

    t0 = time.perf_counter()
    x_all, ids_all = io.load_split(split_path)
    task = make_task(task_name, x_all.shape[-1], 0, task_options)
    x_all = task.clean(x_all)                      # the task's ground truth
    index = {i: k for k, i in enumerate(ids_all)}
    kind_of = dict(zip(ids_all, image_kinds(io.load_artifact(split_path))))   # real / in_range
    extra_metrics = dict(extra_metrics or {})
    if task.protocol == "official":
        # the official code's PSNR (src/imgsnr.py) beside the standard one
        from .official import psnr_official  # noqa: PLC0415

        extra_metrics["psnr_official"] = psnr_official
    rows, per = [], {m: [] for m in METRIC_COLUMNS + list(extra_metrics)}
    n_failed = 0
    for p in shard_paths:
        d = io.load_artifact(p)
        ids = [str(i) for i in d["ids"]]
        x_hat = torch.from_numpy(d["x_hat"])
        x = x_all[[index[i] for i in ids]]
        diverged = d.get("diag_diverged", np.zeros(len(ids), bool)).astype(bool)
        failure = d.get("diag_failure", np.where(diverged, "diverged", "")).astype(str)
        ok = ~diverged
        vals = {m: np.full(len(ids), np.nan) for m in per}
        if ok.any():
            xo, xho = x[torch.from_numpy(ok)], x_hat[torch.from_numpy(ok)]
            vals["psnr"][ok] = metrics.psnr(xho, xo)
            vals["ssim"][ok] = metrics.ssim(xho, xo, window=ssim_window)
            vals["mse"][ok] = metrics.mse(xho, xo)
            for name, fn in (extra_metrics or {}).items():
                vals[name][ok] = fn(xho, xo)
        n_failed += int(diverged.sum())
        for k, i in enumerate(ids):
            row = {"task": task_name, "method": method, "image_id": i, "kind": kind_of[i],
                   "diverged": bool(diverged[k]),
                   "failure": str(failure[k])}
            row.update({m: float(vals[m][k]) for m in per})
            for dk in ("objective", "iterations", "seconds"):
                if f"diag_{dk}" in d:
                    row[dk] = float(d[f"diag_{dk}"][k])
            rows.append(row)
            for m in per:
                per[m].append(vals[m][k])
    with io.atomic_path(out_csv) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    agg = {"task": task_name, "method": method,
           **summarize_images(per, [r.get("seconds", np.nan) for r in rows], n_failed),
           "ssim_window": ssim_window,
           # the same keys per image kind (ganrestore.imagekinds): the papers' claims use the real photos
           "by_kind": kinds_aggregates(rows, list(per), [r["kind"] for r in rows])}
    agg["evaluate_seconds"] = time.perf_counter() - t0     # this job's work (benchmarks/bench_workflow.py)
    io.write_json_atomic(out_json, agg)
    return agg


def evaluate_job(split_path, shard_paths, task_name: str, method: str, out_csv, out_json,
                 lpips_weights=None, task_options: dict | None = None, ssim_window: str = "gaussian11") -> dict:
    """The evaluate rule's job: :func:`run_evaluate` with LPIPS when its weights are given."""
    extra = {}
    if lpips_weights:
        from .metrics import lpips_metric  # noqa: PLC0415

        extra["lpips"] = lpips_metric(lpips_weights)
    return run_evaluate(split_path, list(shard_paths), task_name, method, out_csv, out_json, extra_metrics=extra,
                        task_options=task_options, ssim_window=ssim_window)
