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

Timings use a DCGAN with random weights (speed does not depend on the
weights) of the demo width (ngf = ndf = 32) unless ``--teacher``.

    .venv/bin/python benchmarks/bench_gan.py              # 1 + 2
    .venv/bin/python benchmarks/bench_gan.py --demo       # 3 as well
"""

from __future__ import annotations

import argparse
import copy
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

    z0 = initial_latents(seeds, R, G.nz)
    t0 = time.perf_counter()
    latent_search(G, z0, B, R, objective, iterations=iters, lr=0.1)
    return time.perf_counter() - t0


def csgm_sequential(G, op, y, seeds, R, iters):
    """One (image, restart) at a time; BestKeeper by comparing the loss each step."""
    z_all = initial_latents(seeds, R, G.nz)
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


def sgemm_gflops(n: int = 2048, reps: int = 10) -> float:
    """The dense float32 matmul rate of this machine (the most any batched step can reach)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
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
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
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
