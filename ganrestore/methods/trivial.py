"""Trivial baselines: the observation itself, and bicubic interpolation for SR."""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from . import register
from .base import Restoration


def _timed(x_hat, t0, B, objective=None):
    sec = (time.perf_counter() - t0) / max(B, 1)
    # clipped row by row (a non-finite entry stays as it is, for flag_failures to see)
    return Restoration(torch.where(torch.isfinite(x_hat), x_hat.clamp(0, 1), x_hat),
                       {"seconds": np.full(B, sec), "iterations": np.zeros(B, np.int64),
                        "objective": np.zeros(B) if objective is None else objective})


@register("input")
def restore_input(y, op, prior, cfg, seeds, upstream=None, task=None):
    """The observation as an image: ``A_input(y)`` (the pseudo-inverse, or the grey
    image for colourisation), clipped to [0, 1]."""
    t0 = time.perf_counter()
    return _timed(op.A_input(y), t0, y.shape[0])


@register("bicubic", applies=lambda task: getattr(task, "family", "") == "sr")
def restore_bicubic(y, op, prior, cfg, seeds, upstream=None, task=None):
    """Bicubic upsampling of the low-resolution observation (SR tasks only)."""
    t0 = time.perf_counter()
    factor = getattr(op, "factor", None)
    if factor is None:
        raise ValueError("bicubic applies only to super-resolution operators")
    x = F.interpolate(y, scale_factor=factor, mode="bicubic", align_corners=False)
    return _timed(x, t0, y.shape[0])
