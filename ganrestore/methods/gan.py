"""GAN-prior restoration: Yeh et al. (ICASSP 2018), CSGM, CSGM-BP, IAGAN, IAGAN-BP.

Every method works through the task's operator only (``op.A``,
``op.A_adjoint``, ``op.A_dagger``, ``op.pixel_mask()`` for the inpainting weights and blend), on
images in ``[0, 1]``; the generator maps ``z`` (B, 100) to ``[-1, 1]`` and
``to_unit`` converts.  All methods batch images x random restarts in one tensor
(see :mod:`ganrestore.methods.gan_core` for why images never interact) and keep
the best iterate per image (BestKeeper).

``yeh`` - Yeh, Lim, Chen, Schwing, Hasegawa-Johnson, Do, "Image Restoration
with Deep Generative Models", ICASSP 2018 (seeds 000/001)::

    z_hat = argmin_z || W (y - A G(z)) ||_p^p
                     + lambda ( log(1 - D(G(z))) - log D(G(z)) - log p_z(z) ),

where the slides' ``- log(D(G(z)) + log p_z(z))`` is read as
``-(log D + log p_z)`` (the MAP derivation ``log p_X = log D - log(1-D) +
log p_z + const``).  With the logit ``l`` of D, ``log(1-D) - log D = -l``
exactly (numerically safe); ``-log p_z(z) = ||z||^2 / 2 + const``.  The data
term is the per-image L1 sum (``p = 1``) in GAN units (residual ``2 (A x - y)``
in library units), as in the official code, with the weighted mask ``W`` of
Yeh et al. (CVPR 2017) for inpainting and ``W = 1`` otherwise.  ``x_hat =
G(z_hat)``.  ``d_prior: code`` uses the official code's generator loss
``-log D(G(z))`` instead.

``yeh_lambda0`` - ``yeh`` with ``lambda = 0``, the ablation of the prior term
(the data term alone; D is not evaluated), from the same per-image
initialisation as ``yeh`` (its seeds), so that the paired difference of the two
is the effect of the discriminator and z-prior terms.

``yeh_blend`` - ``yeh`` followed by the blending step of the paper: Poisson
blending into the observed pixels for inpainting, the HSV blend (hue and
saturation from G, value from the grey input) for colourisation.  **For the
other tasks (super-resolution, denoising, quantisation) the paper defines no
blend and ``yeh_blend`` returns ``yeh``'s images unchanged** (diagnostic
``blended = False``).

``csgm`` - Bora, Jalal, Price, Dimakis, ICML 2017 as run by IAGAN eq. (2):
``z_hat = argmin_z ||y - A G(z)||_2^2 (+ w ||z||^2)`` with Adam (lr 0.1),
restarts, and the iterate of lowest objective kept.

``csgm_bp``, ``iagan_bp`` - IAGAN eq. (9)-(10), back-projection onto
``{A x = y}``: ``x_bp = x_hat + A^dagger (y - A x_hat)``.

``iagan`` - IAGAN eq. (3): from CSGM's ``z_hat`` jointly optimise ``z`` and the
generator's weights per image (batched weight copies,
:mod:`ganrestore.methods.gan_iagan`), Adam lr 1e-4 for both, half the
iterations when the task is noisy.

Diagnostics per image: ``objective`` (the kept objective), ``iterations``,
``seconds`` (wall time of this method *including* the upstream methods it
starts from, per image; ``stage_seconds`` is this stage alone),
``restarts_used`` (restarts that stayed finite), ``diverged``,
``measurement`` (``||y - A x_hat||^2`` of the returned image, library units).
Extras: ``z`` (B, nz) and ``trace`` (B, T): the measurement loss of the chosen
restart every ``trace_every`` iterations (``trace_step`` holds the iteration
numbers).

Hyper-parameter defaults are the papers' / official code's (``PAPER``); the
``demo`` profile (``cfg['profile'] = 'demo'`` in the library; the workflow's
config writes the same keys instead, as its schema fills defaults) keeps
the CPU demo within minutes.  Sources:

* Yeh et al. official code (moodoki/semantic_image_inpainting, linked from the
  ICASSP slides): Nesterov momentum 0.9, lr 0.01, 1000 iterations,
  ``lambda_p = 0.1``, per-image L1 sum in [-1, 1] units, weighted mask with a
  15 x 15 window, z initialised N(0, I) and clipped to [-1, 1], one z per
  image.  The slides name Adam; we default to Adam (same lr) and keep the
  official momentum update as ``optimizer: momentum``.  Our priors are trained
  with z ~ N(0, I) (the official DCGAN used uniform z), so clipping is off by
  default (``z_clip: 1.0`` restores it).
* The same code's per-task scripts (``src/{inpaint,colorize,superres,denoising,
  quantize}.py``, run by its ``runall.sh`` with ``--nIter 1000 --blend``) use
  lr / lambda_p = 0.01 / 0.1 (inpainting, colourisation), 1e-4 / 0.01 (SR),
  1e-4 / 0.03 (denoising; the noisy input is first smoothed by a 0.1-pixel
  Gaussian) and 1e-4 / 0.001 (quantisation), all with the momentum update.
  Their prior term is the DCGAN generator loss averaged over the fixed batch
  of 64, so the per-image weight is lambda_p / 64 (``d_prior: code``,
  ``z_prior: false``, ``lambda: lambda_p / 64``, ``optimizer: momentum`` in
  ``per_task``).  On the demo prior's validation split (8 images, 1000
  iterations) those settings gave 14.2 / 13.5 / 19.2 / 21.2 / 20.2 dB against
  the defaults' 15.7 / 18.2 / 20.6 / 20.8 / 19.9 dB (inpaint / colorize / sr4 /
  denoise / quantize; ``scripts/compare_yeh_settings.py``), so the defaults
  were kept.
* CSGM code (AshishBora/csgm): Adam lr 0.1, 2 restarts x 500 iterations for the
  DCGAN, ``zprior_weight`` 0 (0.001 for "+Reg", ``quant_scripts/celebA_reconstruction.sh``).
  Its weight is not ours: ``src/celebA_estimators.py`` ``dcgan_estimator`` puts
  it beside the *mean* squared residual over the ``m`` measurements of images in
  [-1, 1] (``m_loss2_batch = reduce_mean((y - y_hat)^2, 1)``), ours beside the
  *sum* in [0, 1] units; the residual doubles in [-1, 1] units, so csgm's
  objective is ``(4/m) ||r||^2 + w ||z||^2 = (4/m) (||r||^2 + (w m / 4) ||z||^2)``
  and its 0.001 is our ``0.001 m / 4`` (``z_prior_units: csgm`` converts;
  :func:`csgm_z_prior_weight`).  IAGAN paper: CSGM with Adam
  lr 0.1 for 1600 (BEGAN) / 1800 (PGGAN) iterations; IAGAN code: 5 restarts,
  best final loss.
* IAGAN paper: IA stage Adam lr 1e-4 for z and theta (BEGAN; 1e-4 / 1e-3 for
  PGGAN), 600 iterations for CS, 500 for SR (BEGAN), half when noisy (``iterations: null``
  takes these per family); the kept iterate has the minimal objective.  With a
  PGAN prior, theta is by default what the official code adapts, ptrblck's
  parameterisation (weight, per-layer gain, unscaled bias:
  :func:`ganrestore.priors.pgan.official_parameterisation`); ``pgan_parameterisation:
  zoo`` adapts pytorch_GAN_zoo's (weight, bias scaled by the He constant, no gain).
* Back-projection (``csgm_bp``, ``iagan_bp``) applies to noiseless tasks only
  (IAGAN does not apply it when there is noise; the tables print n/a).
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from .. import blending
from ..priors import fold_batchnorm, to_unit
from . import register
from .base import Restoration
from .gan_core import (initial_latents, latent_search, measurement_loss, resolve_device,
                       resolve_params, back_project, trace_steps)
from .gan_iagan import image_adaptive

# -- hyper-parameters ----------------------------------------------------------

PAPER = {
    "yeh": {"lr": 0.01, "iterations": 1000, "restarts": 1, "lambda": 0.1, "p": 1,
            "optimizer": "adam", "momentum": 0.9, "z_clip": None, "d_prior": "paper",
            "z_prior": True, "weighted_mask": True, "mask_window": 15, "lr_schedule": "constant",
            "trace_every": 10},
    "yeh_blend": {},
    "csgm": {"lr": 0.1, "iterations": 1600, "restarts": 5, "z_prior_weight": 0.0, "z_prior_units": "ours",
             "optimizer": "adam", "lr_schedule": "constant", "trace_every": 10},
    "csgm_bp": {"clip": True},
    "iagan": {"lr_z": 1e-4, "lr_theta": 1e-4, "iterations": None, "halve_if_noisy": True,
              "batched_mode": "auto", "trace_every": 10, "pgan_parameterisation": "official"},
    "iagan_bp": {"clip": True},
}

# The CPU demo (8 images x 5 tasks, prior ngf = ndf = 32, 2 cores): about 25 CPU-seconds
# per task for all six methods together (benchmarks/bench_gan.py --demo).  Yeh's Adam lr is
# raised to 0.1 for the short run (0.05 and 0.1 measured; 0.1 was slightly better on sr4,
# colorize and denoise of the demo set).
PROFILES = {
    "demo": {
        "yeh": {"lr": 0.1, "iterations": 150, "restarts": 2},
        "csgm": {"iterations": 150, "restarts": 2},
        "iagan": {"iterations": 60, "lr_z": 1e-4, "lr_theta": 1e-4},
    },
}


def _params(name, cfg):
    profs = {k: v.get(name, {}) for k, v in PROFILES.items()}
    return resolve_params(name, cfg, PAPER[name], profs)


def _setup(y, op, prior, cfg):
    if prior is None or prior.G is None:
        raise ValueError("GAN methods need a prior (generator)")
    dev = resolve_device(cfg, prior)
    G = prior.G.to(dev).eval()
    D = prior.D.to(dev).eval() if prior.D is not None else None
    if hasattr(op, "to"):
        op = op.to(dev)
    return dev, G, D, op, y.to(dev).float()


def _trace_steps_array(B, iterations, every):
    return np.tile(np.asarray(trace_steps(iterations, every), np.int64), (B, 1))


def _finish(x_unit, y, op, res, seconds, extras, stage_seconds, clip=True, **diag_extra):
    B = x_unit.shape[0]
    x = x_unit.clamp(0, 1) if clip else x_unit
    with torch.no_grad():
        meas = measurement_loss(op, torch.nan_to_num(x), y).cpu().numpy().astype(np.float64)
    diverged = np.asarray(res["diverged"], bool)
    meas[diverged] = np.nan
    diag = {"objective": res["objective"], "iterations": np.full(B, res["iterations"], np.int64),
            "start_objective": np.asarray(res.get("start_objective", np.full(B, np.nan)), np.float64),
            "seconds": np.full(B, seconds), "stage_seconds": np.full(B, stage_seconds),
            "restarts_used": res["restarts_used"], "diverged": diverged, "measurement": meas}
    diag.update(diag_extra)
    return Restoration(x.detach().cpu(), diag, extras)


def _upstream_seconds(upstream, B):
    if upstream is None:
        return np.zeros(B)
    return np.nan_to_num(np.asarray(upstream.diagnostics.get("seconds", np.zeros(B)), np.float64))


# -- CSGM ----------------------------------------------------------------------

def measurements_per_image(op, y: torch.Tensor) -> int:
    """``m``, the measurements of one image: the entries of ``y[0]``, or for a
    pixel-mask operator with holes (inpainting: ``y`` keeps the image's shape,
    zeros in the hole) the observed pixels times the channels."""
    mask = None if op.is_identity else op.pixel_mask()
    if mask is not None:
        return int(round(float((mask > 0).sum()))) * int(y.shape[1])
    return int(y[0].numel())


def csgm_z_prior_weight(weight: float, units: str, m: int) -> float:
    """The weight of ``||z||^2`` beside our data term ``||y - A x||^2`` (sum,
    [0, 1] units) for a configured ``weight`` in ``units``: ``'ours'`` as it is;
    ``'csgm'`` = AshishBora/csgm's ``zprior_weight`` (``src/celebA_estimators.py``:
    beside the mean squared residual over ``m`` measurements in [-1, 1] units),
    converted as ``weight * m / 4`` (the two objectives then differ by the
    factor ``m / 4`` only, so they have the same minimisers)."""
    if units == "ours":
        return float(weight)
    if units == "csgm":
        return float(weight) * int(m) / 4.0
    raise ValueError(f"csgm: z_prior_units must be 'ours' or 'csgm', got {units!r}")


@register("csgm", needs_prior=True, gpu=True, block=16)
def restore_csgm(y, op, prior, cfg, seeds, upstream=None, task=None):
    """CSGM: argmin_z ||y - A G(z)||^2 (+ w||z||^2), Adam, restarts, BestKeeper (IAGAN eq. 2)."""
    p = _params("csgm", cfg)
    dev, G, _, op, y = _setup(y, op, prior, p)
    G = fold_batchnorm(G)                               # z-only search: frozen, BN folded
    B, R = y.shape[0], int(p["restarts"])
    z0 = initial_latents(seeds, R, prior.nz, prior.z_dist).to(dev)
    yr = y.repeat_interleave(R, 0)
    w = csgm_z_prior_weight(float(p["z_prior_weight"]), p["z_prior_units"], measurements_per_image(op, y))

    def objective(x_gan, z):
        meas = measurement_loss(op, to_unit(x_gan), yr)
        return (meas + w * z.pow(2).sum(1) if w else meas), meas

    r = latent_search(G, z0, B, R, objective, iterations=int(p["iterations"]), lr=float(p["lr"]),
                      optimizer=p["optimizer"], trace_every=int(p["trace_every"]),
                      lr_schedule=p["lr_schedule"])
    extras = {"z": r.z.cpu().numpy().astype(np.float32), "trace": r.trace,
              "trace_step": _trace_steps_array(B, r.iterations, int(p["trace_every"]))}
    return _finish(to_unit(r.x_gan), y, op, r.__dict__, r.seconds / B, extras, r.seconds / B)


#: IAGAN's iterations per task family with BEGAN (paper, "Compressed sensing" and
#: "Super-resolution" sections): 600 for compressed sensing, 500 otherwise.
IAGAN_ITERATIONS = {"cs_gaussian": 600, "cs_fourier": 600}
IAGAN_ITERATIONS_DEFAULT = 500


def iagan_iterations(configured, task) -> int:
    """The configured iterations, or the paper's for the task's family (``None``)."""
    if configured is not None:
        return int(configured)
    return IAGAN_ITERATIONS.get(getattr(task, "family", ""), IAGAN_ITERATIONS_DEFAULT)


def planned_iterations(method: str, cfg: dict, task) -> int | None:
    """The optimiser steps ``method`` will run on ``task`` under ``cfg`` (the
    workflow's merged parameters), as its restore function decides them: IAGAN's
    per-family default and halving on noisy tasks included; None for a method
    without iterations.  The figure captions use this instead of repeating the rules."""
    if method not in PAPER or "iterations" not in PAPER[method]:
        n = (cfg or {}).get("iterations")
        return int(n) if n is not None else None
    p = _params(method, cfg)
    if method == "iagan":
        n = iagan_iterations(p["iterations"], task)
        return n // 2 if (getattr(task, "noisy", False) and p["halve_if_noisy"]) else n
    return int(p["iterations"])


def noiseless(task) -> bool:
    """Back-projection is applied to noiseless tasks only (IAGAN: "due to the
    noise we do not apply the BP post-processing"); the tables print n/a."""
    return task is None or not getattr(task, "noisy", False)


# -- back-projection -----------------------------------------------------------

def _bp(name, y, op, prior, cfg, upstream):
    if upstream is None:
        raise ValueError(f"{name} needs the upstream restoration")
    p = _params(name, cfg)
    t0 = time.perf_counter()
    dev = resolve_device(p, prior)
    if hasattr(op, "to"):
        op = op.to(dev)
    y = y.to(dev).float()
    x = upstream.x_hat.to(dev).float()
    B = x.shape[0]
    bad = np.asarray(upstream.diagnostics["diverged"], bool) | ~torch.isfinite(x.flatten(1)).all(1).cpu().numpy()
    x = torch.nan_to_num(x)
    with torch.no_grad():
        x_bp = back_project(x, y, op)
        rel = ((op.A(x_bp) - y).flatten(1).norm(dim=1) / y.flatten(1).norm(dim=1).clamp_min(1e-12)).cpu().numpy()
    x_bp[torch.from_numpy(bad).to(dev)] = float("nan")
    sec = (time.perf_counter() - t0) / B
    extras = {k: np.asarray(v) for k, v in upstream.extras.items()}
    res = {"objective": np.full(B, np.nan), "iterations": 0, "diverged": bad,
           "restarts_used": upstream.diagnostics.get("restarts_used", np.ones(B, np.int64))}
    out = _finish(x_bp, y, op, res, _upstream_seconds(upstream, B) + sec, extras, sec,
                  clip=bool(p["clip"]), bp_residual=rel)
    out.diagnostics["objective"] = out.diagnostics["measurement"].copy()
    return out


@register("csgm_bp", needs_prior=True, upstream="csgm", applies=noiseless)
def restore_csgm_bp(y, op, prior, cfg, seeds, upstream=None, task=None):
    """CSGM-BP: back-projection of CSGM's image, x + A^dagger (y - A x) (IAGAN eq. 10)."""
    return _bp("csgm_bp", y, op, prior, cfg, upstream)


@register("iagan_bp", needs_prior=True, upstream="iagan", applies=noiseless)
def restore_iagan_bp(y, op, prior, cfg, seeds, upstream=None, task=None):
    """IAGAN-BP: back-projection of IAGAN's image, x + A^dagger (y - A x) (IAGAN eq. 10)."""
    return _bp("iagan_bp", y, op, prior, cfg, upstream)


# -- IAGAN ---------------------------------------------------------------------

@register("iagan", needs_prior=True, upstream="csgm", gpu=True)
def restore_iagan(y, op, prior, cfg, seeds, upstream=None, task=None):
    """IAGAN: joint image-adaptive optimisation of z and per-image generator weights (eq. 3)."""
    if upstream is None or "z" not in upstream.extras:
        raise ValueError("iagan starts from CSGM: pass csgm's Restoration (with extras['z']) as upstream")
    p = _params("iagan", cfg)
    dev, G, _, op, y = _setup(y, op, prior, p)
    B = y.shape[0]
    iters = iagan_iterations(p["iterations"], task)
    noisy = bool(getattr(task, "noisy", False))
    if noisy and p["halve_if_noisy"]:
        iters = iters // 2
    z0 = torch.as_tensor(np.asarray(upstream.extras["z"]), dtype=torch.float32, device=dev)
    skip = torch.as_tensor(np.asarray(upstream.diagnostics["diverged"], bool)) | ~torch.isfinite(z0).all(1).cpu()
    G, param_kind = _ia_parameterisation(G, p["pgan_parameterisation"])
    r = image_adaptive(G, z0, y, op, iterations=iters, lr_z=float(p["lr_z"]),
                       lr_theta=float(p["lr_theta"]), trace_every=int(p["trace_every"]), skip=skip,
                       mode=p["batched_mode"])
    extras = {"z": r.z.cpu().numpy().astype(np.float32), "trace": r.trace,
              "trace_step": _trace_steps_array(B, r.iterations, int(p["trace_every"]))}
    sec = r.seconds / B
    return _finish(to_unit(r.x_gan), y, op, r.__dict__, _upstream_seconds(upstream, B) + sec, extras, sec,
                   noisy_halved=np.full(B, noisy and bool(p["halve_if_noisy"])),
                   parameterisation=np.full(B, param_kind))


def _ia_parameterisation(G, kind: str):
    """The generator whose parameters the IA stage adapts, and its label: for a
    PGAN, ``official`` = :func:`~ganrestore.priors.pgan.official_parameterisation`
    (IAGAN's ptrblck model: weight, per-layer gain, unscaled bias), ``zoo`` =
    pytorch_GAN_zoo's equalized layers as converted; other generators have one
    parameterisation ('native')."""
    from ..priors.pgan import PGAN_PARAMETERISATIONS, PGANGenerator, official_parameterisation

    if kind not in PGAN_PARAMETERISATIONS:
        raise ValueError(f"iagan: pgan_parameterisation must be one of {', '.join(PGAN_PARAMETERISATIONS)}, "
                         f"got {kind!r}")
    if not isinstance(G, PGANGenerator):
        return G, "native"
    return (official_parameterisation(G), "official") if kind == "official" else (G, "zoo")


# -- Yeh et al. ----------------------------------------------------------------

def _yeh_weights(op, p, y):
    # a pixel mask with holes (inpainting); not the identity's all-ones mask, nor a
    # Fourier operator's frequency mask
    mask = None if op.is_identity else op.pixel_mask()
    if mask is None or not p["weighted_mask"]:
        return None
    w = blending.weighted_mask(mask, int(p["mask_window"])).to(y.device)
    return w[None, None]


@register("yeh", needs_prior=True, gpu=True, block=16)
def restore_yeh(y, op, prior, cfg, seeds, upstream=None, task=None):
    """Yeh et al. 2018: argmin_z ||W(y - A G(z))||_p^p + lambda (log(1-D) - log D - log p_z), x = G(z)."""
    p = _params("yeh", cfg)
    dev, G, D, op, y = _setup(y, op, prior, p)
    G = fold_batchnorm(G)                               # z-only search: frozen, BN folded
    if D is not None:
        prior.check_discriminator("yeh")   # BEGAN's auto-encoder D is refused
    D = fold_batchnorm(D) if D is not None else None
    B, R = y.shape[0], int(p["restarts"])
    z0 = initial_latents(seeds, R, prior.nz, prior.z_dist).to(dev)
    yr = y.repeat_interleave(R, 0)
    W = _yeh_weights(op, p, y)
    lam, pw = float(p["lambda"]), float(p["p"])
    if p["d_prior"] not in ("paper", "code"):
        raise ValueError("d_prior must be 'paper' (log(1-D) - log D) or 'code' (-log D)")
    use_d = D is not None and lam != 0

    def objective(x_gan, z):
        ax = op.A(to_unit(x_gan))
        r = 2.0 * (ax - yr)                             # residual in GAN units ([-1, 1] images)
        if W is not None:
            r = r * W
        data = r.abs().pow(pw).flatten(1).sum(1) if pw != 1 else r.abs().flatten(1).sum(1)
        prior_term = torch.zeros_like(data)
        if use_d:
            logit = D(x_gan).reshape(-1)
            prior_term = prior_term + (-logit if p["d_prior"] == "paper" else F.softplus(-logit))
        if p["z_prior"]:
            prior_term = prior_term + 0.5 * z.pow(2).sum(1)
        meas = (ax - yr).flatten(1).pow(2).sum(1)
        return data + lam * prior_term, meas

    r = latent_search(G, z0, B, R, objective, iterations=int(p["iterations"]), lr=float(p["lr"]),
                      optimizer=p["optimizer"], momentum=float(p["momentum"]),
                      z_clip=p["z_clip"], trace_every=int(p["trace_every"]),
                      lr_schedule=p["lr_schedule"])
    extras = {"z": r.z.cpu().numpy().astype(np.float32), "trace": r.trace,
              "trace_step": _trace_steps_array(B, r.iterations, int(p["trace_every"]))}
    return _finish(to_unit(r.x_gan), y, op, r.__dict__, r.seconds / B, extras, r.seconds / B,
                   d_prior_used=np.full(B, use_d))


@register("yeh_lambda0", needs_prior=True, gpu=True, block=16, seeds_of="yeh")
def restore_yeh_lambda0(y, op, prior, cfg, seeds, upstream=None, task=None):
    """Yeh et al. with lambda = 0: the ablation of the prior term (data term alone, no D, no z prior)."""
    p = dict(cfg or {})
    if p.get("lambda", 0.0) not in (0, 0.0):
        raise ValueError(f"yeh_lambda0 runs with lambda = 0 (got lambda = {p['lambda']}); use yeh for other values")
    p["lambda"] = 0.0
    res = restore_yeh(y, op, prior, p, seeds, upstream=upstream, task=task)
    res.diagnostics["lambda"] = np.zeros(y.shape[0])
    return res


@register("yeh_blend", needs_prior=True, upstream="yeh")
def restore_yeh_blend(y, op, prior, cfg, seeds, upstream=None, task=None):
    """Yeh et al. + blending: Poisson (inpainting), HSV value swap (colourisation); = yeh elsewhere."""
    if upstream is None:
        raise ValueError("yeh_blend needs yeh's restoration as upstream")
    _params("yeh_blend", cfg)
    t0 = time.perf_counter()
    x = upstream.x_hat.detach().cpu().float()
    B = x.shape[0]
    bad = np.asarray(upstream.diagnostics["diverged"], bool) | ~torch.isfinite(x.flatten(1)).all(1).numpy()
    xs = torch.nan_to_num(x)
    yc = y.detach().cpu().float()
    family = getattr(task, "family", "")
    mask = None if op.is_identity else op.pixel_mask()
    if mask is not None and family in ("inpaint", ""):
        m = mask.detach().cpu().float()
        out, kind = blending.poisson_blend(yc * m, xs, m), "poisson"
    elif family == "colorize" or (not family and yc.shape[1] == 1):
        out, kind = blending.hsv_blend(yc, xs), "hsv"
    else:
        out, kind = xs.clone(), "none"
    out[torch.from_numpy(bad)] = float("nan")
    out = out.to(y.device)
    sec = (time.perf_counter() - t0) / B
    diag_keys = ("objective", "iterations", "restarts_used")
    res = {k: upstream.diagnostics[k] for k in diag_keys}
    res["iterations"] = int(np.asarray(res["iterations"]).max()) if B else 0
    res["diverged"] = bad
    extras = {k: np.asarray(v) for k, v in upstream.extras.items()}
    return _finish(out, y.float(), op, res,
                   _upstream_seconds(upstream, B) + sec, extras, sec,
                   blended=np.full(B, kind != "none"))
