"""DCGAN training (Radford et al., ICLR 2016) for the project's GAN priors.

The objective is the standard GAN game of Goodfellow et al. (NeurIPS 2014)
with the non-saturating generator loss, written with logits ``l = D(x)``
(``D`` returns logits; ``sigmoid(l)`` is the probability "real"):

    L_D = BCE(l(x), 1) + BCE(l(G(z)), 0)
        = -log sigma(D(x)) - log(1 - sigma(D(G(z))))
    L_G = BCE(l(G(z)), 1) = -log sigma(D(G(z)))

minimised alternately with Adam (lr 2e-4, betas (0.5, 0.999)) and the DCGAN
initialisation (conv weights N(0, 0.02), batch-norm scales N(1, 0.02)).  This
pair (G, D) is exactly what Yeh et al. (ICASSP 2018) need: their prior loss
uses ``log(1 - D(G(z)))``.

Data is either a prepared dataset split (``.npz`` with ``images`` (N,64,64,3)
uint8, :func:`ganrestore.io.load_split`) or ``"teacher"``: faces sampled from
the pretrained ``gan-face-generate`` generator, an unlimited synthetic face
distribution that stands in for CelebA offline.  With ``teacher_pool > 0`` a
fixed pool of that many teacher faces (quantised to uint8, like a real
dataset) is drawn once and minibatches are drawn from it; with 0 every batch is
fresh.

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

from ..io import atomic_path, load_split, write_json_atomic
from . import default_device
from .checkpoint import save_prior
from .dcgan import Discriminator, Generator, load_teacher_generator, to_gan, to_unit


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

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown training settings {sorted(unknown)}; known: {sorted(names)}")
        return cls(**d)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


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


class _Sampler:
    """Minibatches of real images in the GAN range [-1, 1]."""

    def __init__(self, cfg: TrainConfig, data, device):
        self.cfg, self.device = cfg, device
        self.g = torch.Generator().manual_seed(cfg.seed * 1000 + 1)
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
                               "latent_seed": cfg.seed * 1000 + 1}
        else:
            x, ids = load_split(cfg.data)
            self.pool = x
            self.recipe = {"kind": "split", "path": str(cfg.data), "n": len(ids)}
        if self.pool is not None:
            if tuple(self.pool.shape[1:]) != (3, 64, 64):
                raise ValueError(f"training images must be (N,3,64,64); got {tuple(self.pool.shape)}"
                                 f" from {cfg.data!r}")
            if self.pool.shape[0] < cfg.batch_size:
                raise ValueError(f"{self.pool.shape[0]} training images < batch size {cfg.batch_size}")
        self.perm, self.pos = None, 0

    def state(self) -> dict:
        return {"g": self.g.get_state(), "perm": self.perm if self.perm is not None else torch.empty(0),
                "pos": self.pos}

    def load_state(self, s: dict) -> None:
        self.g.set_state(s["g"])
        self.perm = s["perm"] if s["perm"].numel() else None
        self.pos = int(s["pos"])

    @torch.no_grad()
    def next(self) -> torch.Tensor:
        b = self.cfg.batch_size
        if self.teacher is not None:
            z = torch.randn(b, self.teacher.nz, generator=self.g).to(self.device)
            x = torch.round(to_unit(self.teacher(z)).clamp(0, 1) * 255) / 255
            return to_gan(x)
        if self.perm is None or self.pos + b > len(self.perm):   # new epoch, drop the remainder
            self.perm, self.pos = torch.randperm(self.pool.shape[0], generator=self.g), 0
        idx = self.perm[self.pos:self.pos + b]
        self.pos += b
        x = self.pool[idx]
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        return to_gan(x).to(self.device)


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


def save_grid_png(path, x: torch.Tensor, nrow: int = 8) -> None:
    """Write a sample grid of (B,3,H,W) images in [0,1] as a PNG (matplotlib), atomically."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    with atomic_path(path, suffix=".png") as tmp:
        plt.imsave(tmp, image_grid(x, nrow), format="png")


@torch.no_grad()
def sample_grid(G: Generator, n: int = 64, seed: int = 0, device=None) -> torch.Tensor:
    """``n`` samples of ``G`` (eval mode) in [0, 1] from latents fixed by ``seed``."""
    device = device or next(G.parameters()).device
    was = G.training
    G.eval()
    z = torch.randn(n, G.nz, generator=torch.Generator().manual_seed(seed)).to(device)
    x = to_unit(G(z)).clamp(0, 1)
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
    for k in ("loss_D", "loss_G"):
        ax[0].plot(step, [float(r[k]) for r in rows], label=k, lw=0.8)
    ax[0].set_xlabel("step"); ax[0].set_ylabel("BCE loss"); ax[0].legend()
    for k in ("D_real", "D_fake"):
        ax[1].plot(step, [float(r[k]) for r in rows], label=f"mean sigmoid {k}", lw=0.8)
    ax[1].set_xlabel("step"); ax[1].set_ylim(0, 1); ax[1].legend()
    fig.tight_layout()
    with atomic_path(png_path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


# ----------------------------------------------------------------------------- training
CSV_FIELDS = ["step", "seconds", "loss_D", "loss_G", "D_real", "D_fake"]


def train_step(G, D, opt_G, opt_D, real: torch.Tensor, z: torch.Tensor) -> dict:
    """One alternating DCGAN update (D then G); returns the losses and mean D outputs."""
    fake = G(z)
    l_real = D(real)
    l_fake = D(fake.detach())
    loss_D = (F.binary_cross_entropy_with_logits(l_real, torch.ones_like(l_real))
              + F.binary_cross_entropy_with_logits(l_fake, torch.zeros_like(l_fake)))
    opt_D.zero_grad(set_to_none=True)
    loss_D.backward()
    opt_D.step()
    l_gen = D(fake)
    loss_G = F.binary_cross_entropy_with_logits(l_gen, torch.ones_like(l_gen))   # non-saturating
    opt_G.zero_grad(set_to_none=True)
    loss_G.backward()
    opt_G.step()
    return {"loss_D": loss_D.item(), "loss_G": loss_G.item(),
            "D_real": torch.sigmoid(l_real).mean().item(),
            "D_fake": torch.sigmoid(l_fake).mean().item()}


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
    """Train a DCGAN pair on ``cfg.data`` and write a prior checkpoint.

    Writes into ``out_dir``: ``losses.csv``, ``loss.png``, ``samples/step_<k>.png``,
    ``samples.png`` (the latest grid), ``train_state.pt`` (resume state, loadable
    with ``weights_only=True``) and ``summary.json``; and the checkpoint at the
    stem ``checkpoint`` (default ``out_dir/prior``) every ``checkpoint_every``
    steps and at the end, so a run cut short still leaves its latest good prior.
    ``data`` (a (N,3,64,64) tensor in [0,1]) overrides ``cfg.data`` (tests).

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
    G = Generator(nz=cfg.nz, ngf=cfg.ngf)
    D = Discriminator(ndf=cfg.ndf)
    G.apply(dcgan_init_)
    D.apply(dcgan_init_)
    G.to(device).train()
    D.to(device).train()
    opt_G = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
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
        G.load_state_dict(st["G"]); D.load_state_dict(st["D"])
        opt_G.load_state_dict(st["opt_G"]); opt_D.load_state_dict(st["opt_D"])
        sampler.load_state(st["sampler"]); zgen.set_state(st["zgen"])
        step, elapsed_before = int(st["step"]), float(st["elapsed"])
    # keep the log consistent with the resumed step
    rows = []
    if step > 0 and csv_path.is_file():
        rows = [r for r in csv.DictReader(open(csv_path)) if int(r["step"]) <= step]
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, CSV_FIELDS)
        w.writeheader()
        w.writerows(rows)

    def save_all(final: bool, stopped: str | None) -> None:
        torch.save({"G": G.state_dict(), "D": D.state_dict(), "opt_G": opt_G.state_dict(),
                    "opt_D": opt_D.state_dict(), "sampler": sampler.state(), "zgen": zgen.get_state(),
                    "step": step, "elapsed": elapsed_before + (time.time() - t_loop),
                    "config": json.dumps(cfg.to_dict())}, state_path)
        done_cfg = dataclasses.replace(cfg, steps=step)
        prov = {"kind": "dcgan", "steps": step, "training": cfg.to_dict(), "data": sampler.recipe,
                "completed": final and stopped is None, "stopped": stopped,
                "train_seconds": round(elapsed_before + (time.time() - t_loop), 1),
                "device": str(device), "torch_threads": torch.get_num_threads(),
                "regenerate": regenerate_command(done_cfg, out_dir, checkpoint),
                "objective": "BCE-with-logits D loss, non-saturating G loss (DCGAN)"}
        prov.update(extra_provenance or {})
        G.eval(); D.eval()
        save_prior(checkpoint, G, D, prov, dtype=dtype)
        G.train(); D.train()

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
    writer = csv.DictWriter(fcsv, CSV_FIELDS)
    steps_this_run = 0
    try:
        while step < cfg.steps:
            if cfg.max_minutes is not None and (time.time() - t_start) > 60 * cfg.max_minutes:
                stopped = "wall_time"
                break
            real = sampler.next()
            z = torch.randn(real.shape[0], cfg.nz, generator=zgen).to(device)
            last = train_step(G, D, opt_G, opt_D, real, z)
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
def discriminator_means(D: Discriminator, G: Generator, real: torch.Tensor, seed: int = 0,
                        batch: int = 256) -> dict:
    """Mean ``sigmoid(D)`` on real images (in [0,1]) and on as many samples of ``G``.

    Both networks in their current mode (use eval mode, as GAN-prior methods do).
    """
    dev = next(D.parameters()).device
    g = torch.Generator().manual_seed(seed)
    r, f = [], []
    for i in range(0, real.shape[0], batch):
        xb = real[i:i + batch].to(dev)
        r.append(torch.sigmoid(D(to_gan(xb))).cpu())
        z = torch.randn(xb.shape[0], G.nz, generator=g).to(dev)
        f.append(torch.sigmoid(D(G(z))).cpu())
    r, f = torch.cat(r), torch.cat(f)
    return {"D_real_mean": r.mean().item(), "D_fake_mean": f.mean().item(),
            "frac_real_above_half": (r > 0.5).float().mean().item(),
            "frac_fake_below_half": (f < 0.5).float().mean().item(), "n": int(r.numel())}


def write_prior_samples(prior_spec, prior_png, teacher_png=None, check_json=None, n: int = 64,
                        seed: int = 0, n_check: int = 256, check_seed: int = 4321,
                        device=None) -> dict:
    """Sample grids of a prior and of the teacher, and the discriminator check.

    ``prior_png``: ``n`` samples of the prior's G from latents fixed by ``seed``;
    ``teacher_png``: the same latents through the teacher generator (the
    in-range face distribution the demo prior was trained on);
    ``check_json``: mean ``sigmoid(D)`` on ``n_check`` teacher faces (8-bit
    quantised, latents from ``check_seed``, disjoint from training's) versus on
    as many samples of G -- a trained D should score the real faces higher.
    """
    from .checkpoint import TEACHER_SPEC, load_prior

    prior = load_prior(prior_spec, device=device)
    save_grid_png(prior_png, sample_grid(prior.G, n, seed=seed))
    out = {"prior": str(prior_spec), "n_grid": n, "grid_seed": seed}
    if teacher_png is not None:
        teacher = load_prior(TEACHER_SPEC, device=prior.device)
        save_grid_png(teacher_png, sample_grid(teacher.G, n, seed=seed))
    if check_json is not None:
        if prior.D is not None:
            real = teacher_faces(n_check, seed=check_seed, device=prior.device)
            out.update(discriminator_means(prior.D, prior.G, real, seed=check_seed + 1))
            out["real"] = f"{n_check} teacher faces (gan-face-generate), uint8, latent seed {check_seed}"
        else:
            out["D_real_mean"] = out["D_fake_mean"] = None
            out["note"] = "this prior has no discriminator"
        write_json_atomic(check_json, out)
    return out
