"""The official code's reading of Yeh et al. (moodoki/semantic_image_inpainting,
run by its ``runall.sh``), beside the slides' (seeds 000/001), which is the
default everywhere else.

The two differ before any method runs: the official corruptions go through
8-bit files written with ``scipy.misc.imsave``, which stretches each image's
own range to [0, 255], and the loss compares ``G(z)`` with a re-processed
target.  Each rule below cites the file of that repository (commit 83bcb87)
that it follows; a task named ``<task>_official`` (``ganrestore.tasks``) uses
them.

===================  ==========================================================  ===============================
task                 observation (what the code writes and the method loads)      the method's data term
===================  ==========================================================  ===============================
quantize5_official   ``floor(x8 / 55) * 55`` (``src/corrupt_image.py``             ``|G(z) - Q50(y)|``: the target
                     ``quantize``, factor 55; its float64 arithmetic and           re-quantised with step 50
                     ``astype(int)`` give levels 0, 54, 109, 164, 219),
                     then ``imsave``'s min-max stretch to [0, 255]                 (``src/quantize.py`` sets
                                                                                   ``quantize_factor = 50``;
                                                                                   ``src/model_quantize.py``
                                                                                   ``perform_corruption``)
denoise_sigma<s>     ``x8 / max(x8) + s N(0, 1)`` (``gaussian_noise``: the image    ``|G(z) - g(y)|``, ``g`` a
_official            divided by its own maximum), stretched by ``imsave``          Gaussian filter, sigma 0.1 px,
                                                                                   over rows, columns and channels
                                                                                   (``src/model_denoising.py``
                                                                                   ``preprocess``; ``denoising.py``
                                                                                   ``m.sigma = 0.1``)
sr<k>_official       ``imresize`` bilinear down by k and up by k of the 8-bit       ``|B(G(z)) - B(y)|``, ``B`` = TF
                     image (``sr_linear``: PIL's bilinear resampling)              ``resize_bilinear(align_corners=
                                                                                   True)`` down by k then up
                                                                                   (``src/model_superres.py``)
colorize_official    PIL's ``convert('L')`` of the 8-bit image (``helper.py``        ``|rgb_to_grayscale(G(z)) - y|``,
                     ``loadimage_gray``), rounded to 8 bits                         TF's luma weights 0.2989, 0.5870,
                                                                                   0.1140 (``src/model_colorize.py``)
inpaint_center<h>    the masked image, as the slides'                               the weighted mask (15 x 15
_official                                                                           window), as the slides'
===================  ==========================================================  ===============================

The official PSNR (``src/imgsnr.py``) divides each image by its own maximum
before the mean squared error: :func:`psnr_official`, reported beside the
standard PSNR where the official protocol runs.

The optimiser settings of the same scripts are the ``official`` profile of
``yeh`` (:data:`YEH_OFFICIAL`, ``method_params.yeh.profile: official`` in a
config): Nesterov momentum 0.9 (``model_base.py`` ``backprop_to_input``), z
clipped to [-1, 1] after each step, the DCGAN generator loss ``-log D(G(z))``
(``model_base.py`` ``build_restore_graph``: ``perceptual_loss = gl``) averaged
over the batch of 64 as the prior (``lambda_p / 64`` per image, no latent
prior), 1000 iterations, lr and ``lambda_p`` per task from the scripts'
argparse defaults: ``src/colorize.py`` 0.01 / 0.1, ``src/superres.py`` 1e-4 /
0.01, ``src/denoising.py`` 1e-4 / 0.03, ``src/quantize.py`` 1e-4 / 0.001, each
run by ``runall.sh`` with ``--nIter 1000 --blend``.  ``runall.sh`` runs no
inpainting, and the repository has two inpainting scripts:

* ``src/inpaint_test.py`` (defaults lr 0.01, ``lambda_p`` 0.1, ``nIter``
  1000): the ``official`` profile's inpainting row.  That script drives
  ``model_inpaint_test.py``, whose prior is a modified term
  ``(gl + log(1 - exp(gl))) p(z)``; the profile keeps ``model_base.py``'s
  ``gl`` (``d_prior: code``) with the script's numbers.
* ``src/inpaint.py`` (defaults lr 3e-4, ``lambda_p`` 0.2, ``nIter`` 3000; the
  CVPR 2017 application, ``model_inpaint.py`` on ``model_base.py``'s loss):
  the ``official_inpaint_py`` profile, identical to ``official`` for the other
  four families.

:func:`yeh_profile_of` says which of the two a run's settings are (the Yeh
table names it).  Not reproduced: the official code does not clip its
initial z (drawn from N(0, I)); ours is clipped from the start when
``z_clip`` is set.
"""

from __future__ import annotations

import math

import numpy as np
import torch

#: TF's rgb_to_grayscale weights (src/model_colorize.py)
TF_LUMA = (0.2989, 0.5870, 0.1140)

#: The official scripts' yeh settings per task family (their argparse defaults,
#: src/{inpaint,colorize,superres,denoising,quantize}.py; runall.sh: --nIter 1000 --blend)
_OFFICIAL_COMMON = {"optimizer": "momentum", "momentum": 0.9, "z_clip": 1.0, "d_prior": "code",
                    "z_prior": False, "iterations": 1000, "restarts": 1, "p": 1, "weighted_mask": True,
                    "mask_window": 15, "lr_schedule": "constant"}
YEH_OFFICIAL = {
    "inpaint": {**_OFFICIAL_COMMON, "lr": 0.01, "lambda": 0.1 / 64},          # src/inpaint_test.py
    "colorize": {**_OFFICIAL_COMMON, "lr": 0.01, "lambda": 0.1 / 64},         # src/colorize.py
    "sr": {**_OFFICIAL_COMMON, "lr": 1e-4, "lambda": 0.01 / 64},              # src/superres.py
    "denoise": {**_OFFICIAL_COMMON, "lr": 1e-4, "lambda": 0.03 / 64},         # src/denoising.py
    "quantize": {**_OFFICIAL_COMMON, "lr": 1e-4, "lambda": 0.001 / 64},       # src/quantize.py
}
#: The same, but inpainting as src/inpaint.py's defaults set it (lr 3e-4, lambda_p 0.2, nIter 3000)
YEH_OFFICIAL_INPAINT_PY = {
    **YEH_OFFICIAL,
    "inpaint": {**_OFFICIAL_COMMON, "lr": 3e-4, "lambda": 0.2 / 64, "iterations": 3000},
}
#: profile name -> (settings per task family, the official file each family's numbers come from)
YEH_PROFILES = {
    "official": (YEH_OFFICIAL, {"inpaint": "src/inpaint_test.py", "colorize": "src/colorize.py",
                                "sr": "src/superres.py", "denoise": "src/denoising.py",
                                "quantize": "src/quantize.py"}),
    "official_inpaint_py": (YEH_OFFICIAL_INPAINT_PY, {"inpaint": "src/inpaint.py", "colorize": "src/colorize.py",
                                                      "sr": "src/superres.py", "denoise": "src/denoising.py",
                                                      "quantize": "src/quantize.py"}),
}
#: the keys that tell the profiles apart (a run may change others, e.g. fewer iterations)
_PROFILE_KEYS = ("lr", "lambda", "optimizer", "d_prior", "z_prior")


def yeh_profile_of(cfg: dict, family: str) -> dict | None:
    """Which official profile ``cfg`` (the merged ``yeh`` settings of one task,
    e.g. ``pipeline.method_config`` of the effective config) runs for a task of
    ``family``: ``{"profile": name, "source": official file, "differs": {key:
    [profile's value, cfg's value]}}`` for the profile whose lr, lambda,
    optimizer, prior choices all equal cfg's (``differs`` lists its other keys
    that cfg changes, e.g. ``iterations`` on a short run), or None when no
    profile's are (the slides' settings or a tuned run).  Where two profiles
    agree for the family (every family but inpainting), the first, ``official``,
    is named."""
    from .methods.gan import PAPER

    merged = {**PAPER["yeh"], **(cfg or {})}
    for name, (table, sources) in YEH_PROFILES.items():
        prof = table.get(family)
        if prof is None:
            continue
        if all(_same(merged.get(k), prof[k]) for k in _PROFILE_KEYS):
            differs = {k: [v, merged.get(k)] for k, v in prof.items() if not _same(merged.get(k), v)}
            return {"profile": name, "source": sources[family], "differs": differs}
    return None


def _same(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=0.0)
    return a == b


# -- 8-bit helpers ------------------------------------------------------------------

def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [0, 1] -> (B, H, W, 3) uint8 (the test images are 8-bit to begin with)."""
    return np.clip(np.rint(x.detach().cpu().double().numpy() * 255.0), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)


def from_uint8(a: np.ndarray) -> torch.Tensor:
    """(B, H, W, C) uint8 -> (B, C, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)).astype(np.float32) / 255.0)


def bytescale(a: np.ndarray) -> np.ndarray:
    """``scipy.misc.imsave`` of a non-uint8 array (scipy <= 1.1 ``bytescale``):
    the image's own range stretched to [0, 255], rounded half up."""
    a = np.asarray(a, dtype=np.float64)
    cmin, cmax = a.min(), a.max()
    cscale = cmax - cmin if cmax != cmin else 1.0
    return (np.clip((a - cmin) * (255.0 / cscale), 0, 255) + 0.5).astype(np.uint8)


# -- observations ----------------------------------------------------------------------

def quantize_observation(x8: np.ndarray, factor: int = 55) -> np.ndarray:
    """``corrupt_image.quantize`` (same float64 operations) then ``imsave``'s stretch."""
    img = x8.astype(float) / 255.0
    img *= 255.0 / factor
    img = np.floor(img)
    img /= 255.0 / factor
    img *= 255.0
    return bytescale(img.astype(int))


def quantize_target(y: torch.Tensor, factor: int = 50) -> torch.Tensor:
    """``model_quantize.perform_corruption`` on the loaded image, in [0, 1] units."""
    s = 255.0 / factor
    return torch.floor(y.double() * s).div(s).to(y.dtype)


def noise_observation(x8: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """``corrupt_image.gaussian_noise``: ``x / max(x) + sigma N(0, 1)`` (float32
    image, float64 noise), then ``imsave``'s stretch."""
    i = x8.astype(np.float32)
    i = i / np.max(i)
    return bytescale(i + sigma * rng.standard_normal(size=x8.shape))


def denoise_target(y: torch.Tensor, sigma: float = 0.1) -> torch.Tensor:
    """``model_denoising.preprocess``: ``scipy.ndimage.gaussian_filter(image, 0.1)``
    of each (H, W, C) image (a linear filter that keeps constants, so it may act
    on [0, 1] images as on the code's [-1, 1] ones)."""
    from scipy.ndimage import gaussian_filter

    a = y.detach().cpu().double().numpy().transpose(0, 2, 3, 1)
    out = np.stack([gaussian_filter(im, sigma) for im in a]).transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(out)).to(y.dtype)


def sr_observation(x8: np.ndarray, factor: int) -> np.ndarray:
    """``corrupt_image.sr_linear``: ``scipy.misc.imresize`` (PIL bilinear) down
    by ``factor`` and up again, 8-bit in and out."""
    from PIL import Image

    out = []
    for im in x8:
        h, w = im.shape[:2]
        p = Image.fromarray(im).resize((w // factor, h // factor), Image.BILINEAR)
        out.append(np.asarray(p.resize((w, h), Image.BILINEAR)))
    return np.stack(out)


def gray_observation(x8: np.ndarray) -> np.ndarray:
    """``helper.loadimage_gray``: PIL's ``convert('L')`` (ITU-R 601-2, 8-bit), (B, H, W, 1)."""
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(im).convert("L"))[..., None] for im in x8])


def observe(task, x: torch.Tensor, noise_seeds) -> torch.Tensor:
    """The official observation of clean images ``x`` (B, 3, H, W) in [0, 1] for
    ``task`` (a ``<task>_official``), in [0, 1]; ``noise_seeds``: one per image."""
    x8 = to_uint8(x)
    fam = task.family
    if fam == "quantize":                 # imsave stretches each image on its own
        return from_uint8(np.stack([quantize_observation(im) for im in x8]))
    if fam == "denoise":
        return from_uint8(np.stack([noise_observation(im, task.sigma, np.random.default_rng(int(s)))
                                    for im, s in zip(x8, noise_seeds)]))
    if fam == "sr":
        return from_uint8(sr_observation(x8, int(task.extra["factor"])))
    if fam == "colorize":
        return from_uint8(gray_observation(x8))
    if fam == "inpaint":
        return task.op.A(from_uint8(x8))
    raise ValueError(f"task {task.name!r}: no official protocol for the {fam} family")


def target(task, y: torch.Tensor) -> torch.Tensor:
    """The measurement the methods see: the official loss target made from the observation."""
    fam = task.family
    if fam == "quantize":
        return quantize_target(y)
    if fam == "denoise":
        return denoise_target(y)
    if fam == "sr":
        return task.op.A(y)
    return y


# -- metric ------------------------------------------------------------------------------------

def psnr_official(x_hat, x) -> np.ndarray:
    """``src/imgsnr.py``: each image divided by its own maximum, then
    ``10 log10(1 / MSE)``; per image of (B, 3, H, W) batches."""
    a = np.asarray(x_hat.detach().cpu().double() if hasattr(x_hat, "detach") else x_hat, dtype=np.float64)
    b = np.asarray(x.detach().cpu().double() if hasattr(x, "detach") else x, dtype=np.float64)
    out = []
    for ai, bi in zip(a, b):
        ai = ai / max(float(ai.max()), 1e-12)
        bi = bi / max(float(bi.max()), 1e-12)
        mse = float(np.mean((ai - bi) ** 2))
        out.append(math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse))
    return np.asarray(out)


__all__ = ["YEH_OFFICIAL", "YEH_OFFICIAL_INPAINT_PY", "YEH_PROFILES", "yeh_profile_of", "TF_LUMA", "observe", "target", "psnr_official", "bytescale",
           "quantize_observation", "noise_observation", "sr_observation", "gray_observation"]
