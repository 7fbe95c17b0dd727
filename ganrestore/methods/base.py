"""The method interface shared by every restoration method."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

DIAGNOSTIC_KEYS = ("objective", "iterations", "seconds", "restarts_used", "diverged")


@dataclass
class Restoration:
    """What a method returns for a batch of B images.

    ``x_hat``: (B, 3, H, W) float32 in [0, 1] (NaN rows where ``diverged``).
    ``diagnostics``: per-image arrays of length B, at least
    ``objective, iterations, seconds, restarts_used, diverged``.
    ``extras``: other per-image arrays (e.g. the latent ``z`` of GAN methods,
    optimisation traces) saved with the artifact so downstream methods
    (back-projection, IAGAN from CSGM's z) can start from them.
    """

    x_hat: torch.Tensor
    diagnostics: dict = field(default_factory=dict)
    extras: dict = field(default_factory=dict)

    def __post_init__(self):
        B = self.x_hat.shape[0]
        d = {k: np.asarray(v) for k, v in self.diagnostics.items()}
        d.setdefault("objective", np.full(B, np.nan))
        d.setdefault("iterations", np.zeros(B, dtype=np.int64))
        d.setdefault("seconds", np.zeros(B))
        d.setdefault("restarts_used", np.ones(B, dtype=np.int64))
        bad = ~torch.isfinite(self.x_hat.flatten(1)).all(1).cpu().numpy()
        d["diverged"] = np.asarray(d.get("diverged", np.zeros(B, bool)), bool) | bad
        for k, v in d.items():
            if v.shape[:1] != (B,):
                raise ValueError(f"diagnostic {k!r} has shape {v.shape}, expected ({B}, ...)")
        self.diagnostics = d
        if self.x_hat.dim() != 4 or self.x_hat.shape[1] != 3:
            raise ValueError(f"x_hat must be (B,3,H,W), got {tuple(self.x_hat.shape)}")
        # never hand a diverged image on as if it were a result
        if d["diverged"].any():
            self.x_hat = self.x_hat.clone()
            self.x_hat[torch.from_numpy(d["diverged"])] = float("nan")

    @staticmethod
    def concat(parts: list["Restoration"]) -> "Restoration":
        x = torch.cat([p.x_hat for p in parts])
        keys = parts[0].diagnostics.keys()
        diag = {k: np.concatenate([p.diagnostics[k] for p in parts]) for k in keys}
        ekeys = parts[0].extras.keys()
        extras = {k: np.concatenate([np.asarray(p.extras[k]) for p in parts]) for k in ekeys}
        return Restoration(x, diag, extras)
