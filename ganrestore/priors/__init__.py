"""GAN priors: architectures, the offline teacher generator, checkpoints, training.

A :class:`Prior` is what GAN-prior methods receive: the generator ``G`` (and the
discriminator ``D`` when the checkpoint has one), both in eval mode, on
``device``.  Images leave ``G`` in ``[-1, 1]``; methods map to ``[0, 1]`` with
:func:`to_unit`.  ``G`` is one of the project's architectures: the DCGAN-64
(:mod:`.dcgan`), BEGAN (:mod:`.began`, uniform latents), the PGAN of
pytorch_GAN_zoo (:mod:`.pgan`) or a plugin's.  The prior carries its latent
distribution (:attr:`Prior.z_dist`: ``"normal"`` = N(0, I), ``"uniform"`` =
U[-1, 1]^nz, from ``G.z_dist``) and what its discriminator outputs
(:attr:`Prior.d_kind`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .dcgan import Discriminator, Generator, fold_batchnorm, load_teacher_generator, to_gan, to_unit


def default_device() -> torch.device:
    """CUDA when present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


#: Latent distributions a generator may declare (``G.z_dist``; absent = "normal").
Z_DISTS = ("normal", "uniform")


def latents(n: int, nz: int, dist: str = "normal", generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` latents of size ``nz``: ``"normal"`` N(0, I) or ``"uniform"`` U[-1, 1]^nz (BEGAN)."""
    if dist == "normal":
        return torch.randn(n, nz, generator=generator)
    if dist == "uniform":
        return torch.rand(n, nz, generator=generator) * 2.0 - 1.0
    raise ValueError(f"unknown latent distribution {dist!r}; known: {Z_DISTS}")


def latents_per_image(seeds, nz: int, dist: str = "normal") -> torch.Tensor:
    """One latent per seed, each from its own CPU stream (the same numbers on every
    device); ``"normal"`` is exactly :func:`ganrestore.seeding.randn_per_image`."""
    from ..seeding import generator, randn_per_image

    if dist == "normal":
        return randn_per_image(list(seeds), (nz,))
    out = [latents(1, nz, dist, generator(s))[0] for s in seeds]
    return torch.stack(out) if out else torch.empty(0, nz)


#: What a discriminator outputs, and whether Yeh et al.'s prior term can use it.
D_KINDS = {
    "logit": "a logit of P(real) (cross-entropy GAN): Yeh et al.'s log(1 - D) - log D = -logit",
    "critic": "a Wasserstein critic value (WGAN-GP; higher = more real, unbounded): used as the logit",
    "relativistic": "a relativistic score C (RSGAN; sigmoid(C(x_r) - C(x_f)) = P(x_r more real than x_f), "
                    "C itself defined up to a constant): used as the logit",
    "autoencoder": "an auto-encoder's reconstruction (BEGAN): no probability of 'real'",
}


@dataclass
class Prior:
    G: Generator
    D: Discriminator | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    provenance: dict = field(default_factory=dict)

    @property
    def nz(self) -> int:
        return self.G.nz

    @property
    def z_dist(self) -> str:
        """The latent distribution G was trained with: ``"normal"`` or ``"uniform"`` ([-1, 1])."""
        return getattr(self.G, "z_dist", "normal")

    @property
    def d_kind(self) -> str | None:
        """What ``D`` outputs (:data:`D_KINDS`); ``None`` without a discriminator."""
        return None if self.D is None else getattr(self.D, "d_kind", "logit")

    def check_discriminator(self, method: str = "yeh") -> None:
        """Refuse a discriminator that is not a per-image realism score.

        Yeh et al.'s prior term ``log(1 - D(G(z))) - log D(G(z))`` needs ``D`` =
        the probability that its input is real, which the cross-entropy GAN's
        optimal discriminator is (Goodfellow et al. 2014, Prop. 1), so that the
        term is a log density ratio.  BEGAN's ``D`` is an auto-encoder trained
        to keep the reconstruction loss of fakes at ``gamma`` times that of real
        images (Berthelot et al. 2017, eqs. 3-4): its output is an image, its
        loss is not a probability or a log-ratio (at equilibrium fakes are
        reconstructed *better* than real images), and any map from it to a
        logit would be a new method with a free scale, so the combination is
        refused.  A WGAN-GP critic (the zoo's PGAN) is accepted as the logit:
        a per-image score, higher for real images (the issue's "use netD for
        the D-based prior"); its scale is not a probability's.
        """
        kind = self.d_kind
        if kind == "autoencoder":
            raise ValueError(
                f"{method} needs a discriminator giving a probability that its input is real (its prior term "
                "is log(1 - D) - log D); this prior's D is BEGAN's auto-encoder, whose output is a "
                "reconstruction, not a probability (Berthelot et al. 2017): use a prior with a classifier D "
                "(DCGAN, PGAN) or leave yeh / yeh_blend out of 'methods' (or method_tasks)")

    def to(self, device) -> "Prior":
        device = torch.device(device)
        self.G = self.G.to(device).eval()
        if self.D is not None:
            self.D = self.D.to(device).eval()
        self.device = device
        return self


__all__ = ["Generator", "Discriminator", "Prior", "load_teacher_generator", "fold_batchnorm", "default_device",
           "to_gan", "to_unit", "latents", "latents_per_image", "Z_DISTS", "D_KINDS"]

from .checkpoint import TEACHER_SPEC, load_prior, save_prior  # noqa: E402  (needs Prior above)

__all__ += ["load_prior", "save_prior", "TEACHER_SPEC"]
