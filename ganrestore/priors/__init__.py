"""GAN priors: architectures, the offline teacher generator, checkpoints, training.

A :class:`Prior` is what GAN-prior methods receive: the generator ``G`` (and the
discriminator ``D`` when the checkpoint has one), both in eval mode, on
``device``.  Images leave ``G`` in ``[-1, 1]``; methods map to ``[0, 1]`` with
:func:`to_unit`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .dcgan import Discriminator, Generator, fold_batchnorm, load_teacher_generator, to_gan, to_unit


def default_device() -> torch.device:
    """CUDA when present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class Prior:
    G: Generator
    D: Discriminator | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    provenance: dict = field(default_factory=dict)

    @property
    def nz(self) -> int:
        return self.G.nz

    def to(self, device) -> "Prior":
        device = torch.device(device)
        self.G = self.G.to(device).eval()
        if self.D is not None:
            self.D = self.D.to(device).eval()
        self.device = device
        return self


__all__ = ["Generator", "Discriminator", "Prior", "load_teacher_generator", "fold_batchnorm", "default_device",
           "to_gan", "to_unit"]

from .checkpoint import TEACHER_SPEC, load_prior, save_prior  # noqa: E402  (needs Prior above)

__all__ += ["load_prior", "save_prior", "TEACHER_SPEC"]
