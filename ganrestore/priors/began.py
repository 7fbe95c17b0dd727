"""BEGAN: the generator and the auto-encoder discriminator (Berthelot, Schumm &
Metz, "BEGAN: Boundary Equilibrium Generative Adversarial Networks", arXiv
1703.10717, 2017), at the variant IAGAN's CelebA prior uses (Abu Hussein,
Tirer & Giryes, arXiv 1906.05284: 128x128 CelebA faces, ``z`` uniform in
``[-1, 1]^64``).

Architecture (the paper's Fig. 1, as carpedm20/BEGAN-tensorflow ``models.py``
builds it; read there, written here):

``G`` (and the decoder of ``D``, same layout, own weights)
    ``z`` (B, nz) -> fully connected to ``n x 8 x 8`` (no activation), then
    ``r = log2(size) - 2`` blocks of two 3x3 convolutions of ``n`` channels
    with ELU, a nearest-neighbour 2x upsampling between blocks, and a last 3x3
    convolution to 3 channels **without** an output non-linearity (images are
    trained in ``[-1, 1]``; ``G``'s output is not clipped).
``D`` = encoder + decoder, an auto-encoder
    3x3 convolution to ``n`` channels (ELU); block ``i = 1..r``: two 3x3
    convolutions to ``i n`` channels (ELU), then, except after the last block,
    a stride-2 3x3 convolution (ELU) that halves the side; a fully connected
    layer from ``r n x 8 x 8`` to the ``nz``-dimensional embedding (no
    activation); the decoder maps it back to an image.
    ``D(x)`` is the reconstruction; its loss ``L(x) = mean |x - D(x)|``
    (the paper's eq. with eta = 1) is what BEGAN trains on
    (:func:`ganrestore.priors.train.began_step`).

Sizes: ``size`` is a power of two >= 8 (128 for IAGAN; carpedm20 uses
``n = 128``, ``nz = 64``).  Initialisation as TF-slim's defaults (Glorot
uniform weights, zero biases), :func:`began_init_`.  Differences from the TF
code that do not change the model class: PyTorch's symmetric padding of the
stride-2 convolutions (TF's SAME pads bottom/right only) and NCHW flattening
order before the fully connected layers.

``D`` is not a classifier: it has no probability of "real" for Yeh et al.'s
prior term (see :meth:`ganrestore.priors.Prior.check_discriminator`).

>>> G = BEGANGenerator(nz=64, n=8, image_size=32).eval()
>>> G(torch.zeros(2, 64)).shape
torch.Size([2, 3, 32, 32])
>>> D = BEGANDiscriminator(n=8, nz=64, image_size=32).eval()
>>> D(torch.zeros(2, 3, 32, 32)).shape, D.energy(torch.zeros(2, 3, 32, 32)).shape
(torch.Size([2, 3, 32, 32]), torch.Size([2]))
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def _repeats(image_size: int) -> int:
    s = int(image_size)
    if s < 8 or s & (s - 1):
        raise ValueError(f"BEGAN image_size must be a power of two >= 8, got {image_size}")
    return int(math.log2(s)) - 2


class _Decoder(nn.Module):
    """``h`` (B, nz) -> fc -> n x 8 x 8 -> r blocks (2 conv + ELU, 2x nearest up between) -> conv to nc."""

    def __init__(self, nz: int, n: int, image_size: int, nc: int):
        super().__init__()
        self.n, self.r = n, _repeats(image_size)
        self.fc = nn.Linear(nz, n * 8 * 8)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(n, n, 3, 1, 1), nn.ELU(), nn.Conv2d(n, n, 3, 1, 1), nn.ELU())
            for _ in range(self.r))
        self.out = nn.Conv2d(n, nc, 3, 1, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        x = self.fc(h.reshape(h.shape[0], -1)).view(h.shape[0], self.n, 8, 8)
        for i, blk in enumerate(self.blocks):
            x = blk(x)
            if i < self.r - 1:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.out(x)


class BEGANGenerator(nn.Module):
    """BEGAN generator: ``z`` in ``[-1, 1]^nz`` (uniform) -> 3 x size x size image, about ``[-1, 1]``.

    Accepts ``z`` of shape ``(B, nz)`` or ``(B, nz, 1, 1)``.
    """

    z_dist = "uniform"

    def __init__(self, nz: int = 64, n: int = 128, image_size: int = 128, nc: int = 3):
        super().__init__()
        self.nz, self.n, self.image_size, self.nc = nz, n, image_size, nc
        self.dec = _Decoder(nz, n, image_size, nc)

    def arch(self) -> dict:
        return {"name": "began_generator", "nz": self.nz, "n": self.n, "image_size": self.image_size,
                "nc": self.nc}

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.dec(z)


class BEGANDiscriminator(nn.Module):
    """BEGAN's auto-encoder discriminator: ``D(x)`` is the reconstruction of ``x`` (same shape).

    :meth:`energy` is the per-image reconstruction loss ``mean |x - D(x)|``
    (BEGAN's ``L(v)`` with eta = 1), the quantity BEGAN's losses are built on.
    """

    d_kind = "autoencoder"

    def __init__(self, n: int = 128, nz: int = 64, image_size: int = 128, nc: int = 3):
        super().__init__()
        self.n, self.nz, self.image_size, self.nc = n, nz, image_size, nc
        r = _repeats(image_size)
        layers, prev = [nn.Conv2d(nc, n, 3, 1, 1), nn.ELU()], n
        for i in range(r):
            ch = n * (i + 1)
            layers += [nn.Conv2d(prev, ch, 3, 1, 1), nn.ELU(), nn.Conv2d(ch, ch, 3, 1, 1), nn.ELU()]
            if i < r - 1:
                layers += [nn.Conv2d(ch, ch, 3, 2, 1), nn.ELU()]
            prev = ch
        self.enc = nn.Sequential(*layers)
        self.enc_fc = nn.Linear(prev * 8 * 8, nz)
        self.dec = _Decoder(nz, n, image_size, nc)

    def arch(self) -> dict:
        return {"name": "began_discriminator", "n": self.n, "nz": self.nz, "image_size": self.image_size,
                "nc": self.nc}

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.enc_fc(self.enc(x).flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dec(self.encode(x))

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        """Per-image reconstruction loss ``mean |x - D(x)|`` (B,), in GAN units."""
        return (self(x) - x).abs().flatten(1).mean(1)


def began_init_(m: nn.Module) -> None:
    """TF-slim's defaults, as carpedm20/BEGAN-tensorflow trains with: Glorot-uniform
    weights of convolutions and fully connected layers, zero biases."""
    if isinstance(m, (nn.Conv2d, nn.Linear)):
        nn.init.xavier_uniform_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


__all__ = ["BEGANGenerator", "BEGANDiscriminator", "began_init_"]
