"""DCGAN training (Radford et al., ICLR 2016) for the project's GAN priors.

The default objective (``loss: ns``) is the standard GAN game of Goodfellow
et al. (NeurIPS 2014) with the non-saturating generator loss, written with
logits ``l = D(x)`` (``D`` returns logits; ``sigmoid(l)`` is the probability "real"):

    L_D = BCE(l(x), 1) + BCE(l(G(z)), 0)
        = -log sigma(D(x)) - log(1 - sigma(D(G(z))))
    L_G = BCE(l(G(z)), 1) = -log sigma(D(G(z)))

minimised alternately with Adam (lr 2e-4, betas (0.5, 0.999)) and the DCGAN
initialisation (conv weights N(0, 0.02), batch-norm scales N(1, 0.02)).  This
pair (G, D) is exactly what Yeh et al. (ICASSP 2018) need: their prior loss
uses ``log(1 - D(G(z)))``.  ``loss: wgan_gp`` (a critic D with layer norm,
``n_critic`` critic steps per G step) and ``loss: rsgan`` (relativistic) are
the survey's (seed 002) alternatives, see :mod:`ganrestore.priors.objectives`.

``init_g: teacher`` starts G from the pretrained ``gan-face-generate``
generator; with ``freeze_g: true`` G stays that teacher (eval mode, never
updated) and only D is trained: the checkpoint then stores D's tensors and a
reference to the teacher (:func:`ganrestore.priors.checkpoint.save_prior`).
Real and fake images must then reach D the same way -- both float (``data:
teacher``, ``teacher_u8: false``, ``teacher_pool: 0``: fresh teacher faces,
the same distribution as G(z)) or both 8-bit (``quantise_fake: true``) --
otherwise D could separate them by quantisation alone; the other
combinations are refused.

Data is either a prepared dataset split (``.npz`` with ``images`` (N,S,S,3)
uint8, as :func:`ganrestore.io.load_split` reads it; kept as uint8 in memory) or
``"teacher"``: faces sampled from
the pretrained ``gan-face-generate`` generator, an unlimited synthetic face
distribution that stands in for CelebA offline.  With ``teacher_pool > 0`` a
fixed pool of that many teacher faces (quantised to uint8, like a real
dataset) is drawn once and minibatches are drawn from it; with 0 every batch is
fresh.

BEGAN (``arch: began``; Berthelot, Schumm & Metz 2017, as carpedm20/BEGAN-tensorflow
trains it: :mod:`ganrestore.priors.began`) with the auto-encoder loss
``L(v) = mean |v - D(v)|``, ``z ~ U[-1, 1]^nz``:

    L_D = L(x) - k_t L(G(z)),    L_G = L(G(z)),
    k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1),
    M = L(x) + |gamma L(x) - L(G(z))|     (the convergence measure),

both gradients taken from one forward pass and applied together (the TF
code's two ``minimize`` ops under one ``sess.run``), Adam (lr 8e-5, betas
(0.5, 0.999) there), learning rates halved every ``lr_halve_every`` steps down
to ``lr_min``; ``k_t`` starts at 0 and is part of the resume state.  The log
records ``L_real``, ``L_fake``, ``k_t`` and ``M``.

Images of ``image_size`` pixels (64 for the DCGAN; a power of two >= 8 for
BEGAN): a prepared split of that size, or teacher faces (64 px) resized
bilinearly on the fly (a stand-in for CelebA that is blurrier at 128 px).

Everything random derives from ``seed`` (initialisation, data order, latents);
the run can be stopped by a wall-time limit and resumed from its state file.

>>> cfg = TrainConfig(steps=1, batch_size=2, ngf=8, ndf=8, sample_every=0, checkpoint_every=0)
>>> import tempfile; out = train_gan(cfg, tempfile.mkdtemp(), data=torch.rand(4, 3, 64, 64), progress=False)
>>> out["steps"]
1
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..io import atomic_path, load_artifact, write_json_atomic
from . import default_device, latents
from .began import BEGANDiscriminator, BEGANGenerator, began_init_
from .checkpoint import TEACHER_SPEC, save_prior
from .dcgan import D_NORMS, Discriminator, Generator, load_teacher_generator, to_gan, to_unit
from .objectives import AUTO_D_NORM, DESCRIPTION, LOG_FIELDS, LOSSES, gan_step

ARCHS = ("dcgan", "began")
#: where G's weights start: the DCGAN initialisation, or the pretrained teacher (gan-face-generate)
INIT_G = ("random", "teacher")


@dataclass
class TrainConfig:
    """Hyper-parameters of one DCGAN training run (all recorded in the provenance)."""

    steps: int = 2887              # with the other defaults: the committed demo prior
    batch_size: int = 64
    ngf: int = 32
    ndf: int = 32
    nz: int = 100
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    seed: int = 0
    data: str = "teacher"          # "teacher" or the path of a prepared split (.npz)
    teacher_pool: int = 32768      # >0: draw a fixed pool of this many teacher faces once
    sample_every: int = 250        # sample grid every N steps (0: only at the end)
    checkpoint_every: int = 250    # checkpoint + resume state every N steps (0: only at the end)
    log_every: int = 10
    max_minutes: float | None = None   # wall-time budget; stops cleanly and checkpoints
    threads: int | None = None     # torch.set_num_threads on the CPU
    storage_dtype: str = "float32"  # "float16" halves the committed weights
    arch: str = "dcgan"            # "dcgan" (G+D, ngf/ndf) or "began" (n = ngf for G, ndf for D)
    image_size: int = 64           # 64 for the DCGAN; BEGAN: a power of two >= 8 (128 for IAGAN)
    gamma: float = 0.5             # BEGAN diversity ratio
    lambda_k: float = 0.001        # BEGAN proportional gain of k_t
    lr_halve_every: int = 0        # halve both learning rates every N steps (BEGAN code: 100000); 0 = never
    lr_min: float = 2e-5           # lower bound of the halving (BEGAN code: 2e-5)
    loss: str = "ns"               # DCGAN objective: "ns" (non-saturating), "wgan_gp", "rsgan" (.objectives)
    gp_lambda: float = 10.0        # WGAN-GP gradient-penalty weight (Gulrajani et al.: 10)
    n_critic: int = 1              # discriminator updates per generator update (WGAN-GP paper: 5)
    d_norm: str = "auto"           # D normalisation: auto (layer for wgan_gp, else batch), batch, layer, none
    init_g: str = "random"         # "random" (DCGAN init) or "teacher" (the gan-face-generate weights)
    freeze_g: bool = False         # train D only against G = the initial G (init_g teacher)
    teacher_u8: bool = True        # data "teacher": round teacher faces to 8 bits like a stored dataset
    quantise_fake: bool = False    # frozen G only: round G(z) to 8 bits before D sees it

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, got {self.arch!r}")
        self._check_objective()
        if self.arch == "dcgan" and self.image_size != 64:
            raise ValueError(f"the DCGAN makes 64x64 images; image_size is {self.image_size} "
                             "(use arch: began for other sizes)")
        if self.arch == "began":
            s = int(self.image_size)
            if s < 8 or s & (s - 1):
                raise ValueError(f"BEGAN image_size must be a power of two >= 8, got {self.image_size}")

    def _check_objective(self) -> None:
        """Refuse settings that contradict each other, naming the key (prior.training.<key>)."""

        def bad(key, why):
            raise ValueError(f"training setting {key!r}: {why}")

        if self.loss not in LOSSES:
            bad("loss", f"must be one of {list(LOSSES)}, got {self.loss!r}")
        if self.d_norm not in ("auto", *D_NORMS):
            bad("d_norm", f"must be one of {['auto', *D_NORMS]}, got {self.d_norm!r}")
        if self.init_g not in INIT_G:
            bad("init_g", f"must be one of {list(INIT_G)}, got {self.init_g!r}")
        if not (isinstance(self.n_critic, int) and self.n_critic >= 1):
            bad("n_critic", f"must be a positive integer, got {self.n_critic!r}")
        if not self.gp_lambda >= 0:
            bad("gp_lambda", f"must be >= 0, got {self.gp_lambda!r}")
        if self.arch == "began":
            for key, default in (("loss", "ns"), ("d_norm", "auto"), ("init_g", "random"), ("n_critic", 1)):
                if getattr(self, key) != default:
                    bad(key, f"{getattr(self, key)!r} applies to arch dcgan only (BEGAN has its own "
                             "objective, auto-encoder D and initialisation)")
        if self.loss == "wgan_gp" and self.d_norm == "batch":
            bad("d_norm", "batch norm with loss wgan_gp: the gradient penalty is per sample and batch norm "
                          "makes each critic value depend on its batch-mates (Gulrajani et al. 2017, Sec. 4: "
                          "no critic batch normalization); use 'layer' (their choice, = auto) or 'none'")
        if self.init_g == "teacher" and (self.nz, self.ngf) != (100, 64):
            key = "ngf" if self.ngf != 64 else "nz"
            bad(key, f"init_g teacher is the gan-face-generate DCGAN (nz 100, ngf 64); got nz {self.nz}, "
                     f"ngf {self.ngf}")
        if self.freeze_g and self.init_g != "teacher":
            bad("freeze_g", f"a frozen G must be a trained one: set init_g: teacher (got init_g {self.init_g!r})")
        if self.quantise_fake and not self.freeze_g:
            bad("quantise_fake", "rounding G(z) to 8 bits has no gradient for G: only with freeze_g: true")
        if not self.teacher_u8 and (self.data != "teacher" or self.teacher_pool > 0):
            bad("teacher_u8", "float teacher faces are drawn fresh every step: needs data 'teacher' and "
                              f"teacher_pool 0 (got data {self.data!r}, teacher_pool {self.teacher_pool})")
        if self.freeze_g and not self.quantise_fake and (self.data != "teacher" or self.teacher_u8):
            bad("quantise_fake", "with freeze_g the real images are 8-bit (a stored split, or teacher faces "
                                 "with teacher_u8 true) and G(z) is float, so D could tell them apart by "
                                 "quantisation alone: set quantise_fake: true, or with data 'teacher' set "
                                 "teacher_u8: false and teacher_pool: 0 (both float)")

    @property
    def d_norm_resolved(self) -> str:
        """The discriminator's normalisation: ``d_norm``, or the objective's for ``auto``."""
        return AUTO_D_NORM[self.loss] if self.d_norm == "auto" else self.d_norm

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown training settings {sorted(unknown)}; known: {sorted(names)}")
        return cls(**d)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def build_pair(cfg: TrainConfig) -> tuple[nn.Module, nn.Module]:
    """G and D of ``cfg.arch``, initialised (DCGAN or TF-slim initialisation), on the CPU; with
    ``init_g: teacher`` G is then replaced by the teacher, so D's initialisation is the same either way."""
    if cfg.arch == "began":
        G = BEGANGenerator(nz=cfg.nz, n=cfg.ngf, image_size=cfg.image_size)
        D = BEGANDiscriminator(n=cfg.ndf, nz=cfg.nz, image_size=cfg.image_size)
        G.apply(began_init_)
        D.apply(began_init_)
        return G, D
    G = Generator(nz=cfg.nz, ngf=cfg.ngf)
    D = Discriminator(ndf=cfg.ndf, norm=cfg.d_norm_resolved, output=LOSSES[cfg.loss])
    G.apply(dcgan_init_)
    D.apply(dcgan_init_)
    if cfg.init_g == "teacher":
        G = load_teacher_generator()
    return G, D


def dcgan_init_(m: nn.Module) -> None:
    """DCGAN initialisation: conv N(0, 0.02); batch-norm scale N(1, 0.02), shift 0."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


# ----------------------------------------------------------------------------- data
@torch.no_grad()
def teacher_faces(n: int, seed: int, batch: int = 256, teacher: Generator | None = None,
                  device=None) -> torch.Tensor:
    """``n`` teacher faces in [0, 1], quantised to 8 bits, latents from ``seed``."""
    return teacher_faces_u8(n, seed, batch, teacher, device).float() / 255.0


@torch.no_grad()
def teacher_faces_u8(n: int, seed: int, batch: int = 256, teacher: Generator | None = None,
                     device=None) -> torch.Tensor:
    """``n`` teacher faces as (n,3,64,64) uint8 (latents ``randn`` from ``seed``, eval-mode G)."""
    device = torch.device(device or "cpu")
    T = (teacher or load_teacher_generator()).to(device).eval()
    g = torch.Generator().manual_seed(seed)
    out = torch.empty(n, 3, 64, 64, dtype=torch.uint8)
    for i in range(0, n, batch):
        b = min(batch, n - i)
        z = torch.randn(b, T.nz, generator=g).to(device)
        out[i:i + b] = torch.round(to_unit(T(z)).clamp(0, 1) * 255).to(torch.uint8).cpu()
    return out


class EpochOrder:
    """Seeded epochs over a pool: each epoch a fresh permutation drawn from the
    generator ``g``, minibatches taken in order, the remainder dropped; its
    state (generator, permutation, position) resumes a run exactly.  Shared by
    the priors' and the cGANs' training samplers."""

    def __init__(self, seed: int):
        self.g = torch.Generator().manual_seed(seed)
        self.perm, self.pos = None, 0

    def state(self) -> dict:
        return {"g": self.g.get_state(), "perm": self.perm if self.perm is not None else torch.empty(0),
                "pos": self.pos}

    def load_state(self, s: dict) -> None:
        self.g.set_state(s["g"])
        self.perm = s["perm"] if s["perm"].numel() else None
        self.pos = int(s["pos"])

    def take(self, n_pool: int, b: int) -> torch.Tensor:
        """The next ``b`` indices into a pool of ``n_pool`` items."""
        if self.perm is None or self.pos + b > len(self.perm):   # new epoch, drop the remainder
            self.perm, self.pos = torch.randperm(n_pool, generator=self.g), 0
        idx = self.perm[self.pos:self.pos + b]
        self.pos += b
        return idx


class _Sampler:
    """Minibatches of real images in the GAN range [-1, 1]."""

    def __init__(self, cfg: TrainConfig, data, device):
        self.cfg, self.device = cfg, device
        self.order = EpochOrder(cfg.seed * 1000 + 1)
        self.teacher = None
        self.pool = None
        if data is not None:
            self.pool = data if isinstance(data, torch.Tensor) else torch.as_tensor(data)
            self.recipe = {"kind": "tensor", "n": int(self.pool.shape[0])}
        elif cfg.data == "teacher":
            if cfg.teacher_pool > 0:
                self.pool = teacher_faces_u8(cfg.teacher_pool, seed=cfg.seed * 1000 + 2, device=device)
                self.recipe = {"kind": "teacher_pool", "source": "teacher:gan-face-generate",
                               "n": cfg.teacher_pool, "latent_seed": cfg.seed * 1000 + 2,
                               "quantised": "uint8"}
            else:
                self.teacher = load_teacher_generator().to(device).eval()
                self.recipe = {"kind": "teacher_fresh", "source": "teacher:gan-face-generate",
                               "latent_seed": cfg.seed * 1000 + 1,
                               "quantised": "uint8" if cfg.teacher_u8 else "no (float G output, eval mode)"}
        else:
            # kept as uint8 (N,3,H,W): the 162,770 CelebA training faces are 8 GB at 128 px,
            # 32 GB as float32; minibatches are converted as they are drawn
            d = load_artifact(cfg.data)
            self.pool = torch.from_numpy(d["images"]).permute(0, 3, 1, 2)
            self.recipe = {"kind": "split", "path": str(cfg.data), "n": int(len(d["ids"]))}
        self.size = int(cfg.image_size)
        self.resize = self.teacher is not None or (self.recipe["kind"] == "teacher_pool" and self.size != 64)
        if self.resize and self.size != 64:
            self.recipe["resized"] = f"64 -> {self.size} px, bilinear (torch.nn.functional.interpolate)"
        if self.pool is not None and not self.resize:
            if tuple(self.pool.shape[1:]) != (3, self.size, self.size):
                raise ValueError(f"training images must be (N,3,{self.size},{self.size}) for image_size "
                                 f"{self.size}; got {tuple(self.pool.shape)} from {cfg.data!r}")
            if self.pool.shape[0] < cfg.batch_size:
                raise ValueError(f"{self.pool.shape[0]} training images < batch size {cfg.batch_size}")

    def state(self) -> dict:
        return self.order.state()

    def load_state(self, s: dict) -> None:
        self.order.load_state(s)

    def _sized(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] == self.size:
            return x
        return F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False,
                             antialias=x.shape[-1] > self.size).clamp(0, 1)

    @torch.no_grad()
    def next(self) -> torch.Tensor:
        b = self.cfg.batch_size
        if self.teacher is not None:
            z = torch.randn(b, self.teacher.nz, generator=self.order.g).to(self.device)
            x = to_unit(self.teacher(z)).clamp(0, 1)
            if self.cfg.teacher_u8:
                x = torch.round(x * 255) / 255
            return to_gan(self._sized(x))
        x = self.pool[self.order.take(self.pool.shape[0], b)]
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        return to_gan(self._sized(x.to(self.device)))


# ----------------------------------------------------------------------------- pictures
def image_grid(x: torch.Tensor, nrow: int = 8, pad: int = 2) -> np.ndarray:
    """(B,3,H,W) in [0,1] -> one (rows*H', nrow*W', 3) float array with white padding."""
    x = x.detach().cpu().clamp(0, 1).numpy()
    B, C, H, W = x.shape
    ncol = min(nrow, B)
    rows = math.ceil(B / ncol)
    out = np.ones((rows * (H + pad) + pad, ncol * (W + pad) + pad, 3), dtype=np.float32)
    for i in range(B):
        r, c = divmod(i, ncol)
        out[pad + r * (H + pad):pad + r * (H + pad) + H,
            pad + c * (W + pad):pad + c * (W + pad) + W] = x[i].transpose(1, 2, 0)
    return out


def save_grid_png(path, x: torch.Tensor, nrow: int = 8, max_side: int = 128) -> None:
    """Write a sample grid of (B,3,H,W) images in [0,1] as a PNG (matplotlib), atomically.

    Images larger than ``max_side`` are shown downscaled (area averaging) so a
    grid of 1024-px samples stays a few megapixels."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    x = x.detach().float().cpu()
    if max_side and x.shape[-1] > max_side:
        x = F.interpolate(x, size=(max_side, max_side * x.shape[-1] // x.shape[-2]), mode="area")
    with atomic_path(path, suffix=".png") as tmp:
        plt.imsave(tmp, image_grid(x, nrow), format="png")


@torch.no_grad()
def sample_grid(G: nn.Module, n: int = 64, seed: int = 0, device=None, chunk: int = 8) -> torch.Tensor:
    """``n`` samples of ``G`` (eval mode) in [0, 1] from latents of ``G.z_dist`` fixed by
    ``seed``, computed ``chunk`` at a time (memory at 1024 px), returned on the CPU."""
    device = device or next(G.parameters()).device
    was = G.training
    G.eval()
    z = latents(n, G.nz, getattr(G, "z_dist", "normal"), torch.Generator().manual_seed(seed))
    x = torch.cat([to_unit(G(z[i:i + chunk].to(device))).clamp(0, 1).cpu() for i in range(0, n, chunk)])
    G.train(was)
    return x


def plot_losses(csv_path, png_path) -> None:
    """Loss curves (and mean D outputs) of a training log CSV, as a PNG."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    rows = list(csv.DictReader(open(csv_path)))
    if not rows:
        return
    step = np.array([int(r["step"]) for r in rows])
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    if "k_t" in rows[0]:                                  # BEGAN
        for k, lab in (("L_real", "L(x)"), ("L_fake", "L(G(z)) = L_G"), ("M", "M (convergence)")):
            ax[0].plot(step, [float(r[k]) for r in rows], label=lab, lw=0.8)
        ax[0].set_xlabel("step"); ax[0].set_ylabel("mean |v - D(v)|"); ax[0].legend()
        ax[1].plot(step, [float(r["k_t"]) for r in rows], label="k_t", lw=0.8)
        ax[1].set_xlabel("step"); ax[1].legend()
    else:
        for k in ("loss_D", "loss_G"):
            ax[0].plot(step, [float(r[k]) for r in rows], label=k, lw=0.8)
        ax[0].set_xlabel("step"); ax[0].set_ylabel("BCE loss" if "W" not in rows[0] else "loss"); ax[0].legend()
        if "D_real" in rows[0]:                           # non-saturating: mean sigmoid of the logits
            for k in ("D_real", "D_fake"):
                ax[1].plot(step, [float(r[k]) for r in rows], label=f"mean sigmoid {k}", lw=0.8)
            ax[1].set_ylim(0, 1)
        else:                                             # WGAN-GP / RSGAN: mean raw scores
            for k, lab in (("C_real", "mean C(x)"), ("C_fake", "mean C(G(z))"), ("W", "W = C(x) - C(G(z))")):
                if k in rows[0]:
                    ax[1].plot(step, [float(r[k]) for r in rows], label=lab, lw=0.8)
        ax[1].set_xlabel("step"); ax[1].legend()
    fig.tight_layout()
    with atomic_path(png_path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


# ----------------------------------------------------------------------------- training
CSV_FIELDS = ["step", "seconds", *LOG_FIELDS["ns"]]
BEGAN_CSV_FIELDS = ["step", "seconds", "loss_D", "loss_G", "L_real", "L_fake", "k_t", "M"]


def train_step(G, D, opt_G, opt_D, real: torch.Tensor, z: torch.Tensor) -> dict:
    """One alternating DCGAN update (D then G); returns the losses and mean D outputs
    (:func:`ganrestore.priors.objectives.gan_step` with the non-saturating loss, one D step)."""
    return gan_step(G, D, opt_G, opt_D, [(real, z)], loss="ns")


def began_step(G, D, opt_G, opt_D, real: torch.Tensor, z: torch.Tensor, k_t: float, gamma: float,
               lambda_k: float) -> dict:
    """One BEGAN update: both losses from one forward pass of D on ``[G(z); x]``,
    both gradients taken there and applied together, then the k_t update.

    Returns ``loss_D = L(x) - k_t L(G(z))``, ``loss_G = L(G(z))``, ``L_real``,
    ``L_fake`` (= ``loss_G``), the updated ``k_t`` and the convergence measure ``M``.
    """
    B = real.shape[0]
    fake = G(z)
    rec = D(torch.cat([fake, real]))
    l_fake = (rec[:B] - fake).abs().mean()
    l_real = (rec[B:] - real).abs().mean()
    loss_D = l_real - k_t * l_fake
    loss_G = l_fake
    d_params = [p for p in D.parameters() if p.requires_grad]
    g_params = [p for p in G.parameters() if p.requires_grad]
    g_D = torch.autograd.grad(loss_D, d_params, retain_graph=True)
    g_G = torch.autograd.grad(loss_G, g_params)
    for p_, g_ in zip(d_params, g_D):
        p_.grad = g_
    for p_, g_ in zip(g_params, g_G):
        p_.grad = g_
    opt_D.step()
    opt_G.step()
    lr_, lf_ = l_real.item(), l_fake.item()
    balance = gamma * lr_ - lf_
    return {"loss_D": loss_D.item(), "loss_G": lf_, "L_real": lr_, "L_fake": lf_,
            "k_t": min(max(k_t + lambda_k * balance, 0.0), 1.0), "M": lr_ + abs(balance)}


def regenerate_command(cfg: TrainConfig, out_dir, checkpoint) -> str:
    """The ``scripts/train_gan.py`` command line that reproduces a run of ``cfg``."""
    args = ["python", "scripts/train_gan.py", "--out", str(out_dir), "--checkpoint", str(checkpoint)]
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if f.name in ("max_minutes",) or v is None:
            continue
        args += [f"--{f.name.replace('_', '-')}", str(v)]
    return shlex.join(args)


def train_gan(cfg: TrainConfig, out_dir, checkpoint=None, device=None, data=None,
              resume: bool = True, progress: bool = True, extra_provenance: dict | None = None) -> dict:
    """Train a GAN pair (``cfg.arch``: DCGAN or BEGAN) on ``cfg.data`` and write a prior checkpoint.

    Writes into ``out_dir``: ``losses.csv``, ``loss.png``, ``samples/step_<k>.png``,
    ``samples.png`` (the latest grid), ``train_state.pt`` (resume state, loadable
    with ``weights_only=True``) and ``summary.json``; and the checkpoint at the
    stem ``checkpoint`` (default ``out_dir/prior``) every ``checkpoint_every``
    steps and at the end, so a run cut short still leaves its latest good prior.
    ``data`` (a (N,3,S,S) tensor in [0,1], ``S = cfg.image_size``) overrides ``cfg.data`` (tests).

    Returns a summary dict (steps done, seconds, throughput, last losses).
    """
    t_start = time.time()
    out_dir = Path(out_dir)
    (out_dir / "samples").mkdir(parents=True, exist_ok=True)
    checkpoint = Path(checkpoint) if checkpoint is not None else out_dir / "prior"
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    device = torch.device(device) if device is not None else default_device()
    dtype = {"float32": torch.float32, "float16": torch.float16}[cfg.storage_dtype]

    torch.manual_seed(cfg.seed)
    G, D = build_pair(cfg)
    began = cfg.arch == "began"
    frozen = bool(cfg.freeze_g)
    fields = BEGAN_CSV_FIELDS if began else ["step", "seconds", *LOG_FIELDS[cfg.loss]]
    k_t = 0.0
    # a frozen G is used as the restoration methods use it: eval mode (running batch-norm statistics)
    G.to(device).train(not frozen).requires_grad_(not frozen)
    D.to(device).train()
    opt_G = None if frozen else torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    opt_D = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    sampler = _Sampler(cfg, data, device)
    t_data = time.time() - t_start
    zgen = torch.Generator().manual_seed(cfg.seed * 1000 + 3)

    state_path = out_dir / "train_state.pt"
    csv_path = out_dir / "losses.csv"
    step, elapsed_before = 0, 0.0
    if resume and state_path.is_file():
        st = torch.load(state_path, map_location="cpu", weights_only=True)
        saved_cfg = json.loads(st["config"])
        same = {k: v for k, v in saved_cfg.items() if k not in ("steps", "max_minutes", "threads",
                                                                   "sample_every", "checkpoint_every",
                                                                   "log_every")}
        now = {k: v for k, v in cfg.to_dict().items() if k in same}
        if same != now:
            raise ValueError(f"{state_path}: resume state was written with a different config "
                             f"({same} vs {now}); delete it to start over")
        if not frozen:                     # a frozen G is the teacher: not in the state file
            G.load_state_dict(st["G"])
            opt_G.load_state_dict(st["opt_G"])
        D.load_state_dict(st["D"])
        opt_D.load_state_dict(st["opt_D"])
        sampler.load_state(st["sampler"]); zgen.set_state(st["zgen"])
        step, elapsed_before = int(st["step"]), float(st["elapsed"])
        k_t = float(st.get("k_t", 0.0))
    # keep the log consistent with the resumed step
    rows = []
    if step > 0 and csv_path.is_file():
        rows = [r for r in csv.DictReader(open(csv_path)) if int(r["step"]) <= step]
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fields)
        w.writeheader()
        w.writerows(rows)

    def save_all(final: bool, stopped: str | None) -> None:
        torch.save({"G": None if frozen else G.state_dict(), "D": D.state_dict(),
                    "opt_G": None if frozen else opt_G.state_dict(), "opt_D": opt_D.state_dict(), "sampler": sampler.state(), "zgen": zgen.get_state(),
                    "step": step, "elapsed": elapsed_before + (time.time() - t_loop), "k_t": k_t,
                    "config": json.dumps(cfg.to_dict())}, state_path)
        done_cfg = dataclasses.replace(cfg, steps=step)
        prov = {"kind": cfg.arch, "steps": step, "training": cfg.to_dict(), "data": sampler.recipe,
                "completed": final and stopped is None, "stopped": stopped,
                "train_seconds": round(elapsed_before + (time.time() - t_loop), 1),
                "device": str(device), "torch_threads": torch.get_num_threads(),
                "regenerate": regenerate_command(done_cfg, out_dir, checkpoint),
                "objective": DESCRIPTION[cfg.loss], "d_kind": getattr(D, "d_kind", None)}
        if not began:
            prov["d_norm"] = cfg.d_norm_resolved
        if frozen:
            prov["generator"] = (f"{TEACHER_SPEC}, frozen (eval mode, not optimised); loss_G in the "
                                 "log is G's loss at D before D's update")
            prov["fake_images"] = "G(z) rounded to 8 bits" if cfg.quantise_fake else "G(z), float"
        if began:
            prov.update({"objective": "BEGAN: L_D = L(x) - k_t L(G(z)), L_G = L(G(z)), L = mean |v - D(v)|, "
                                      "k_t proportional control to gamma (Berthelot et al. 2017)",
                         "k_t": k_t, "latent": "z ~ U[-1, 1]^nz",
                         "reference": "carpedm20/BEGAN-tensorflow (models.py, trainer.py)"})
        prov.update(extra_provenance or {})
        G.eval(); D.eval()
        save_prior(checkpoint, G, D, prov, dtype=dtype, g_source=TEACHER_SPEC if frozen else None)
        G.train(not frozen); D.train()

    def grid(step_: int) -> None:
        x = sample_grid(G, 64, seed=cfg.seed * 1000 + 4, device=device)
        save_grid_png(out_dir / "samples" / f"step_{step_:06d}.png", x)
        save_grid_png(out_dir / "samples.png", x)

    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=cfg.steps, initial=step, desc="train_gan", mininterval=5)
    t_loop = time.time()
    stopped = None
    last = {}
    fcsv = open(csv_path, "a", newline="")
    writer = csv.DictWriter(fcsv, fields)
    steps_this_run = 0
    try:
        while step < cfg.steps:
            if cfg.max_minutes is not None and (time.time() - t_start) > 60 * cfg.max_minutes:
                stopped = "wall_time"
                break
            if cfg.lr_halve_every:
                lr_now = max(cfg.lr * 0.5 ** (step // cfg.lr_halve_every), min(cfg.lr, cfg.lr_min))
                for opt in (opt_G, opt_D):
                    for group in (opt.param_groups if opt is not None else []):
                        group["lr"] = lr_now
            if began:
                real = sampler.next()
                z = latents(real.shape[0], cfg.nz, G.z_dist, zgen).to(device)
                last = began_step(G, D, opt_G, opt_D, real, z, k_t, cfg.gamma, cfg.lambda_k)
                k_t = last["k_t"]
            else:
                batches = []
                for _ in range(cfg.n_critic):
                    real = sampler.next()
                    batches.append((real, latents(real.shape[0], cfg.nz, "normal", zgen).to(device)))
                last = gan_step(G, D, opt_G, opt_D, batches, cfg.loss, cfg.gp_lambda, eps_generator=zgen,
                                train_g=not frozen, quantise_fake=cfg.quantise_fake)
            if not all(math.isfinite(v) for v in last.values()):
                raise FloatingPointError(f"non-finite losses at step {step + 1}: {last}")
            step += 1
            steps_this_run += 1
            if step % cfg.log_every == 0 or step == cfg.steps:
                writer.writerow({"step": step,
                                 "seconds": round(elapsed_before + time.time() - t_loop, 2),
                                 **{k: round(v, 5) for k, v in last.items()}})
                fcsv.flush()
            if bar is not None:
                bar.update(1)
                if step % cfg.log_every == 0:
                    bar.set_postfix({k: f"{v:.3f}" for k, v in last.items()}, refresh=False)
            if cfg.sample_every and step % cfg.sample_every == 0:
                grid(step)
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < cfg.steps:
                save_all(final=False, stopped=None)
                plot_losses(csv_path, out_dir / "loss.png")
    finally:
        fcsv.close()
        if bar is not None:
            bar.close()
    save_all(final=True, stopped=stopped)
    grid(step)
    plot_losses(csv_path, out_dir / "loss.png")
    loop_s = time.time() - t_loop
    summary = {"steps": step, "steps_this_run": steps_this_run, "stopped": stopped,
               "data_seconds": round(t_data, 1), "loop_seconds": round(loop_s, 1),
               "steps_per_second": round(steps_this_run / loop_s, 4) if loop_s > 0 else None,
               "images_per_second": round(steps_this_run * cfg.batch_size / loop_s, 2) if loop_s else None,
               "last": last, "checkpoint": str(checkpoint), "config": cfg.to_dict(),
               "data": sampler.recipe}
    write_json_atomic(out_dir / "summary.json", summary)
    return summary


@torch.no_grad()
def discriminator_means(D: nn.Module, G: nn.Module, real: torch.Tensor, seed: int = 0,
                        batch: int = 256) -> dict:
    """Mean discriminator score on real images (in [0,1]) and on as many samples of ``G``.

    The score is what ``D`` outputs (``D.d_kind``): ``sigmoid(D)`` for a logit D
    (DCGAN), the critic value for a WGAN-GP critic (PGAN, a DCGAN trained with
    ``loss: wgan_gp``) or an RSGAN relativistic score, and the reconstruction
    loss ``mean |v - D(v)|`` for BEGAN's auto-encoder (there at equilibrium
    ``L(G(z)) ~ gamma L(x)``: fakes are reconstructed *better*, the ratio is
    reported).  Real images are resized (bilinear) to ``G``'s output size when
    they differ.  Both networks in their current mode (use eval mode, as
    GAN-prior methods do); at most ``batch`` images per call (a few at 1024 px).
    """
    dev = next(D.parameters()).device
    kind = getattr(D, "d_kind", "logit")
    g = torch.Generator().manual_seed(seed)
    size = int(getattr(G, "image_size", 64))
    if size >= 512:
        batch = min(batch, 4)

    def score(x):
        if kind == "autoencoder":
            return D.energy(x).float().cpu()
        out = D(x)
        out = out[:, 0] if out.dim() == 2 else out.reshape(x.shape[0], -1)[:, 0]
        return (torch.sigmoid(out) if kind == "logit" else out).float().cpu()

    r, f = [], []
    for i in range(0, real.shape[0], batch):
        xb = real[i:i + batch].to(dev).float()
        if xb.shape[-1] != size:
            xb = F.interpolate(xb, size=(size, size), mode="bilinear", align_corners=False,
                               antialias=xb.shape[-1] > size).clamp(0, 1)
        r.append(score(to_gan(xb)))
        z = latents(xb.shape[0], G.nz, getattr(G, "z_dist", "normal"), g).to(dev)
        f.append(score(G(z)))
    r, f = torch.cat(r), torch.cat(f)
    out = {"d_kind": kind, "D_real_mean": r.mean().item(), "D_fake_mean": f.mean().item(), "n": int(r.numel())}
    if kind == "logit":
        out.update({"frac_real_above_half": (r > 0.5).float().mean().item(),
                    "frac_fake_below_half": (f < 0.5).float().mean().item()})
    elif kind in ("critic", "relativistic"):
        out["frac_real_above_fake_median"] = (r > f.median()).float().mean().item()
    else:
        out["fake_over_real"] = (f.mean() / r.mean().clamp_min(1e-12)).item()
        out["note"] = ("D_*_mean are BEGAN reconstruction losses mean |v - D(v)| (lower = better "
                       "reconstructed); at equilibrium fake_over_real ~ gamma")
    return out


def write_prior_samples(prior_spec, prior_png, teacher_png=None, check_json=None, n: int = 64,
                        seed: int = 0, n_check: int = 256, check_seed: int = 4321,
                        device=None, photos: torch.Tensor | None = None, photos_note: str | None = None) -> dict:
    """Sample grids of a prior and of the teacher, and the discriminator check.

    ``prior_png``: ``n`` samples of the prior's G from latents fixed by ``seed``
    (drawn from the prior's latent distribution); ``teacher_png``: the teacher
    generator from the same seed (the in-range face distribution the demo prior
    was trained on); ``check_json``: the mean discriminator score
    (:func:`discriminator_means`) on ``n_check`` teacher faces (8-bit quantised,
    latents from ``check_seed``, disjoint from training's; resized to the
    prior's size) versus on as many samples of G -- a trained logit D or critic
    should score the real faces higher -- and under ``separation`` the ROC AUC
    and mean scores of those teacher faces, of the real photographs ``photos``
    ((N,3,S,S) uint8, e.g. :func:`ganrestore.priors.separation.real_photos`;
    ``photos_note`` says which) and of 8-bit against float G(z), each against
    G(z) (:func:`ganrestore.priors.separation.discriminator_separation`).
    Grids of priors above 128 px are shown at 128 px per image.
    """
    from .checkpoint import TEACHER_SPEC, load_prior
    from .separation import discriminator_separation

    prior = load_prior(prior_spec, device=device)
    save_grid_png(prior_png, sample_grid(prior.G, n, seed=seed))
    out = {"prior": str(prior_spec), "n_grid": n, "grid_seed": seed, "z_dist": prior.z_dist}
    g_source = (prior.provenance.get("G") or {}).get("source")
    if g_source:
        out["G_source"] = g_source
    if teacher_png is not None:
        teacher = load_prior(TEACHER_SPEC, device=prior.device)
        save_grid_png(teacher_png, sample_grid(teacher.G, n, seed=seed))
    if check_json is not None:
        if prior.D is not None:
            size = int(getattr(prior.G, "image_size", 64))
            n_real = n_check if size <= 256 else min(n_check, 32)
            real_u8 = teacher_faces_u8(n_real, seed=check_seed, device=prior.device)
            out.update(discriminator_means(prior.D, prior.G, real_u8.float() / 255.0, seed=check_seed + 1))
            out["real"] = (f"{n_real} teacher faces (gan-face-generate), uint8, latent seed {check_seed}"
                           + (f", resized 64 -> {size} px (bilinear)" if size != 64 else ""))
            sep = discriminator_separation(prior.D, prior.G, real_u8, photos, n_fake=n_real, seed=check_seed + 1)
            sep["teacher"]["latent_seed"] = check_seed
            if photos is not None:
                sep["photos"]["source"] = photos_note
            out["separation"] = sep
        else:
            out["D_real_mean"] = out["D_fake_mean"] = None
            out["note"] = "this prior has no discriminator"
        write_json_atomic(check_json, out)
    return out
