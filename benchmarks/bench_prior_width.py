"""Why the demo prior is narrow: G+D cost per image-iteration, ngf=ndf=32 vs the standard 64.

GAN-prior methods (Yeh et al. 2018, CSGM, IAGAN) spend their time in forward +
backward passes of G (and D for Yeh et al.) with respect to z.  This measures,
side by side in one run, image-iterations per second of that inner step for the
two widths, plus one DCGAN training step, and prints the ratios.

    .venv/bin/python benchmarks/bench_prior_width.py [--threads 1] [--batch 64] [--reps 5]
"""

import argparse
import time

import torch

from ganrestore.priors import Discriminator, Generator


def _time(fn, reps):
    fn()  # warm-up
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t) / reps


def inner_step(G, D, batch):
    z = torch.randn(batch, G.nz, requires_grad=True)

    def f():
        x = G(z)
        loss = (x ** 2).mean() + torch.nn.functional.softplus(-D(x)).mean()
        (g,) = torch.autograd.grad(loss, z)
        return g
    return f


def train_step_fn(G, D, batch):
    from ganrestore.priors.train import train_step

    oG = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
    oD = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
    real = torch.rand(batch, 3, 64, 64) * 2 - 1
    return lambda: train_step(G, D, oG, oD, real, torch.randn(batch, G.nz))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--reps", type=int, default=5)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    res = {}
    for w in (32, 64):
        G, D = Generator(ngf=w).eval(), Discriminator(ndf=w).eval()
        for q in list(G.parameters()) + list(D.parameters()):
            q.requires_grad_(False)
        t_inner = _time(inner_step(G, D, a.batch), a.reps)
        G, D = Generator(ngf=w).train(), Discriminator(ndf=w).train()
        t_train = _time(train_step_fn(G, D, a.batch), a.reps)
        res[w] = (a.batch / t_inner, t_train)
        print(f"width {w}: inner z-step {a.batch / t_inner:8.1f} image-it/s; "
              f"training step (batch {a.batch}) {t_train:.3f} s")
    print(f"speed-up of width 32 over 64: inner z-step x{res[32][0] / res[64][0]:.2f}, "
          f"training step x{res[64][1] / res[32][1]:.2f}  (threads={a.threads})")


if __name__ == "__main__":
    main()
