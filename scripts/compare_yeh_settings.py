"""Yeh et al. with this project's defaults against the official code's per-task settings.

The official ICASSP 2018 code (moodoki/semantic_image_inpainting) runs every
task with the Nesterov momentum update, 1000 iterations and per-task
lr / lambda_p (see ``ganrestore.methods.gan``'s docstring); its prior term is
the generator loss averaged over a batch of 64, i.e. ``lambda_p / 64`` per
image.  This script restores the *validation* images (never the test split)
with both settings (and the official one with z clipped to [-1, 1]) and prints
the mean PSNR per task, so the choice of defaults can be checked on any prior.

    .venv/bin/python scripts/compare_yeh_settings.py \\
        --val results/demo/data/val.npz \\
        --prior ganrestore/priors/checkpoints/demo_dcgan32

Run by hand (about two minutes per task on 2 CPU cores with the demo prior).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio

from ganrestore.methods import get_method
from ganrestore.priors import load_prior
from ganrestore.tasks import corrupt, make_task

# official code: src/<task>.py argparse defaults (lr, lambda_p)
OFFICIAL = {"inpaint": (0.01, 0.1), "colorize": (0.01, 0.1), "sr": (1e-4, 0.01),
            "denoise": (1e-4, 0.03), "quantize": (1e-4, 0.001)}
TASKS = ["inpaint_center32", "colorize", "sr4", "denoise_sigma0.1", "quantize5"]


def settings(family: str, iterations: int) -> dict:
    lr, lam_p = OFFICIAL[family]
    official = {"iterations": iterations, "optimizer": "momentum", "lr": lr, "lambda": lam_p / 64,
                "d_prior": "code", "z_prior": False}
    return {"default": {"iterations": iterations}, "official": official,
            "official+clip": {**official, "z_clip": 1.0}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--val", required=True, help="validation split (.npz with images, ids)")
    ap.add_argument("--prior", required=True, help="prior checkpoint stem (or teacher:gan-face-generate)")
    ap.add_argument("--iterations", type=int, default=1000)
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    d = np.load(a.val)
    x = torch.from_numpy(d["images"]).permute(0, 3, 1, 2).float() / 255.0
    ids = [str(i) for i in d["ids"]]
    prior = load_prior(a.prior)
    restore = get_method("yeh").fn
    print(f"mean PSNR (dB) over {len(ids)} validation images, {a.iterations} iterations")
    for name in a.tasks.split(","):
        task = make_task(name, x.shape[-1])
        y = corrupt(x, task, ids, 0)
        cells = []
        for label, cfg in settings(task.family, a.iterations).items():
            t0 = time.perf_counter()
            out = restore(y, task.op, prior, cfg, list(range(len(ids))), task=task).x_hat.numpy()
            p = np.mean([peak_signal_noise_ratio(x[i].numpy(), out[i], data_range=1.0) for i in range(len(ids))])
            cells.append(f"{label}: {p:.2f} ({time.perf_counter() - t0:.0f} s)")
        print(f"{name:<18} " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
