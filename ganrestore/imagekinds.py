"""Image kinds: real photographs vs faces in the generator's range.

A test split may hold two kinds of image (:mod:`ganrestore.data.demo`):

* ``real``: a photograph, outside the range of the GAN prior (its representation
  error ``E_rep(G, x) = min_z ||G(z) - x||`` is unknown and, for real faces,
  large: IAGAN, arXiv 1906.05284, Introduction and Theorem 1);
* ``in_range``: an output ``x = G(z)`` of the prior itself, so ``E_rep = 0`` up
  to the uint8 quantisation of the stored image.

The definition is generic: an image is in range exactly when its split stores a
finite latent for it (a ``z`` array with one row per image; real photographs
have NaN rows).  A split without ``z`` (CelebA, CelebA-HQ, a photo folder) is
all real.  The papers test on real CelebA faces, so the paper tables and the
papers' claims use the real images; the in-range ones are reported beside them.

:func:`summarize_images` computes the aggregates of one (task, method) from
per-image values (the keys of ``metrics/<task>/<method>.json``), used for all
images together and once per kind.

>>> import numpy as np
>>> image_kinds({"ids": np.array(["a", "b"]), "z": np.array([[np.nan, np.nan], [0.1, 0.2]])})
['real', 'in_range']
>>> image_kinds({"ids": np.array(["a", "b"])})
['real', 'real']
"""

from __future__ import annotations

import math

import numpy as np

REAL, IN_RANGE = "real", "in_range"
#: the kinds in the order every table lists them
KINDS = (REAL, IN_RANGE)
#: how tables and figures name them
KIND_LABELS = {REAL: "real photos", IN_RANGE: "in-range faces", "all": "all faces"}


def image_kinds(split: dict) -> list[str]:
    """The kind of each image of a split (``{"ids", "z"?}`` as the split ``.npz``
    stores it): ``in_range`` where ``z`` has a finite row, else ``real``."""
    ids = list(split["ids"])
    z = split.get("z")
    if z is None:
        return [REAL] * len(ids)
    z = np.asarray(z, dtype=np.float64)
    if z.shape[0] != len(ids):
        raise ValueError(f"split: 'z' has {z.shape[0]} rows for {len(ids)} images")
    finite = np.isfinite(z.reshape(len(ids), -1)).all(axis=1) if z.size else np.zeros(len(ids), bool)
    return [IN_RANGE if f else REAL for f in finite]


def summarize_images(values: dict, seconds, n_failed: int) -> dict:
    """Aggregates of one (task, method) over a set of images.

    ``values``: metric name -> per-image values (NaN where the restoration
    failed); ``seconds``: per-image restore seconds (NaN where unknown).  For each
    metric ``<m>_mean``, ``<m>_std`` and ``<m>_ci95`` (:func:`ganrestore.metrics.summarize`:
    the half-width of the 95% t interval), plus ``n``, ``n_failed``,
    ``psnr_of_mean_mse`` (IAGAN's convention, 10 log10(1 / mean MSE)) and
    ``seconds_per_image``.
    """
    from .metrics import psnr_of_mean_mse, summarize  # noqa: PLC0415

    n = len(next(iter(values.values()))) if values else 0
    agg = {"n": n, "n_failed": int(n_failed)}
    for m, v in values.items():
        s = summarize(v)
        agg.update({f"{m}_mean": s["mean"], f"{m}_std": s["std"], f"{m}_ci95": s["ci95"]})
    mses = np.asarray(values.get("mse", []), float)
    agg["psnr_of_mean_mse"] = psnr_of_mean_mse(mses[np.isfinite(mses)]) if np.isfinite(mses).any() else math.nan
    sec = np.asarray(seconds, float)
    agg["seconds_per_image"] = float(np.nanmean(sec)) if np.isfinite(sec).any() else math.nan
    return agg


def kinds_aggregates(rows: list[dict], metric_names, kinds: list[str]) -> dict:
    """``{kind: aggregates}`` for each kind present among ``rows`` (the per-image
    rows of one (task, method), in order), by :func:`summarize_images`."""
    out = {}
    for kind in KINDS:
        sel = [r for r, k in zip(rows, kinds) if k == kind]
        if sel:
            out[kind] = summarize_images({m: [r[m] for r in sel] for m in metric_names},
                                         [r.get("seconds", math.nan) for r in sel],
                                         sum(bool(r["diverged"]) for r in sel))
    return out
