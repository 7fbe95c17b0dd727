"""Shared machinery of the GAN-prior methods: batched latent search, BestKeeper,
back-projection, per-image seeding of restarts.

Batching.  ``B`` images with ``R`` random restarts each are optimised as one
tensor of ``N = B * R`` latents, image-major (row ``b * R + r``).  The
objective is a sum of per-row objectives, the generator and discriminator are
in eval mode (batch-norm running statistics, so no row sees another), and Adam
and (Nesterov) momentum act element-wise: the gradient and the update of row
``i`` depend on row ``i`` alone, so an image's result does not depend on its
batch-mates or on the batch size (up to floating-point reassociation inside
batched convolutions).

BestKeeper (csgm's ``utils.BestKeeper``; IAGAN's "the z with minimal objective
along the iterations").  Every row's objective is evaluated at every iterate
``z_0 .. z_T``; per row the iterate with the lowest objective is kept (its
latent, its image and its measurement loss), and per image the restart with the
lowest kept objective wins.

Divergence.  A row whose objective or gradient becomes NaN/inf is dropped at
once: it stops contributing to the loss, its gradient is zeroed, and it can no
longer be selected.  An image with no surviving restart is flagged
``diverged`` (its ``x_hat`` row becomes NaN in :class:`Restoration`).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..priors import to_unit
from ..seeding import derive_seed, randn_per_image

log = logging.getLogger("ganrestore")

# keys every GAN method understands besides its own hyper-parameters
COMMON_KEYS = {"device", "profile", "extra_inputs", "trace_every", "clip", "description"}


def resolve_params(name: str, cfg: dict | None, defaults: dict, profiles: dict) -> dict:
    """``defaults`` (the paper's), then ``profiles[cfg['profile']]``, then ``cfg``.

    Unknown keys are refused (``ValueError`` naming them): a misspelt key must
    not run the paper's default silently.
    """
    cfg = dict(cfg or {})
    prof = cfg.get("profile")
    params = dict(defaults)
    if prof is not None:
        if prof not in profiles:
            raise ValueError(f"{name}: unknown profile {prof!r}; known: {sorted(profiles)}")
        params.update(profiles[prof])
    params.update(cfg)
    unknown = set(cfg) - set(defaults) - COMMON_KEYS
    if unknown:
        raise ValueError(f"{name}: unknown config keys {sorted(unknown)}; known: {sorted(set(defaults) | COMMON_KEYS)}")
    return params


def resolve_device(cfg: dict, prior) -> torch.device:
    dev = cfg.get("device")
    if dev:
        return torch.device(dev)
    if prior is not None and getattr(prior, "device", None) is not None:
        return torch.device(prior.device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def initial_latents(seeds, restarts: int, nz: int, dist: str = "normal") -> torch.Tensor:
    """``(B * R, nz)`` latents from the prior's distribution (``Prior.z_dist``:
    standard normal, or uniform in [-1, 1] for BEGAN), image-major; restart ``r``
    of the image with seed ``s`` is drawn from ``derive_seed(s, "restart", r)`` only."""
    from ..priors import latents_per_image

    seeds_ = [derive_seed(int(s), "restart", r) for s in seeds for r in range(restarts)]
    if dist == "normal":
        return randn_per_image(seeds_, (nz,))
    return latents_per_image(seeds_, nz, dist)


def measurement_loss(op, x_unit: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``||y - A x||_2^2`` per image (library units), shape ``(N,)``."""
    return (op.A(x_unit) - y).flatten(1).pow(2).sum(1)


@dataclass
class SearchResult:
    """Per-image result of a batched search (``B`` rows)."""
    z: torch.Tensor            # (B, nz) latent of the kept iterate (NaN rows if diverged)
    x_gan: torch.Tensor        # (B, 3, H, W) image of the kept iterate, GAN range
    objective: np.ndarray      # (B,) kept objective
    start_objective: np.ndarray  # (B,) objective at the start (best restart at t = 0)
    measurement: np.ndarray    # (B,) ||y - A x||^2 of the kept iterate
    trace: np.ndarray          # (B, T') measurement loss of the chosen restart every k iterations
    restarts_used: np.ndarray  # (B,) restarts that survived (finite throughout)
    diverged: np.ndarray       # (B,) no restart survived
    iterations: int
    seconds: float


def trace_steps(iterations: int, every: int) -> list[int]:
    every = max(1, int(every))
    steps = list(range(0, iterations + 1, every))
    if steps[-1] != iterations:
        steps.append(iterations)
    return steps


class BestKeeper:
    """Per-row best iterate along the iterations (csgm's BestKeeper, per row)."""

    def __init__(self, N: int, device):
        self.obj = torch.full((N,), math.inf, device=device)
        self.meas = torch.full((N,), math.inf, device=device)
        self.alive = torch.ones(N, dtype=torch.bool, device=device)
        self.z = None
        self.x = None

    def report(self, obj: torch.Tensor, meas: torch.Tensor, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Record iterate values; kill rows with non-finite values; returns ``alive``."""
        obj, meas = obj.detach(), meas.detach()
        finite = torch.isfinite(obj) & torch.isfinite(meas)
        self.alive &= finite
        better = self.alive & (obj < self.obj)
        if self.z is None:
            self.z = torch.zeros_like(z.detach())
            self.x = torch.zeros_like(x.detach())
        self.obj = torch.where(better, obj, self.obj)
        self.meas = torch.where(better, meas, self.meas)
        self.z[better] = z.detach()[better]
        self.x[better] = x.detach()[better]
        return self.alive

    def kill(self, rows: torch.Tensor) -> None:
        self.alive &= ~rows

    def select(self, B: int, R: int):
        """Per image, the surviving restart with the lowest kept objective."""
        obj = torch.where(self.alive, self.obj, torch.full_like(self.obj, math.inf)).view(B, R)
        best_r = obj.argmin(1)
        rows = torch.arange(B, device=obj.device) * R + best_r
        used = self.alive.view(B, R).sum(1)
        diverged = ~torch.isfinite(obj.gather(1, best_r[:, None])[:, 0])
        return rows, used, diverged


def _make_optimizer(tensors, lr, optimizer: str, momentum: float, betas=(0.9, 0.999)):
    if optimizer == "adam":
        return torch.optim.Adam(tensors, lr=lr, betas=tuple(betas))
    if optimizer == "momentum":
        # Yeh et al.'s update v <- mu v - lr g;  z <- z - mu v_prev + (1 + mu) v
        # is Nesterov momentum in Sutskever's form, i.e. torch's SGD(nesterov=True).
        return torch.optim.SGD(tensors, lr=lr, momentum=momentum, nesterov=True)
    raise ValueError(f"unknown optimizer {optimizer!r} (adam | momentum)")


def lr_factor(schedule: str, t: int, iterations: int) -> float:
    """Learning-rate multiplier at step ``t``: ``constant`` (the papers), ``cosine``
    (annealed to 0 over the run), ``csgm_decay`` (csgm's ``decay_lr``: x0.7 every 50 steps)."""
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t / max(iterations, 1)))
    if schedule == "csgm_decay":
        return 0.7 ** (t // 50)
    raise ValueError(f"unknown lr_schedule {schedule!r} (constant | cosine | csgm_decay)")


def latent_search(G, z0: torch.Tensor, B: int, R: int, objective_fn, *, iterations: int, lr: float,
                  optimizer: str = "adam", momentum: float = 0.9, z_clip: float | None = None,
                  trace_every: int = 10, lr_schedule: str = "constant") -> SearchResult:
    """Minimise ``objective_fn`` over the latents of ``B`` images x ``R`` restarts.

    ``objective_fn(x_gan, z) -> (objective, measurement)``, both ``(N,)``; the
    sum of the per-row objectives is minimised (rows do not interact).
    ``z_clip``: project ``z`` onto ``[-c, c]`` after every step (Yeh et al.).
    """
    t0 = time.perf_counter()
    N = z0.shape[0]
    if N != B * R:
        raise ValueError(f"z0 has {N} rows, expected {B} x {R}")
    z = z0.clone()
    if z_clip:
        z.clamp_(-z_clip, z_clip)
    z.requires_grad_(True)
    opt = _make_optimizer([z], lr, optimizer, momentum)
    keep = BestKeeper(N, z.device)
    steps = trace_steps(iterations, trace_every)
    trace = torch.full((N, len(steps)), math.nan, device=z.device)
    k = 0
    for t in range(iterations + 1):
        last = t == iterations
        with torch.set_grad_enabled(not last):
            x = G(z)
            obj, meas = objective_fn(x, z)
        alive = keep.report(obj, meas, z, x)
        if t == 0:
            start = obj.detach().clone()
        if k < len(steps) and steps[k] == t:
            trace[:, k] = torch.where(alive, meas.detach(), torch.full_like(meas.detach(), math.nan))
            k += 1
        if last:
            break
        total = torch.where(alive, obj, torch.zeros_like(obj)).sum()
        (grad,) = torch.autograd.grad(total, [z])
        bad = ~torch.isfinite(grad).all(1)
        if bad.any():
            keep.kill(bad)
        grad = torch.where(keep.alive[:, None], grad, torch.zeros_like(grad))
        z.grad = grad
        for group in opt.param_groups:
            group["lr"] = lr * lr_factor(lr_schedule, t, iterations)
        opt.step()
        if z_clip:
            with torch.no_grad():
                z.clamp_(-z_clip, z_clip)
    rows, used, diverged = keep.select(B, R)
    zb, xb = keep.z[rows].clone(), keep.x[rows].clone()
    zb[diverged] = math.nan
    xb[diverged] = math.nan
    tr = trace[rows]
    start = torch.where(torch.isfinite(start), start, torch.full_like(start, math.inf)).view(B, R).amin(1)
    return SearchResult(
        z=zb, x_gan=xb,
        objective=keep.obj[rows].cpu().numpy().astype(np.float64),
        start_objective=start.cpu().numpy().astype(np.float64),
        measurement=keep.meas[rows].cpu().numpy().astype(np.float64),
        trace=tr.cpu().numpy().astype(np.float32),
        restarts_used=used.cpu().numpy().astype(np.int64),
        diverged=diverged.cpu().numpy(),
        iterations=iterations, seconds=time.perf_counter() - t0)


def back_project(x_hat: torch.Tensor, y: torch.Tensor, op) -> torch.Tensor:
    """IAGAN eq. (10): ``x_bp = x_hat + A^dagger (y - A x_hat)``, the closest point
    to ``x_hat`` on ``{x : A x = y}`` (eq. 9).  ``A^dagger`` is the operator's
    (closed form where one exists, conjugate gradients otherwise)."""
    return x_hat + op.A_dagger(y - op.A(x_hat))


def images_unit(x_gan: torch.Tensor) -> torch.Tensor:
    return to_unit(x_gan)


__all__ = ["initial_latents", "latent_search", "BestKeeper", "SearchResult", "back_project",
           "measurement_loss", "resolve_params", "resolve_device", "trace_steps", "lr_factor"]
