"""Our TV and nuclear-norm solvers against cvxpy on the same 64x64x3 problems.

For every task operator (inpaint_center32, colorize, sr4, denoise_sigma0.1,
quantize5) one face image (from the teacher generator, seed 0) is corrupted and
the same convex problem

    TV:       min_{x in [0,1]} 1/2||Ax - y||^2 + lam_tv TV(x)    (vectorial TV, box)
    nuclear:  min_x 1/2||Ax - y||^2 + lam_nn sum_c ||X_c||_*      (no box, as Hu et al.)

is solved by cvxpy (TV: CLARABEL, interior point; nuclear norm: SCS -- CLARABEL
did not finish a 64x64x3 nuclear-norm SDP within 15 minutes here) and by
``ganrestore.solvers`` (single thread, relative-change stopping), side by side
in one run, each the best of several runs (``--repeats`` for ours,
``--ref-repeats`` for cvxpy).  Printed: wall seconds of each (cvxpy including
its compilation, and its solver's own time), the speed ratio, and the relative objective gap
``(ours - cvxpy) / |cvxpy|`` (negative: ours is lower).  Target: >= 100x faster
at <= 1e-3 relative gap.  No timed asserts: this only prints.

    .venv/bin/python benchmarks/bench_classical.py [--tasks sr4,colorize] [--size 64]
"""

from __future__ import annotations

import argparse
import time

import torch

from ganrestore.methods.classical import LOWRANK_DEFAULTS, TV_DEFAULTS
from ganrestore.priors import load_teacher_generator, to_unit
from ganrestore.solvers.lowrank import solve_lowrank
from ganrestore.solvers.reference import operator_matrix, solve_reference
from ganrestore.solvers.tv import solve_tv
from ganrestore.tasks import corrupt, make_task

TASKS = ["inpaint_center32", "colorize", "sr4", "denoise_sigma0.1", "quantize5"]


def image(size: int) -> torch.Tensor:
    G = load_teacher_generator()
    with torch.no_grad():
        x = to_unit(G(torch.randn(1, 100, 1, 1, generator=torch.Generator().manual_seed(0))))
    if size != 64:
        x = torch.nn.functional.interpolate(x, size=size, mode="area")
    return x


def ours(prior, op, y, lam, tol, repeats=15, **kw):
    """Best of ``repeats`` runs (the first pays one-off allocation costs; on a
    shared 2-core VM single runs of the same solve vary up to 2x); the stopping
    tolerance is the method's default unless ``tol`` is given."""
    best = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        if prior == "tv":
            r = solve_tv(op, y, lam, max_iter=5000, tol=tol or TV_DEFAULTS["tol"])
        else:
            r = solve_lowrank(op, y, lam, max_iter=2000, tol=tol or LOWRANK_DEFAULTS["tol"], **kw)
        dt = time.perf_counter() - t0
        best = (r, dt) if best is None or dt < best[1] else best
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--priors", default="tv,nuclear")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--lam-tv", type=float, default=0.05)
    ap.add_argument("--lam-nn", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=15, help="our solvers: best of this many runs")
    ap.add_argument("--ref-repeats", type=int, default=3, help="cvxpy: best of this many solves")
    ap.add_argument("--tol", type=float, default=None,
                    help="our solvers' relative-change tolerance (default: the methods' defaults)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import cvxpy as cp

    x = image(args.size)
    rows = []
    hdr = (f"{'prior':8s} {'task':18s} {'cvxpy':>9s} {'(solver)':>9s} {'ours':>8s} {'iters':>6s} "
           f"{'speedup':>8s} {'rel.gap':>10s} {'rms diff':>9s}  cvxpy solver")
    print(f"# {args.size}x{args.size}x3, torch threads={args.threads}, cvxpy {cp.__version__}, "
          f"ours: tol tv={args.tol or TV_DEFAULTS['tol']} nuclear={args.tol or LOWRANK_DEFAULTS['tol']}, "
          f"lam_tv={args.lam_tv}, lam_nn={args.lam_nn}")
    print(hdr)
    print("-" * len(hdr))
    for prior in args.priors.split(","):
        for name in args.tasks.split(","):
            task = make_task(name, args.size)
            y = corrupt(x, task, ["bench"], 0)
            lam = args.lam_tv if prior == "tv" else args.lam_nn
            solver = "CLARABEL" if prior == "tv" else "SCS"
            variants = [("", {})]
            if prior == "nuclear" and task.family == "colorize":
                variants.append(("*", {"closed_form": False}))
            # ours first: solver threads left spinning after a cvxpy solve would
            # otherwise slow the next timed run on a small machine
            timed = [ours(prior, task.op, y, lam, args.tol, args.repeats, **kw) for _, kw in variants]
            Amat = operator_matrix(task.op, (3, args.size, args.size))
            t_ref = t_solver = float("inf")
            for _ in range(args.ref_repeats):
                t0 = time.perf_counter()
                xr, obj_ref, _ = solve_reference(task.op, y[0], lam, prior, solver=solver, Amat=Amat,
                                                 box=(prior == "tv"))
                t_ref = min(t_ref, time.perf_counter() - t0)
                t_solver = min(t_solver, _last_solver_time())
            for (mark, _), (r, t_ours) in zip(variants, timed):
                obj = float(r.objective[0])
                gap = (obj - obj_ref) / abs(obj_ref)
                rms = float((r.x[0] - xr).pow(2).mean().sqrt())
                if not mark:
                    rows.append((prior, name, t_ref, t_ours, gap))
                print(f"{prior:8s} {name + mark:18s} {t_ref:8.2f}s {t_solver:8.2f}s {t_ours:7.3f}s "
                      f"{int(r.iterations[0]):6d} {t_ref / t_ours:7.0f}x {gap:+10.2e} {rms:9.2e}  {solver}",
                      flush=True)
    print("-" * len(hdr))
    ok = [r for r in rows if r[2] / r[3] >= 100 and r[4] <= 1e-3]
    print(f"target (>=100x faster, rel. gap <= 1e-3): met on {len(ok)}/{len(rows)} problems")
    print("rms diff: RMS difference of the two images; not comparable for colorize, whose minimiser is "
          "not unique for TV (constant chroma offsets cost nothing)")
    if "nuclear" in args.priors.split(",") and "colorize" in args.tasks.split(","):
        print("nuclear colorize: solved in closed form (one SVT: the whole picture goes to the green channel, "
              "see lowrank._luma_nuclear_closed_form);\n  colorize*: the same problem by the iterative "
              "ADMM (closed_form=False), for comparison, not counted in the target line")


_LAST = {}


def _last_solver_time():
    return _LAST.get("t", float("nan"))


def _patch_cvxpy_timing():
    """Record the solver's own time (cvxpy's solver_stats) of each solve."""
    import cvxpy as cp

    orig = cp.Problem.solve

    def solve(self, *a, **k):
        out = orig(self, *a, **k)
        st = getattr(self, "solver_stats", None)
        _LAST["t"] = float(st.solve_time) if st is not None and st.solve_time is not None else float("nan")
        return out

    cp.Problem.solve = solve


if __name__ == "__main__":
    _patch_cvxpy_timing()
    main()
