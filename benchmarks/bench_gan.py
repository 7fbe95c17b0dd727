"""Throughput of the batched GAN-prior methods, measured side by side in one run.

1. CSGM: image-iterations per second of the batched search (images x restarts
   in one tensor, ``ganrestore.methods.gan_core.latent_search``) against a
   per-image sequential loop (one latent at a time, its own Adam, as the
   official CSGM / IAGAN scripts run a single image), both with the network
   the methods search with (batch norm folded); also the achieved GFLOP/s and
   the machine's dense-matmul rate, which bounds what batching can gain.
2. IAGAN: the batched image-adaptive step (B weight copies, ``torch.func`` +
   ``vmap``) against a Python loop over images (a deep copy of G per image with
   its own Adam, as the official IAGAN code).
3. ``--demo``: wall time per task of the six methods with the demo profile on
   8 images (the demo's shard), one thread (the restore rule's ``threads: 1``).
4. ``--blocks``: the workflow's paths side by side, at 1 and 2 threads, teacher
   DCGAN-64 (D of ndf 64 for Yeh), demo settings, ``--images`` images: one
   image per call (``microbatch: 1``), index-aligned blocks of 8 and 16 (16 is the default,
   ``microbatch: auto``) and one free batch of all images, for CSGM, Yeh, IAGAN
   and DIP, against a plain reference loop (CSGM: one latent, its own Adam, as
   deepinv's ``CSGMGenerator`` loops; IAGAN: a deep copy of G per image with its
   own Adam, as the official code); image-iterations per second, the ratio to
   the reference loop, and for CSGM the share of the dense-matmul ceiling (a
   2048^2 float32 matmul on the same threads), also at 64 rows.  ``--positions``:
   whether an image's result depends on its position in a block on this CPU
   (the same image at every position of one block; the workflow does not rely
   on the answer, it fixes the position).
5. ``--check``: what ``benchmarks/gpu_check.sh`` runs, as one JSON object:
   1 + 2 on ``--device`` (CUDA on a GPU machine), the dense-matmul rate in the
   same run, CSGM + IAGAN timed on 100 images x 5 tasks at 64 px (the teacher
   DCGAN) and on 16 images x 5 tasks at 128 px (a standard-width BEGAN,
   n = 128, random weights), each per image (``microbatch`` 1, the workflow's
   default; the first images, extrapolated) and batched, with a reduced
   number of iterations whose per-iteration time is projected to the papers'
   counts; and the memory estimate of one restore job per method at 1024 px
   (:func:`memory_estimates`).  ``--cpu-smoke`` shrinks every size so that it
   runs on a CPU in seconds.

Timings use a DCGAN with random weights (speed does not depend on the
weights) of the demo width (ngf = ndf = 32) unless ``--teacher``.

    .venv/bin/python benchmarks/bench_gan.py              # 1 + 2
    .venv/bin/python benchmarks/bench_gan.py --demo       # 3 as well
    .venv/bin/python benchmarks/bench_gan.py --check --cpu-smoke --json -   # 4, small
    .venv/bin/python benchmarks/bench_gan.py --memory 1024                   # the memory table only
    .venv/bin/python benchmarks/bench_gan.py --blocks --images 16            # 4, the workflow's paths
    .venv/bin/python benchmarks/bench_gan.py --positions                     # 4, position dependence
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time

import torch

from ganrestore.methods import get_method, run_method
from ganrestore.methods.gan_core import initial_latents, latent_search, measurement_loss
from ganrestore.methods.gan_iagan import _adam_impl, image_adaptive
from ganrestore.priors import (Discriminator, Generator, Prior, fold_batchnorm, load_teacher_generator,
                               to_unit)
from ganrestore.tasks import corrupt, make_task


def make_prior(teacher: bool, ngf: int) -> Prior:
    torch.manual_seed(0)
    G = load_teacher_generator() if teacher else Generator(ngf=ngf).eval()
    return Prior(G=G.eval(), D=Discriminator(ndf=ngf).eval())


def csgm_batched(G, op, y, seeds, R, iters):
    B = y.shape[0]
    yr = y.repeat_interleave(R, 0)

    def objective(x, z):
        m = measurement_loss(op, to_unit(x), yr)
        return m, m

    z0 = initial_latents(seeds, R, G.nz).to(y.device)
    t0 = time.perf_counter()
    latent_search(G, z0, B, R, objective, iterations=iters, lr=0.1)
    return time.perf_counter() - t0


def csgm_sequential(G, op, y, seeds, R, iters):
    """One (image, restart) at a time; BestKeeper by comparing the loss each step."""
    z_all = initial_latents(seeds, R, G.nz).to(y.device)
    t0 = time.perf_counter()
    for b in range(y.shape[0]):
        for r in range(R):
            z = z_all[b * R + r: b * R + r + 1].clone().requires_grad_(True)
            opt = torch.optim.Adam([z], lr=0.1)
            best, best_z = float("inf"), None
            for _ in range(iters):
                x = G(z)
                loss = measurement_loss(op, to_unit(x), y[b:b + 1]).sum()
                if loss.item() < best:
                    best, best_z = loss.item(), z.detach().clone()
                opt.zero_grad()
                (g,) = torch.autograd.grad(loss, [z])
                z.grad = g
                opt.step()
    return time.perf_counter() - t0


def step_flops(G, n: int) -> float:
    """FLOPs of one search step (G forward, backward to z) at batch ``n``."""
    from torch.utils.flop_counter import FlopCounterMode

    z = torch.randn(n, G.nz, requires_grad=True)
    with FlopCounterMode(display=False) as fc:
        G(z).square().sum().backward()
    return float(fc.get_total_flops())


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def sgemm_gflops(n: int = 2048, reps: int = 10, device="cpu") -> float:
    """The dense float32 matmul rate of this machine (the most any batched step can reach)."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    for _ in range(2):
        a @ b
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(device)
    return 2.0 * n ** 3 * reps / (time.perf_counter() - t0) / 1e9


def iagan_batched(G, op, y, z0, iters, mode="auto"):
    t0 = time.perf_counter()
    image_adaptive(G, z0, y, op, iterations=iters, lr_z=1e-4, lr_theta=1e-4, mode=mode)
    return time.perf_counter() - t0


def iagan_loop(G, op, y, z0, iters):
    t0 = time.perf_counter()
    for b in range(y.shape[0]):
        Gb = copy.deepcopy(G).eval()
        for p in Gb.parameters():
            p.requires_grad_(True)
        z = z0[b:b + 1].clone().requires_grad_(True)
        opt = torch.optim.Adam([{"params": list(Gb.parameters()), "lr": 1e-4}, {"params": [z], "lr": 1e-4}],
                               **_adam_impl())
        best = float("inf")
        for _ in range(iters):
            loss = measurement_loss(op, to_unit(Gb(z)), y[b:b + 1]).sum()
            best = min(best, loss.item())
            opt.zero_grad()
            loss.backward()
            opt.step()
    return time.perf_counter() - t0


def demo_timings(prior, n_images=8, microbatch=1):
    tasks = ["inpaint_center32", "colorize", "sr4", "denoise_sigma0.1", "quantize5"]
    methods = ["csgm", "csgm_bp", "iagan", "iagan_bp", "yeh", "yeh_blend"]
    torch.manual_seed(3)
    x = torch.rand(n_images, 3, 64, 64)
    seeds = list(range(n_images))
    print(f"\nDemo profile, {n_images} images per task, {torch.get_num_threads()} thread(s), "
          f"microbatch {microbatch} (the workflow's default is 1: batch-independent by construction): "
          "wall seconds per job (CPU seconds of the process in the last column)")
    print(f"{'task':<18}" + "".join(f"{m:>10}" for m in methods) + f"{'total':>10}{'cpu':>8}")
    grand = grand_cpu = 0.0
    for tn in tasks:
        task = make_task(tn, 64)
        y = corrupt(x, task, [str(i) for i in range(n_images)], 0)
        out, secs = {}, []
        c0 = time.process_time()
        for m in methods:
            info = get_method(m)
            t0 = time.perf_counter()
            out[m] = run_method(info, y, task.op, prior, {"profile": "demo"}, seeds, upstream=out.get(info.upstream),
                                task=task, microbatch=microbatch)
            secs.append(time.perf_counter() - t0)
        cpu = time.process_time() - c0
        grand += sum(secs)
        grand_cpu += cpu
        print(f"{tn:<18}" + "".join(f"{s:>10.1f}" for s in secs) + f"{sum(secs):>10.1f}{cpu:>8.1f}")
    print(f"{'all tasks':<18}{'':>60}{grand:>10.1f}{grand_cpu:>8.1f}  (the demo runs 2 jobs at once)")


# ----------------------------------------------------------------------------- --blocks
#: the demo's settings of each method (config/config.yaml), fewer iterations (rates
#: do not depend on the count)
BLOCK_CFG = {"csgm": {"iterations": 20, "restarts": 1}, "yeh": {"iterations": 20, "restarts": 1, "lr": 0.1},
             "iagan": {"iterations": 10}, "dip": {"iterations": 20, "skip_n33d": 16, "skip_n33u": 16}}


def _teacher_faces(n, seed=3):
    G = load_teacher_generator().eval()
    torch.manual_seed(seed)
    with torch.no_grad():
        return to_unit(G(torch.randn(n, G.nz))).clamp(0, 1).flip(-1)


def compare_blocks(n_images: int, threads: int) -> list[dict]:
    """Image-iterations per second of each path (section 4), one row per (method, path)."""
    torch.set_num_threads(threads)
    prior = Prior(G=load_teacher_generator().eval(), D=Discriminator(ndf=64).eval())
    task = make_task("sr4", 64)
    x = _teacher_faces(n_images)
    y = corrupt(x, task, [str(i) for i in range(n_images)], 0)
    seeds = list(range(n_images))
    up = run_method("csgm", y, task.op, prior, {"iterations": 2, "restarts": 1}, seeds, task=task)
    rows = []
    for m, cfg in BLOCK_CFG.items():
        iters = cfg["iterations"]
        p = None if m == "dip" else prior
        u = up if m == "iagan" else None
        paths = [("per image", 1), ("blocks of 8", 8), ("blocks of 16", 16)]
        paths += [(f"free batch of {n_images}", n_images)] if n_images not in (8, 16) else []
        for path, mb in paths:
            run_method(m, y[:mb], task.op, p, dict(cfg, iterations=2), seeds[:mb], task=task, microbatch=mb,
                       upstream=None if u is None else _head(u, mb))                      # warm-up
            t0 = time.perf_counter()
            run_method(m, y, task.op, p, cfg, seeds, task=task, microbatch=mb, upstream=u)
            rows.append({"method": m, "path": path, "threads": threads,
                         "img_it_per_s": n_images * iters / (time.perf_counter() - t0)})
    Gf = fold_batchnorm(prior.G)
    for p_ in Gf.parameters():
        p_.requires_grad_(False)
    n_ref = min(n_images, 4)
    t = csgm_sequential(Gf, task.op, y[:n_ref], seeds[:n_ref], 1, BLOCK_CFG["csgm"]["iterations"])
    rows.append({"method": "csgm", "path": "reference loop", "threads": threads,
                 "img_it_per_s": n_ref * BLOCK_CFG["csgm"]["iterations"] / t})
    G = copy.deepcopy(prior.G)
    z0 = torch.as_tensor(up.extras["z"][:n_ref])
    t = iagan_loop(G, task.op, y[:n_ref], z0, BLOCK_CFG["iagan"]["iterations"])
    rows.append({"method": "iagan", "path": "reference loop", "threads": threads,
                 "img_it_per_s": n_ref * BLOCK_CFG["iagan"]["iterations"] / t})
    # CSGM at 64 rows (restarts as rows) for the ceiling
    t = csgm_batched(Gf, task.op, y[:16], seeds[:16], 4, 10)
    rows.append({"method": "csgm", "path": "64 rows (16 images x 4 restarts)", "threads": threads,
                 "img_it_per_s": 64 * 10 / t})
    peak = sgemm_gflops(2048, reps=5)
    f1 = step_flops(Gf, 1)
    for r in rows:
        ref = next(q for q in rows if q["method"] == r["method"] and q["path"] in ("reference loop", "per image")
                   and (q["path"] == "reference loop" or not any(o["method"] == r["method"] and
                                                                 o["path"] == "reference loop" for o in rows)))
        r["vs_reference"] = r["img_it_per_s"] / ref["img_it_per_s"]
        r["matmul_share"] = r["img_it_per_s"] * f1 / 1e9 / peak if r["method"] == "csgm" else None
    print(f"\n{threads} thread(s), sr4, {n_images} teacher faces; dense matmul {peak:.1f} GFLOP/s; "
          f"CSGM step {f1 / 1e9:.3f} GFLOP per image-iteration")
    print(f"{'method':<8}{'path':<36}{'img-it/s':>10}{'vs ref':>8}{'matmul':>8}")
    for r in rows:
        share = f"{100 * r['matmul_share']:.0f} %" if r["matmul_share"] is not None else ""
        print(f"{r['method']:<8}{r['path']:<36}{r['img_it_per_s']:>10.1f}{r['vs_reference']:>8.2f}{share:>8}")
    return rows


def _head(res, n):
    from ganrestore.methods import Restoration

    return Restoration(res.x_hat[:n], {k: v[:n] for k, v in res.diagnostics.items()},
                       {k: v[:n] for k, v in res.extras.items()})


def position_dependence(B: int = 8, threads: int = 1) -> dict:
    """The same image at every position of one block of ``B`` (other slots: other
    faces): how many distinct results per method (1 = position does not matter on
    this CPU at this thread count)."""
    torch.set_num_threads(threads)
    prior = Prior(G=load_teacher_generator().eval(), D=Discriminator(ndf=64).eval())
    task = make_task("sr4", 64)
    x = _teacher_faces(B + 1, seed=4)
    y = corrupt(x, task, [str(i) for i in range(B + 1)], 0)
    out = {}
    for m, cfg in BLOCK_CFG.items():
        cfg = dict(cfg, iterations=5)
        p = None if m == "dip" else prior
        seen = []
        for pos in range(B):
            idx = list(range(B))
            idx[pos] = B                                   # the probe image at position pos
            yb = y[idx].clone()
            seeds = [100 + i for i in range(B)]
            seeds[pos] = 7
            u = None
            if m == "iagan":
                u = run_method("csgm", yb, task.op, prior, {"iterations": 2, "restarts": 1}, seeds, task=task,
                               microbatch=B)
            r = run_method(m, yb, task.op, p, cfg, seeds, task=task, microbatch=B, upstream=u)
            seen.append(r.x_hat[pos])
        distinct = []
        for v in seen:
            if not any(torch.equal(v, d) for d in distinct):
                distinct.append(v)
        out[m] = {"positions": B, "distinct_results": len(distinct),
                  "max_abs_diff": max(float((v - seen[0]).abs().max()) for v in seen)}
        print(f"{m:<8} distinct results over {B} positions: {len(distinct)} "
              f"(max |diff| {out[m]['max_abs_diff']:.3g}), {threads} thread(s)")
    return out


# ----------------------------------------------------------------------------- --check
def _step_flops_dev(G, n, device):
    from torch.utils.flop_counter import FlopCounterMode

    z = torch.randn(n, G.nz, device=device, requires_grad=True)
    with FlopCounterMode(display=False) as fc:
        G(z).square().sum().backward()
    return float(fc.get_total_flops())


def bench_section(G, device, images, restarts, iters, seq_images, ia_images, ia_iters, size):
    """Sections 1 + 2 as numbers: batched CSGM and IAGAN against per-image loops on ``device``."""
    task = make_task("sr4", size)
    torch.manual_seed(1)
    x = torch.rand(images, 3, size, size)
    y = corrupt(x, task, [str(i) for i in range(images)], 0).to(device)
    op = task.op.to(device)
    seeds = list(range(images))
    Gf = fold_batchnorm(G).to(device)
    csgm_batched(Gf, op, y[:2], seeds[:2], restarts, 2)               # warm-up
    csgm_sequential(Gf, op, y[:1], seeds[:1], 1, 2)
    N = images * restarts
    tb = _timed(lambda: csgm_batched(Gf, op, y, seeds, restarts, iters), device)
    ts = _timed(lambda: csgm_sequential(Gf, op, y[:seq_images], seeds[:seq_images], restarts, iters), device)
    rb, rs = N * iters / tb, seq_images * restarts * iters / ts
    f1, fN = _step_flops_dev(Gf, 1, device), _step_flops_dev(Gf, N, device)
    peak = sgemm_gflops(4096 if torch.device(device).type == "cuda" else 1024, device=device)
    Gd = G.to(device)
    for p_ in Gd.parameters():
        p_.requires_grad_(False)
    z0 = torch.randn(ia_images, G.nz, device=device)
    iagan_batched(Gd, op, y[:2], z0[:2], 1)
    iagan_loop(Gd, op, y[:1], z0[:1], 1)
    tib = _timed(lambda: iagan_batched(Gd, op, y[:ia_images], z0, ia_iters), device)
    til = _timed(lambda: iagan_loop(Gd, op, y[:ia_images], z0, ia_iters), device)
    return {"task": "sr4", "image_size": size,
            "csgm": {"rows": N, "iterations": iters, "batched_image_it_per_s": rb, "loop_image_it_per_s": rs,
                     "batched_over_loop": rb / rs, "batched_tflops": rb * fN / N / 1e12,
                     "loop_tflops": rs * f1 / 1e12, "gflop_per_image_iteration": f1 / 1e9},
            "iagan": {"copies": ia_images, "iterations": ia_iters, "batched_image_it_per_s": ia_images * ia_iters / tib,
                      "loop_image_it_per_s": ia_images * ia_iters / til, "batched_over_loop": til / tib},
            "dense_matmul_tflops": peak / 1e3}


def _timed(fn, device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


#: IAGAN's BEGAN settings (paper): CSGM 1600 iterations x 5 restarts, IAGAN 600 (CS) / 500 (others),
#: halved on noisy tasks.
PAPER_ITERS = {"csgm": 1600, "iagan_cs": 600, "iagan": 500}


def time_methods(prior, size, n_images, tasks, csgm_iters, iagan_iters, n_loop, restarts, device) -> list[dict]:
    """CSGM then IAGAN (from CSGM's z) on ``n_images`` x ``tasks``: batched (one
    micro-batch of all images) and per image (``microbatch`` 1, the workflow's
    default, on the first ``n_loop`` images, extrapolated), ``csgm_iters`` /
    ``iagan_iters`` iterations; the per-iteration time is projected to
    :data:`PAPER_ITERS`."""
    from ganrestore.methods.gan import iagan_iterations

    torch.manual_seed(5)
    with torch.no_grad():
        from ganrestore.priors import latents
        x = to_unit(torch.cat([prior.G(latents(min(8, n_images - i), prior.nz, prior.z_dist).to(device)).cpu()
                               for i in range(0, n_images, 8)])).clamp(0, 1).flip(-1)
    out = []
    for tn in tasks:
        task = make_task(tn, size)
        ids = [str(i) for i in range(n_images)]
        y = corrupt(x, task, ids, 0).to(device)
        op = task.op.to(device)
        seeds = list(range(n_images))
        paper_ia = iagan_iterations(None, task) // (2 if task.noisy else 1)
        for mb, n in (("batched", n_images), ("per_image", n_loop)):
            micro = n if mb == "batched" else 1
            cfg_c = {"iterations": csgm_iters, "restarts": restarts}
            _sync(device)
            t0 = time.perf_counter()
            up = run_method("csgm", y[:n], op, prior, cfg_c, seeds[:n], task=task, microbatch=micro)
            _sync(device)
            t_c = time.perf_counter() - t0
            t0 = time.perf_counter()
            run_method("iagan", y[:n], op, prior, {"iterations": iagan_iters, "halve_if_noisy": False}, seeds[:n],
                       upstream=up, task=task, microbatch=micro)
            _sync(device)
            t_i = time.perf_counter() - t0
            scale = n_images / n
            out.append({"task": tn, "image_size": size, "images": n_images, "timed_images": n,
                        "mode": mb, "microbatch": micro, "restarts": restarts,
                        "csgm_iterations": csgm_iters, "iagan_iterations": iagan_iters,
                        "csgm_seconds": t_c * scale, "iagan_seconds": t_i * scale,
                        "csgm_seconds_at_paper_iterations": t_c * scale * PAPER_ITERS["csgm"] / max(csgm_iters, 1),
                        "iagan_seconds_at_paper_iterations": t_i * scale * paper_ia / max(iagan_iters, 1),
                        "paper_iterations": {"csgm": PAPER_ITERS["csgm"], "iagan": paper_ia}})
    return out


def _saved_bytes(build) -> tuple[int, int]:
    """Bytes of the tensors autograd saves while ``build()`` runs (meta device: nothing
    is computed), and the largest one."""
    seen = {}

    def pack(t):
        seen[id(t)] = t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        build()
    return sum(seen.values()), max(seen.values(), default=0)


def _param_bytes(net) -> int:
    return sum(p.numel() * p.element_size() for p in net.parameters())


def memory_estimates(size: int = 1024, restarts: int = 5) -> dict:
    """Memory of one restore job (one image: ``microbatch`` 1) per method at ``size`` px,
    GiB, estimated on the meta device (no allocation): weights (+ gradients and Adam
    moments where they are optimised) + the activations autograd saves + twice the
    largest saved tensor (the transient gradient buffers of backward).  The prior is a
    PGAN of the zoo's default widths for that size (1024 px: depths 512 x4, 256, 128,
    64, 32, 16); DIP the official skip network (5 scales of 128 channels)."""
    from ganrestore.methods.dip import SkipNet, net_inputs
    from ganrestore.operators import GAUSSIAN_MAX_BYTES
    from ganrestore.priors.pgan import PGANDiscriminator, PGANGenerator

    n_other = int(math.log2(size // 4))
    depths = ([512, 512, 512, 512, 256, 128, 64, 32, 16] * 2)[: n_other + 1]
    gib = 1024 ** 3
    with torch.device("meta"):
        G = PGANGenerator(nz=512, depths=depths).eval()
        D = PGANDiscriminator(depths=depths).eval()
    PG, PD = _param_bytes(G), _param_bytes(D)

    def search(n, with_d=False, weights_grad=False):
        def build():
            z = torch.zeros(n, 512, device="meta", requires_grad=True)
            for p_ in G.parameters():
                p_.requires_grad_(weights_grad)
            x = G(z)
            loss = x.square().sum()
            if with_d:
                loss = loss + D(x).sum()
            return loss
        return _saved_bytes(build)

    est = {}
    s, big = search(restarts)
    est["csgm"] = (PG + s + 2 * big) / gib
    s, big = search(1, weights_grad=True)
    est["iagan"] = (PG * 5 + s + 2 * big) / gib          # G + one weight copy, its gradient, 2 Adam moments
    s, big = search(1, with_d=True)
    est["yeh"] = (PG + PD + s + 2 * big) / gib
    net = SkipNet()
    params = {k: v.to("meta").requires_grad_(True) for k, v in net.init_params([0], "cpu").items()}
    z = net_inputs([0], net.input_depth, size, size, 0.1).to("meta")
    s, big = _saved_bytes(lambda: net(params, z).square().sum())
    est["dip"] = (sum(v.numel() * 4 for v in params.values()) * 4 + s + 2 * big) / gib
    n = 3 * size * size
    out = {"image_size": size, "prior": f"PGAN depths {depths}", "restarts": restarts,
           "restore_job_gib": {k: round(v, 2) for k, v in est.items()},
           "cs_gaussian": (f"refused above {GAUSSIAN_MAX_BYTES / gib:.0f} GiB of matrix: at {size} px m/n <= "
                           f"{GAUSSIAN_MAX_BYTES / (4 * n * n):.4f}; use cs_fourier"),
           "evaluate": f"the test split as float32: {100 * n * 4 / gib:.2f} GiB per 100 images; LPIPS in chunks "
                       "of <= 2 GiB (ganrestore.lpips.lpips_batch_size)",
           "note": "estimates (meta device): weights, optimiser state, autograd-saved activations, 2x the "
                   "largest saved tensor; CUDA allocator caches and cuDNN workspaces come on top"}
    return out


def run_check(a, save=lambda out: None) -> dict:
    """Section 4: everything gpu_check.sh reports from Python, as one dict;
    ``save(out)`` is called after each part (a run cut short keeps what it measured)."""
    from ganrestore.priors import Prior
    from ganrestore.priors.began import BEGANDiscriminator, BEGANGenerator

    t_all = time.perf_counter()
    dev = torch.device(a.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    smoke = a.cpu_smoke
    out = {"device": str(dev), "torch": torch.__version__, "threads": torch.get_num_threads(),
           "mode": "cpu-smoke" if smoke else "full"}
    if dev.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(dev)
        out["gpu_memory_gib"] = round(torch.cuda.get_device_properties(dev).total_memory / 1024 ** 3, 1)
        out["tf32"] = {"matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn": torch.backends.cudnn.allow_tf32}
    teacher = None
    try:
        teacher = load_teacher_generator()
    except FileNotFoundError as e:
        out["teacher_note"] = f"{e}; a random standard-width DCGAN stands in"
    G64 = (teacher or Generator(ngf=64)).eval()
    t0 = time.perf_counter()
    if smoke:
        out["bench_gan"] = bench_section(copy.deepcopy(Generator(ngf=8).eval()), dev, images=4, restarts=2, iters=3,
                                         seq_images=1, ia_images=2, ia_iters=2, size=64)
    else:
        out["bench_gan"] = bench_section(copy.deepcopy(G64), dev, images=64, restarts=5, iters=50,
                                         seq_images=2, ia_images=32, ia_iters=10, size=64)
    out["bench_gan"]["seconds"] = round(time.perf_counter() - t0, 1)
    out["memory"] = memory_estimates(1024)
    save(out)
    tasks = ["sr4", "sr8", "cs_fourier_0.3_noise0.0392", "deblur_uniform9_noise0.0392", "cs_gaussian_0.1"]
    timing = []
    t0 = time.perf_counter()
    p64 = Prior(G=(Generator(ngf=8).eval() if smoke else copy.deepcopy(G64)), D=None).to(dev)
    out["timing"] = timing
    for tn in (tasks[:2] if smoke else tasks):
        timing += time_methods(p64, 64, 4 if smoke else 100, [tn], 2 if smoke else 100, 2 if smoke else 50,
                               1 if smoke else 4, 2 if smoke else 5, dev)
        save(out)
    torch.manual_seed(0)
    n = 8 if smoke else 128
    Gb = BEGANGenerator(nz=64, n=n, image_size=128).eval()
    for m in Gb.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.xavier_uniform_(m.weight)
    p128 = Prior(G=Gb, D=BEGANDiscriminator(n=n, nz=64, image_size=128).eval()).to(dev)
    for tn in (tasks[:1] if smoke else tasks):
        timing += time_methods(p128, 128, 2 if smoke else 16, [tn], 2 if smoke else 100, 2 if smoke else 50,
                               1 if smoke else 2, 2 if smoke else 5, dev)
        save(out)
    out["timing_seconds"] = round(time.perf_counter() - t0, 1)
    out["seconds"] = round(time.perf_counter() - t_all, 1)
    out["complete"] = True
    save(out)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--teacher", action="store_true", help="time the pretrained ngf=64 generator")
    ap.add_argument("--ngf", type=int, default=32)
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--restarts", type=int, default=2)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--seq-images", type=int, default=2, help="images timed in the sequential loop")
    ap.add_argument("--ia-images", type=int, default=8)
    ap.add_argument("--ia-iters", type=int, default=5)
    ap.add_argument("--demo", action="store_true", help="also time the demo profile per task")
    ap.add_argument("--blocks", action="store_true", help="section 4: per image / blocks / free batch / loop")
    ap.add_argument("--positions", action="store_true", help="section 4: does a row's position matter here")
    ap.add_argument("--check", action="store_true", help="section 5 (gpu_check.sh): one JSON object")
    ap.add_argument("--cpu-smoke", action="store_true", help="with --check: tiny sizes, seconds on a CPU")
    ap.add_argument("--device", default=None, help="with --check: cuda (default when present) or cpu")
    ap.add_argument("--json", default=None, help="with --check: write the JSON here ('-' = stdout)")
    ap.add_argument("--memory", type=int, default=None, help="print the memory estimates at this size and exit")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.memory:
        print(json.dumps(memory_estimates(a.memory), indent=2))
        return
    if a.blocks:
        for th in sorted({1, 2, a.threads}):
            compare_blocks(a.images, th)
        return
    if a.positions:
        for th in sorted({1, 2, a.threads}):
            position_dependence(8, th)
        return
    if a.check:
        def save(out):
            if a.json not in (None, "-"):
                with open(a.json + ".tmp", "w") as f:
                    f.write(json.dumps(out, indent=2) + "\n")
                import os
                os.replace(a.json + ".tmp", a.json)

        res = run_check(a, save)
        if a.json in (None, "-"):
            print(json.dumps(res, indent=2))
        return
    prior = make_prior(a.teacher, a.ngf)
    G = prior.G
    for p in G.parameters():
        p.requires_grad_(False)
    task = make_task("sr4", 64)
    torch.manual_seed(1)
    x = torch.rand(a.images, 3, 64, 64)
    y = corrupt(x, task, [str(i) for i in range(a.images)], 0)
    seeds = list(range(a.images))
    N = a.images * a.restarts
    print(f"G: {'teacher ngf=64' if a.teacher else f'random ngf={a.ngf}'}, threads={a.threads}, task sr4")

    # Both paths use the network the methods search with (batch norm folded into
    # the convolutions, ganrestore.priors.fold_batchnorm), so the ratio is the
    # batching alone; the folding gain is printed on its own line.
    Gf = fold_batchnorm(G)
    # warm-up (allocator, oneDNN primitive caches)
    for net in (G, Gf):
        csgm_batched(net, task.op, y[:2], seeds[:2], a.restarts, 2)
        csgm_sequential(net, task.op, y[:1], seeds[:1], 1, 2)
    tb = csgm_batched(Gf, task.op, y, seeds, a.restarts, a.iters)
    ts = csgm_sequential(Gf, task.op, y[:a.seq_images], seeds[:a.seq_images], a.restarts, a.iters)
    tbn = csgm_batched(G, task.op, y, seeds, a.restarts, a.iters)
    rb = N * a.iters / tb
    rs = a.seq_images * a.restarts * a.iters / ts
    rbn = N * a.iters / tbn
    f1, fN = step_flops(Gf, 1), step_flops(Gf, N)
    print(f"\n{'CSGM':<34}{'image-it/s':>12}{'ratio':>8}{'GFLOP/s':>10}")
    print(f"{f'batched ({a.images} img x {a.restarts} restarts = {N})':<34}{rb:>12.1f}{rb / rs:>8.2f}"
          f"{rb * fN / N / 1e9:>10.1f}")
    print(f"{f'sequential ({a.seq_images} img x {a.restarts} restarts)':<34}{rs:>12.1f}{1.0:>8.2f}"
          f"{rs * f1 / 1e9:>10.1f}")
    print(f"{'batched, original network (BN)':<34}{rbn:>12.1f}{rbn / rs:>8.2f}{rbn * fN / N / 1e9:>10.1f}")
    peak = sgemm_gflops()
    print(f"GFLOP/s: FLOPs of one G forward + backward to z (torch.utils.flop_counter) x rate; "
          f"{f1 / 1e9:.3f} GFLOP per image-iteration.")
    print(f"Ceiling: a 2048x2048 float32 matmul runs at {peak:.1f} GFLOP/s on {a.threads} thread(s); a batched "
          f"search at that rate would be {peak * 1e9 / f1 / rs:.1f}x the one-image loop.")

    B = a.ia_images
    z0 = torch.randn(B, G.nz)
    iagan_batched(G, task.op, y[:2], z0[:2], 1)
    iagan_loop(G, task.op, y[:1], z0[:1], 1)
    tib = iagan_batched(G, task.op, y[:B], z0, a.ia_iters, "bmm")
    tiv = iagan_batched(G, task.op, y[:B], z0, a.ia_iters, "vmap")
    til = iagan_loop(G, task.op, y[:B], z0, a.ia_iters)
    print(f"\n{'IAGAN (z + per-image theta)':<34}{'image-it/s':>12}{'ratio':>8}")
    print(f"{f'batched ({B} copies, bmm+fold)':<34}{B * a.ia_iters / tib:>12.2f}{til / tib:>8.2f}")
    print(f"{f'batched ({B} copies, vmap)':<34}{B * a.ia_iters / tiv:>12.2f}{til / tiv:>8.2f}")
    print(f"{f'loop over {B} images (G copies)':<34}{B * a.ia_iters / til:>12.2f}{1.0:>8.2f}")

    if a.demo:
        for p in G.parameters():
            p.requires_grad_(True)
        demo_timings(prior, microbatch=1)
        demo_timings(prior, microbatch=8)


if __name__ == "__main__":
    main()
