"""What Yeh et al.'s discriminator term costs per search iteration, at 64 px.

Yeh et al. (ICASSP 2018) search ``z`` with a loss that holds ``D(G(z))``, so
every iteration pays a forward + backward pass of D besides G's; CSGM pays G's
alone.  This times, side by side in one run, with the networks the methods
search with (batch norm folded, ``ganrestore.priors.fold_batchnorm``), per
image (``microbatch`` 1, the workflow's default) and batched:

- ``G``: forward G(z) and backward to z (CSGM's inner step, data term only);
- ``D``: forward D(x) and backward to x, x a 64-px image (the extra work);
- ``G+D``: forward D(G(z)) + data term, backward to z (Yeh's inner step);

for the teacher G (DCGAN-64, ngf 64) and the DCGAN-64 discriminator at
ndf 64 (standard) and 32, and prints the ratios ``D / G`` and ``(G+D) / G``.
Weights are random for D (speed does not depend on them).

    .venv/bin/python benchmarks/bench_yeh_d_cost.py [--threads 1] [--batch 1 8] [--reps 30] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from ganrestore.priors import Discriminator, fold_batchnorm, load_teacher_generator


def _time(fn, reps: int) -> float:
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t) / reps


def _rounds(fns: dict, reps: int, rounds: int) -> dict:
    """Seconds per call of each function: the median over ``rounds`` rounds that
    interleave them (a shared machine's load hits all of them alike)."""
    for f in fns.values():   # warm-up
        for _ in range(3):
            f()
    out = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            out[k].append(_time(f, reps))
    return {k: statistics.median(v) for k, v in out.items()}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--ndf", type=int, nargs="+", default=[64, 32])
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median reported)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    G = fold_batchnorm(load_teacher_generator())
    Ds = {ndf: fold_batchnorm(Discriminator(ndf=ndf).eval()) for ndf in a.ndf}
    out = {"threads": a.threads, "reps": a.reps, "rounds": a.rounds, "rows": []}
    for b in a.batch:
        z = torch.randn(b, G.nz, requires_grad=True)
        target = torch.rand(b, 3, 64, 64) * 2 - 1

        def g_step():
            (gz,) = torch.autograd.grad((G(z) - target).abs().sum(), z)
            return gz
        for ndf, D in Ds.items():
            x = torch.rand(b, 3, 64, 64, requires_grad=True)

            def d_step(D=D, x=x):
                (gx,) = torch.autograd.grad(D(x).sum(), x)
                return gx

            def gd_step(D=D):
                xg = G(z)
                (gz,) = torch.autograd.grad((xg - target).abs().sum() - D(xg).sum(), z)
                return gz
            t = _rounds({"G": g_step, "D": d_step, "G+D": gd_step}, max(1, a.reps // a.rounds), a.rounds)
            t_g, t_d, t_gd = t["G"], t["D"], t["G+D"]
            row = {"batch": b, "ndf": ndf, "ms_per_image_G": 1e3 * t_g / b, "ms_per_image_D": 1e3 * t_d / b,
                   "ms_per_image_G+D": 1e3 * t_gd / b, "D/G": t_d / t_g, "(G+D)/G": t_gd / t_g}
            out["rows"].append(row)
            print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}))
    return out


if __name__ == "__main__":
    main()
