"""Choose the classical baselines' hyper-parameters on the validation split.

Small grids per (method, task) -- lambda, rank, constrained or penalised,
colourisation mode, sparsity, alternations -- scored by mean per-image PSNR on
the corrupted *validation* images (PSNR of the mean MSE,
``ganrestore.tuning.grid_search``; the test split is never read).  Prints a table of every grid point, writes it as CSV,
and prints the ``method_params`` block to paste into the config.

    .venv/bin/python scripts/tune_classical.py \\
        --val results/demo/data/val.npz \\
        --dictionary results/demo/classical/dictionary.npz \\
        --out results/demo/classical/tuning.csv

Without ``--dictionary`` (or if the file is missing) a dictionary is learned
from the same validation images with the workflow's default K-SVD settings.
Run by hand; the chosen values are recorded in config/config.yaml.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path

import torch

from ganrestore.io import load_split
from ganrestore.solvers.sparse import learn_dictionary
from ganrestore.tasks import make_task
from ganrestore.tuning import grid_search

TASKS = ["inpaint_center32", "colorize", "sr4", "denoise_sigma0.1", "quantize5"]

# The grids.  Per task family; each entry a grid dict or a list of grid dicts.
GRIDS = {
    "tv": {
        "inpaint": [{"constrained": [True]}, {"lam": [0.002, 0.01, 0.03]}],
        "colorize": [{"colorize": ["gray", "generic"], "constrained": [True]},
                     {"colorize": ["gray", "generic"], "lam": [0.002, 0.01]}],
        "sr": [{"constrained": [True]}, {"lam": [0.002, 0.005, 0.01, 0.02]}],
        "denoise": {"lam": [0.05, 0.08, 0.11, 0.15, 0.2, 0.27], "mode": ["vectorial", "channel"]},
        "quantize": {"lam": [0.05, 0.08, 0.11, 0.15, 0.2, 0.27], "mode": ["vectorial", "channel"]},
    },
    "lowrank": {
        "inpaint": [{"constrained": [True], "rank": [0, 2, 5], "outer_iter": [3]},
                    {"lam": [0.05, 0.2, 0.5], "rank": [0]}],
        "colorize": [{"colorize": ["gray", "generic"], "constrained": [True]},
                     {"colorize": ["gray"], "lam": [0.02, 0.1]}],
        "sr": [{"constrained": [True], "rank": [0, 2], "outer_iter": [3]},
               {"lam": [0.01, 0.05, 0.2], "rank": [0]}],
        "denoise": [{"lam": [0.25, 0.5, 1.0, 1.5, 2.5], "rank": [0]},
                    {"lam": [0.5, 1.0, 1.5], "rank": [2], "outer_iter": [3]}],
        "quantize": [{"lam": [0.1, 0.25, 0.5, 1.0], "rank": [0]},
                     {"lam": [0.25, 0.5], "rank": [2], "outer_iter": [3]}],
    },
    "sparse": {
        "default": [{"sparsity": [3, 4, 6], "n_iter": [2, 4], "beta": [0.1, 0.3, 1.0]},
                    {"sparsity": [3, 4], "n_iter": [8], "beta": [0.03, 0.1]}],
        "denoise": [{"sparsity": [8], "n_iter": [0], "beta": [10.0, 30.0, 100.0, 1000.0], "C": [1.0, 1.15, 1.3]},
                    {"sparsity": [8], "n_iter": [1], "beta": [10.0, 30.0], "C": [1.0, 1.15]}],
        "quantize": [{"sparsity": [8], "n_iter": [0], "beta": [10.0, 30.0, 100.0, 1000.0], "C": [1.0, 1.15, 1.3]},
                     {"sparsity": [8], "n_iter": [1], "beta": [10.0, 30.0], "C": [1.0, 1.15]}],
    },
}


def grid_for(method, family):
    g = GRIDS[method]
    return g.get(family, g.get("default"))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--val", default="results/demo/data/val.npz", help="prepared validation split (.npz)")
    ap.add_argument("--dictionary", default="results/demo/classical/dictionary.npz")
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--methods", default="tv,lowrank,sparse")
    ap.add_argument("--image-size", type=int, default=None, help="default: the split's")
    ap.add_argument("--seed", type=int, default=0, help="global seed of the corruption (config 'seed')")
    ap.add_argument("--out", default=None, help="CSV of every grid point")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    x, ids = load_split(args.val)
    if args.image_size and x.shape[-1] != args.image_size:
        raise SystemExit(f"{args.val}: images are {x.shape[-1]} px, not {args.image_size}")
    print(f"# validation split {args.val}: {x.shape[0]} images {tuple(x.shape[1:])}", flush=True)

    dict_arg = None
    if "sparse" in args.methods.split(","):
        if args.dictionary and Path(args.dictionary).exists():
            dict_arg = {"dictionary_path": str(args.dictionary)}
            print(f"# dictionary {args.dictionary}")
        else:
            t0 = time.perf_counter()
            D, _ = learn_dictionary(x, patch=6)
            dict_arg = {"dictionary": (D, {"patch": 6, "channels": 3})}
            print(f"# dictionary learned on the validation split ({time.perf_counter() - t0:.1f} s)")

    rows, chosen = [], {}
    for method in args.methods.split(","):
        for task_name in args.tasks.split(","):
            fam = make_task(task_name, x.shape[-1]).family
            base = dict(dict_arg) if method == "sparse" else {}
            t0 = time.perf_counter()
            best, rs = grid_search(method, task_name, x, ids, grid_for(method, fam), base,
                                   global_seed=args.seed)
            rows += rs
            pick = {k: v for k, v in best.items() if k not in ("dictionary", "dictionary_path")}
            chosen.setdefault(method, {})[task_name] = pick
            top = max(rs, key=lambda r: r["psnr_mse"])
            print(f"{method:8s} {task_name:18s} best {json.dumps(pick)}  PSNR(mean MSE) "
                  f"{top['psnr_mse']:.2f} mean PSNR {top['psnr']:.2f} SSIM {top['ssim']:.4f}  ({len(rs)} points, "
                  f"{time.perf_counter() - t0:.0f} s)", flush=True)

    scores = ["psnr_mse", "psnr", "ssim", "seconds", "iterations", "n_images", "n_diverged", "error"]
    keys = []
    for r in rows:
        keys += [k for k in r if k not in keys and k not in scores]
    keys += [k for k in scores if any(k in r for r in rows)]
    print("\n# every grid point (mean over the validation images)")
    print(" | ".join(keys))
    for r in rows:
        print(" | ".join(_fmt(r.get(k, "")) for k in keys))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(rows)
        print(f"# wrote {args.out}")
    print("\n# method_params (per_task) chosen on the validation split:")
    print(json.dumps(chosen, indent=2))
    return chosen


def _fmt(v):
    if isinstance(v, float):
        return "-inf" if v == -math.inf else f"{v:.4g}"
    return str(v)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
