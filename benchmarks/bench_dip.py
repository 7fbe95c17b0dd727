"""Throughput of batched Deep Image Prior, measured side by side in one run.

1. Image-iterations per second of the batched path (``B`` images' networks in
   one grouped forward/backward: ``run_method(..., microbatch=B)``) against a
   per-image loop (one network per call: ``microbatch=1``, the workflow's
   default and what the official notebooks do), same settings, 64 px images,
   sr4, for the demo width (16) and the official width (128).
2. ``--demo``: seconds per image of the demo's settings (``config/config.yaml``'s
   ``dip`` block = the library's ``demo`` profile) on each demo task, one image
   per call, one thread (the restore rule's ``threads: 1``).

Prints only; no timing is asserted anywhere.

    .venv/bin/python benchmarks/bench_dip.py                 # 1
    .venv/bin/python benchmarks/bench_dip.py --demo          # 1 + 2
    .venv/bin/python benchmarks/bench_dip.py --device cuda --batch 16 --widths 128
"""

from __future__ import annotations

import argparse
import time

import torch

import ganrestore.methods.dip as dip  # noqa: F401  (registers "dip")
from ganrestore.methods import run_method
from ganrestore.tasks import corrupt, make_task

DEMO_TASKS = ["inpaint_center32", "colorize", "sr4", "denoise_sigma0.1", "quantize5"]


def images(n: int, size: int = 64) -> torch.Tensor:
    """Smooth random colour images (speed does not depend on the content)."""
    g = torch.Generator().manual_seed(0)
    low = torch.rand((n, 3, 8, 8), generator=g)
    return torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)


def timed(fn, sync) -> float:
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t0


def throughput(args, sync):
    task = make_task("sr4", 64)
    ids = [str(i) for i in range(args.batch)]
    y = corrupt(images(args.batch), task, ids, global_seed=0)
    seeds = list(range(args.batch))
    print(f"1. image-iterations/s, sr4 64 px, B = {args.batch}, {torch.get_num_threads()} thread(s), "
          f"device {args.device}")
    print(f"   {'width':>5} {'iters':>5} {'batched':>10} {'per-image':>10} {'ratio':>6}")
    for width in args.widths:
        iters = args.iters if args.iters else (30 if width <= 32 else 5)
        cfg = {"iterations": iters, "skip_n33d": width, "skip_n33u": width, "device": args.device}
        warm = dict(cfg, iterations=1)
        run_method("dip", y, task.op, None, warm, seeds, task=task, microbatch=args.batch)
        run_method("dip", y[:1], task.op, None, warm, seeds[:1], task=task, microbatch=1)
        tb = timed(lambda: run_method("dip", y, task.op, None, cfg, seeds, task=task, microbatch=args.batch), sync)
        tl = timed(lambda: run_method("dip", y, task.op, None, cfg, seeds, task=task, microbatch=1), sync)
        n = args.batch * iters
        print(f"   {width:>5} {iters:>5} {n / tb:>10.1f} {n / tl:>10.1f} {tl / tb:>5.2f}x")


def demo(args, sync):
    ids = [str(i) for i in range(args.demo_images)]
    x = images(args.demo_images)
    print(f"2. demo settings (profile 'demo'), {args.demo_images} image(s) per task, one per call, "
          f"{torch.get_num_threads()} thread(s)")
    total = 0.0
    for name in DEMO_TASKS:
        task = make_task(name, 64)
        y = corrupt(x, task, ids, global_seed=0)
        p = dip.settings({"profile": "demo"}, task)
        t = timed(lambda: run_method("dip", y, task.op, None, {"profile": "demo", "device": args.device},
                                     list(range(len(ids))), task=task), sync)
        total += t
        print(f"   {name:<18} {t / len(ids):6.2f} s/image  ({p['steps']} steps, row {p['row']}, "
              f"skip_n11 {p['skip_n11']})")
    per = total / (len(ids) * len(DEMO_TASKS))
    print(f"   mean {per:.2f} s/image -> the demo's {len(DEMO_TASKS)} tasks x 8 images: "
          f"{per * 8 * len(DEMO_TASKS):.0f} CPU-s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--iters", type=int, default=0, help="iterations per timing (0: 30 at width <= 32, else 5)")
    ap.add_argument("--widths", type=lambda s: [int(v) for v in s.split(",")], default=[16, 128])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--demo", action="store_true", help="also time the demo settings per task")
    ap.add_argument("--demo-images", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    throughput(args, sync)
    if args.demo:
        demo(args, sync)


if __name__ == "__main__":
    main()
