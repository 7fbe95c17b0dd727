"""How well a prior's discriminator separates images from G(z): ROC AUC and mean scores.

Yeh et al.'s prior term ``log(1 - D(G(z))) - log D(G(z)) = -logit`` carries
information only if D scores images the generator does not make differently
from G(z).  :func:`discriminator_separation` measures that for three kinds of
"positives" against samples of the prior's G (latents from the check's seed):

``teacher``
    Held-out faces of the ``gan-face-generate`` teacher (latents from a seed
    no training run uses), 8-bit, against G(z) rounded to 8 bits the same way:
    for a D trained against the frozen teacher both are the same
    distribution, so the expected AUC is 0.5 -- its deviation from 0.5 is what
    D learned beyond its data.
``photos``
    Real face photographs (the experiment's test and validation splits, the
    rows its manifest marks ``real``), 8-bit, against 8-bit G(z): whether D
    knows real photographs from the generator's faces -- what the prior term
    would need to pull a restoration towards realism.
``quantisation``
    The same G(z) rounded to 8 bits against unrounded: AUC far from 0.5 means
    D reacts to 8-bit rounding, a difference that carries no meaning (the
    pitfall of presenting real images 8-bit and fakes as floats in training);
    with the paired statistics (:func:`paired_difference`: mean score
    difference of each G(z) rounded minus unrounded, its interval, the
    fraction of images the rounding raises), more sensitive than the AUC.

The score is D's raw output, oriented so that higher = "more real" for every
kind (:data:`ganrestore.priors.D_KINDS`): the logit, the critic value or the
relativistic score; minus the reconstruction loss for BEGAN's auto-encoder.
AUC = P(score(positive) > score(G(z))) + P(tie) / 2 (Hanley & McNeil 1982,
``sklearn.metrics.roc_auc_score``), with a 95% percentile interval from
bootstrap resampling of both sets (stratified; 2000 resamples, seeded).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from . import latents, to_gan, to_unit


@torch.no_grad()
def d_scores(D, x_gan: torch.Tensor, batch: int = 128) -> np.ndarray:
    """D's output per image, higher = more real (minus the energy for an auto-encoder D)."""
    dev = next(D.parameters()).device
    kind = getattr(D, "d_kind", "logit")
    out = []
    for i in range(0, x_gan.shape[0], batch):
        xb = x_gan[i:i + batch].to(dev).float()
        if kind == "autoencoder":
            out.append(-D.energy(xb).float().cpu())
        else:
            s = D(xb)
            out.append((s[:, 0] if s.dim() == 2 else s.reshape(xb.shape[0], -1)[:, 0]).float().cpu())
    return torch.cat(out).numpy().astype(np.float64) if out else np.zeros(0)


def auc_summary(pos: np.ndarray, neg: np.ndarray, seed: int = 0, n_boot: int = 2000) -> dict:
    """ROC AUC of ``pos`` (label 1) against ``neg`` (label 0), its bootstrap 95% interval, means, SDs, n."""
    from sklearn.metrics import roc_auc_score

    pos, neg = np.asarray(pos, np.float64), np.asarray(neg, np.float64)
    out = {"n_pos": int(pos.size), "n_neg": int(neg.size),
           "mean_score_pos": float(pos.mean()) if pos.size else None,
           "mean_score_neg": float(neg.mean()) if neg.size else None,
           "sd_score_pos": float(pos.std(ddof=1)) if pos.size > 1 else None,
           "sd_score_neg": float(neg.std(ddof=1)) if neg.size > 1 else None}
    if not pos.size or not neg.size:
        out.update({"auc": None, "auc_ci95": None})
        return out
    y = np.r_[np.ones(pos.size), np.zeros(neg.size)]
    out["auc"] = float(roc_auc_score(y, np.r_[pos, neg]))
    # bootstrap: a resample is a multiplicity vector per set, and its AUC is
    # c_pos^T M c_neg / (n_pos n_neg) with M_ij = [pos_i > neg_j] + [pos_i = neg_j] / 2
    M = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    rng = np.random.default_rng(seed)
    c_pos = rng.multinomial(pos.size, np.full(pos.size, 1.0 / pos.size), size=n_boot)
    c_neg = rng.multinomial(neg.size, np.full(neg.size, 1.0 / neg.size), size=n_boot)
    boots = ((c_pos @ M) * c_neg).sum(1) / (pos.size * neg.size)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    out["auc_ci95"] = [float(lo), float(hi)]
    return out


def paired_difference(d: np.ndarray, seed: int = 0, n_boot: int = 2000) -> dict:
    """Mean of paired score differences (the same image two ways), its bootstrap 95% interval
    and the fraction of pairs above zero: more sensitive than the AUC of the two sets when
    the pairs' differences are small against the spread between images."""
    d = np.asarray(d, np.float64)
    if not d.size:
        return {"paired_mean_diff": None, "paired_diff_ci95": None, "frac_pairs_pos_higher": None}
    rng = np.random.default_rng(seed)
    c = rng.multinomial(d.size, np.full(d.size, 1.0 / d.size), size=n_boot)
    lo, hi = np.percentile(c @ d / d.size, [2.5, 97.5])
    return {"paired_mean_diff": float(d.mean()), "paired_diff_ci95": [float(lo), float(hi)],
            "frac_pairs_pos_higher": float((d > 0).mean())}


def real_photos(manifest_csv, splits: dict) -> tuple[torch.Tensor, list[str], str]:
    """The real photographs of prepared splits: ``(uint8 (N,3,S,S), ids, note)``.

    ``splits`` maps a split name to its ``.npz`` (``images`` (N,S,S,3) uint8,
    ``ids``).  Rows of the manifest with ``kind`` = ``real`` are kept (the demo
    marks its generated faces ``generated``); a manifest without a ``kind``
    column describes photographs only (CelebA, a folder), so all are kept.
    """
    from ..io import load_artifact

    with open(manifest_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    has_kind = bool(rows) and "kind" in rows[0]
    keep = {r["id"] for r in rows if not has_kind or r.get("kind") == "real"}
    images, ids, counts = [], [], {}
    for name, path in splits.items():
        if path is None or not Path(path).is_file():
            continue
        d = load_artifact(path)
        sel = [i for i, k in enumerate(d["ids"]) if str(k) in keep]
        counts[name] = len(sel)
        if sel:
            images.append(torch.from_numpy(np.ascontiguousarray(d["images"][sel])).permute(0, 3, 1, 2))
            ids += [str(d["ids"][i]) for i in sel]
    x = torch.cat(images) if images else torch.zeros(0, 3, 1, 1, dtype=torch.uint8)
    what = "manifest kind 'real'" if has_kind else "every image (the manifest has no 'kind' column)"
    note = ", ".join(f"{n} from {k}" for k, n in counts.items()) + f" ({what}, {Path(manifest_csv).name})"
    return x, ids, note


def _sized(x01: torch.Tensor, size: int) -> torch.Tensor:
    if x01.shape[-1] == size:
        return x01
    return F.interpolate(x01, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=x01.shape[-1] > size).clamp(0, 1)


@torch.no_grad()
def discriminator_separation(D, G, teacher_u8: torch.Tensor | None, photos_u8: torch.Tensor | None,
                             n_fake: int = 256, seed: int = 0, batch: int = 64) -> dict:
    """The three comparisons of the module docstring (each :func:`auc_summary`) for D against G(z).

    ``teacher_u8`` / ``photos_u8``: (N,3,S,S) uint8 (resized bilinearly to G's
    size when they differ); ``n_fake`` samples of G from latents of ``seed``.
    Both networks as they are (use eval mode, as the restoration methods do).
    """
    dev = next(D.parameters()).device
    size = int(getattr(G, "image_size", 64))
    z = latents(n_fake, G.nz, getattr(G, "z_dist", "normal"), torch.Generator().manual_seed(seed))
    fake_f = torch.cat([G(z[i:i + batch].to(dev)).float().cpu() for i in range(0, n_fake, batch)])
    fake01 = to_unit(fake_f).clamp(0, 1)
    fake_u8 = to_gan(torch.round(fake01 * 255) / 255)
    s_fake_u8, s_fake_f = d_scores(D, fake_u8), d_scores(D, fake_f)
    out = {"n_fake": n_fake, "fake_latent_seed": seed, "score": "D's raw output, higher = more real",
           "quantisation": {**auc_summary(s_fake_u8, s_fake_f, seed + 3), **paired_difference(
               s_fake_u8 - s_fake_f, seed + 4), "pos": "G(z) rounded to 8 bits", "neg": "the same G(z), float"}}
    for name, imgs, what in (("teacher", teacher_u8, "held-out teacher faces, 8-bit"),
                             ("photos", photos_u8, "real face photographs, 8-bit")):
        if imgs is None or not imgs.shape[0]:
            out[name] = {"auc": None, "note": "none available", "pos": what}
            continue
        x = to_gan(_sized(imgs.float() / 255.0, size))
        out[name] = {**auc_summary(d_scores(D, x), s_fake_u8, seed + (1 if name == "teacher" else 2)),
                     "pos": what, "neg": "G(z) rounded to 8 bits"}
    return out
