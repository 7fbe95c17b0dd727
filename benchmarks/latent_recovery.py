"""How close the z-searches get to the true latent of the in-range faces.

The demo's in-range test faces are G(z*) with z* stored in the split
(``data/test.npz``, NaN rows for real photos).  For every restore artifact of a
z-search (csgm, yeh, yeh_lambda0, iagan: ``extra_z``) this prints, per task and
method, over the in-range faces: the PSNR of the restoration, the distance
||z_hat - z*|| and, for scale, ||z*|| (about sqrt(100) = 10 for N(0, I) latents)
and the distance a random start has (||z0 - z*|| ~ sqrt(2 * 100) = 14).  It only
reads files.

    .venv/bin/python benchmarks/latent_recovery.py [--name demo] [--tasks sr4,sr8]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SEARCHES = ("csgm", "yeh", "yeh_lambda0", "iagan")


def rows(results: Path, tasks=None) -> list[dict]:
    split = np.load(results / "data/test.npz")
    ids = [str(i) for i in split["ids"]]
    z_true = dict(zip(ids, split["z"].astype(np.float64)))
    out = []
    for task_dir in sorted((results / "restore").iterdir()):
        if tasks and task_dir.name not in tasks:
            continue
        for m in SEARCHES:
            shards = sorted((task_dir / m).glob("*.npz"))
            if not shards:
                continue
            psnr = {}
            mpath = results / "metrics" / task_dir.name / f"{m}.csv"
            if mpath.exists():
                with open(mpath) as f:
                    psnr = {r["image_id"]: float(r["psnr"]) for r in csv.DictReader(f)}
            d, p, nz = [], [], []
            for s in shards:
                a = np.load(s)
                for i, z in zip(a["ids"], a["extra_z"].astype(np.float64)):
                    zt = z_true.get(str(i))
                    if zt is None or not np.isfinite(zt).all() or not np.isfinite(z).all():
                        continue
                    d.append(float(np.linalg.norm(z - zt)))
                    nz.append(float(np.linalg.norm(zt)))
                    p.append(psnr.get(str(i), np.nan))
            if d:
                out.append({"task": task_dir.name, "method": m, "n": len(d), "psnr": float(np.nanmean(p)),
                            "dist": float(np.mean(d)), "dist_max": float(np.max(d)), "norm_z": float(np.mean(nz))})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--name", default="demo")
    ap.add_argument("--tasks", default=None)
    a = ap.parse_args()
    res = ROOT / "results" / a.name
    got = rows(res, a.tasks.split(",") if a.tasks else None)
    print(f"{res}: in-range faces (true z known); a random start is ~14 from z*, ||z*|| ~ 10")
    print(f"{'task':<30}{'method':<13}{'n':>3}{'PSNR dB':>9}{'|z-z*|':>9}{'max':>8}{'|z*|':>7}")
    for r in got:
        print(f"{r['task']:<30}{r['method']:<13}{r['n']:>3}{r['psnr']:>9.2f}{r['dist']:>9.2f}{r['dist_max']:>8.2f}"
              f"{r['norm_z']:>7.2f}")


if __name__ == "__main__":
    main()
