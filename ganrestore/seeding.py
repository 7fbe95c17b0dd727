"""Deterministic seeds that depend on *what* an image is, never on where it sits.

Every random draw (noise, masks, initialisations) for one image derives from
``(global seed, task, image id, purpose)`` through SHA-256, so a result does not
change when the shard size, the batch size or the order of images changes.
"""

from __future__ import annotations

import hashlib

import torch


def derive_seed(global_seed: int, *parts: object) -> int:
    """A 63-bit seed from the global seed and any number of identifying parts."""
    text = "|".join([str(int(global_seed))] + [str(p) for p in parts])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") & (2**63 - 1)


def image_seeds(global_seed: int, task: str, ids, purpose: str) -> list[int]:
    """One seed per image id."""
    return [derive_seed(global_seed, task, i, purpose) for i in ids]


def generator(seed: int, device="cpu") -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(int(seed))
    return g


def randn_per_image(seeds, shape, device="cpu", dtype=torch.float32) -> torch.Tensor:
    """Stack of standard normal draws, one independent stream per image seed.

    Drawn on the CPU so the numbers are the same on every device.
    """
    out = [torch.randn(tuple(shape), generator=generator(s), dtype=dtype) for s in seeds]
    if not out:
        return torch.empty((0,) + tuple(shape), dtype=dtype, device=device)
    return torch.stack(out).to(device)
