"""Training of one conditional GAN per task (seed 004; Iizuka et al. 2017's schedule).

Clean training faces are corrupted on the fly with the task's own operator,
noise and quantisation (:func:`ganrestore.tasks.make_task`,
:func:`ganrestore.tasks.corrupt`; the noise of training image ``k`` of step
``t`` is seeded by its id ``cgan-train/<t>/<k>``, so it never repeats a test
image's), the generator restores them, and the fused global + local
discriminator (:class:`~ganrestore.cgan.models.FusedDiscriminator`) judges the
result against the clean face.  With ``x`` the clean face, ``c`` the condition
channel, ``x_hat`` the restoration (composited with the observed pixels where
they are exact, :func:`compose`) and ``l = D(., c)`` logits::

    L_D = BCE(l(x), 1) + BCE(l(x_hat), 0)                 (§3.5 eq. 3)
    L_G = rec_weight * REC(x_hat, x) + adv_weight * BCE(l(x_hat), 1)

``REC`` is the mean squared (``rec_loss: l2``, Iizuka et al.) or absolute
(``l1``) error in [0, 1] units; the adversarial term is the non-saturating
form of §3.5 eq. 2; the defaults are Iizuka et al.'s weights (MSE +
0.0004 x GAN; seed 004 gives none).  Algorithm 1's schedule (Iizuka et al.'s):
the first ``pretrain_g_steps`` update G with the reconstruction loss alone,
the next ``pretrain_d_steps`` update D alone, then every step updates D and
then G with the joint loss.  Adam for both; the generator's Adam restarts with
fresh moments (and ``lr_g_joint``, when set) at the joint phase
(:func:`joint_optimizer`).  The attribute classifier (§3.4)
is not trained.

Everything random derives from ``seed`` (initialisation, data order, crops)
and ``task_seed`` (the experiment's seed: operator and noise); the run can be
stopped by a wall-time budget and resumed from its state file, and a resumed
run equals an uninterrupted one on the same machine and thread count
(``tests/test_cgan.py``).

>>> cfg = CGANTrainConfig(task="sr4", steps=1, batch_size=2, width=8, dilated_width=8, ndf=8,
...                       d_features=16, sample_every=0, checkpoint_every=0, val_images=0)
>>> import tempfile; out = train_cgan(cfg, tempfile.mkdtemp(), data=torch.rand(4, 3, 64, 64), progress=False)
>>> out["steps"]
1
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import shlex
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from ..io import atomic_path, load_split, write_json_atomic
from ..tasks import Task, corrupt, make_task
from .checkpoint import save_cgan
from .models import CGANGenerator, FusedDiscriminator, generator_input, local_crop_boxes


@dataclass
class CGANTrainConfig:
    """Hyper-parameters of one cGAN training run (all recorded in the provenance)."""

    task: str = "inpaint_center32"  # the task whose corruption the generator learns to undo
    task_seed: int = 0             # the experiment's seed (operator draws and noise, as make_task/corrupt)
    image_size: int = 64
    width: int = 64                # Table 1's first width (64; RB widths w, 2w, 4w)
    dilated_width: int = 1024      # Table 1's dilated stage (1024)
    ndf: int = 64                  # discriminators' first width
    d_features: int = 1024         # each discriminator's feature vector (Iizuka et al.: 1024)
    local_size: int | None = None  # local discriminator's crop (None: 3/4 of image_size)
    steps: int = 20000
    batch_size: int = 32
    lr_g: float = 2e-4
    lr_g_joint: float | None = None  # G's learning rate in the joint phase (None: lr_g); fresh Adam moments there
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    rec_loss: str = "l2"           # "l2" (MSE, Iizuka et al.) or "l1"
    rec_weight: float = 1.0
    adv_weight: float = 0.0004     # Iizuka et al.'s alpha
    pretrain_g_steps: int = 4000   # Algorithm 1's T_g: G with the reconstruction loss only
    pretrain_d_steps: int = 500    # Algorithm 1's T_d: D only
    seed: int = 0
    data: str = "teacher"          # "teacher" or the path of a prepared split (.npz)
    teacher_pool: int = 8192       # with data "teacher": a fixed pool of this many 8-bit teacher faces
    val_data: str | None = None    # split .npz for the validation PSNR (None: held-out teacher faces)
    val_images: int = 64           # validation images (0: no validation)
    sample_every: int = 500        # sample grid + validation PSNR every N steps (0: only at the end)
    checkpoint_every: int = 500    # checkpoint + resume state every N steps (0: only at the end)
    log_every: int = 10
    max_minutes: float | None = None   # wall-time budget; stops cleanly and checkpoints
    threads: int | None = None
    storage_dtype: str = "float32"

    #: settings that may change between a run and its resumption
    RESUMABLE = ("steps", "max_minutes", "threads", "sample_every", "checkpoint_every", "log_every")

    @classmethod
    def from_dict(cls, d: dict) -> "CGANTrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown cGAN training settings {sorted(unknown)}; known: {sorted(names)}")
        return cls(**d)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def local(self) -> int:
        return int(self.local_size) if self.local_size else (3 * self.image_size) // 4

    def check(self) -> None:
        if self.rec_loss not in ("l1", "l2"):
            raise ValueError(f"rec_loss must be 'l1' or 'l2', got {self.rec_loss!r}")
        if self.storage_dtype not in ("float32", "float16"):
            raise ValueError(f"storage_dtype must be float32 or float16, got {self.storage_dtype!r}")
        make_task(self.task, self.image_size, self.task_seed)


def compose(out: torch.Tensor, y: torch.Tensor, task: Task) -> torch.Tensor:
    """The restoration from the generator's output ``out`` (in [0, 1]): where the
    operator observes pixels exactly (a pixel mask on a noiseless task: the
    inpainting context), those pixels are the observation's; elsewhere ``out``."""
    m = task.op.pixel_mask()
    if m is None or task.noisy or bool((m == 1).all()):
        return out
    m = m.to(out).view(1, 1, *m.shape)
    return m * task.op.A_input(y).clamp(0, 1) + (1 - m) * out


def restore_batch(G: CGANGenerator, y: torch.Tensor, task: Task, image_size: int) -> torch.Tensor:
    """One forward pass: observations ``y`` of ``task`` -> restorations in [0, 1]."""
    inp, _ = generator_input(y, task.op, image_size)
    return compose((G(inp) + 1) * 0.5, y, task)


# ----------------------------------------------------------------------------- data
class _Sampler:
    """Minibatches of clean faces in [0, 1] (a uint8 pool, epochs of a seeded permutation)."""

    def __init__(self, cfg: CGANTrainConfig, data, device):
        from ..priors.train import EpochOrder, teacher_faces_u8  # noqa: PLC0415

        self.cfg, self.device = cfg, device
        self.order = EpochOrder(cfg.seed * 1000 + 1)
        if data is not None:
            self.pool = data if isinstance(data, torch.Tensor) else torch.as_tensor(data)
            self.recipe = {"kind": "tensor", "n": int(self.pool.shape[0])}
        elif cfg.data == "teacher":
            if cfg.teacher_pool < 1:
                raise ValueError("teacher_pool must be >= 1")
            self.pool = teacher_faces_u8(cfg.teacher_pool, seed=cfg.seed * 1000 + 2, device=device).cpu()
            self.recipe = {"kind": "teacher_pool", "source": "teacher:gan-face-generate", "n": cfg.teacher_pool,
                           "latent_seed": cfg.seed * 1000 + 2, "quantised": "uint8"}
        else:
            x, ids = load_split(cfg.data)
            self.pool = x
            self.recipe = {"kind": "split", "path": str(cfg.data), "n": len(ids)}
        s = cfg.image_size
        if tuple(self.pool.shape[1:]) != (3, s, s):
            raise ValueError(f"training images must be (N,3,{s},{s}); got {tuple(self.pool.shape)} from {cfg.data!r}")
        if self.pool.shape[0] < cfg.batch_size:
            raise ValueError(f"{self.pool.shape[0]} training images < batch size {cfg.batch_size}")

    def state(self) -> dict:
        return self.order.state()

    def load_state(self, s: dict) -> None:
        self.order.load_state(s)

    def next(self) -> torch.Tensor:
        x = self.pool[self.order.take(self.pool.shape[0], self.cfg.batch_size)]
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        return x.to(self.device)


def validation_images(cfg: CGANTrainConfig, device) -> tuple[torch.Tensor, list[str], dict]:
    """The fixed validation faces: ``val_data`` (first ``val_images``) or held-out teacher faces."""
    if cfg.val_images < 1:
        return torch.empty(0, 3, cfg.image_size, cfg.image_size), [], {"kind": "none"}
    if cfg.val_data:
        x, ids = load_split(cfg.val_data)
        n = min(cfg.val_images, x.shape[0])
        return x[:n].to(device), ids[:n], {"kind": "split", "path": str(cfg.val_data), "n": n}
    if cfg.data != "teacher":
        return torch.empty(0, 3, cfg.image_size, cfg.image_size), [], {"kind": "none"}
    from ..priors.train import teacher_faces  # noqa: PLC0415

    seed = cfg.seed * 1000 + 5
    x = teacher_faces(cfg.val_images, seed=seed, device=device)
    return x, [f"cgan-val/{i}" for i in range(cfg.val_images)], {
        "kind": "teacher", "n": cfg.val_images, "latent_seed": seed, "quantised": "uint8"}


# ----------------------------------------------------------------------------- losses and steps
def reconstruction(x_hat: torch.Tensor, x: torch.Tensor, kind: str) -> torch.Tensor:
    return F.mse_loss(x_hat, x) if kind == "l2" else F.l1_loss(x_hat, x)


@dataclass
class Batch:
    """One training batch: clean ``x``, observation ``y``, generator input, condition, crops."""
    x: torch.Tensor
    y: torch.Tensor
    inp: torch.Tensor
    c: torch.Tensor
    boxes: torch.Tensor


def make_batch(x: torch.Tensor, task: Task, cfg: CGANTrainConfig, step: int, crop_gen: torch.Generator) -> Batch:
    """Corrupt clean faces ``x`` with the task (noise seeded by ``cgan-train/<step>/<k>``)."""
    ids = [f"cgan-train/{step}/{k}" for k in range(x.shape[0])]
    y = corrupt(x, task, ids, cfg.task_seed)
    inp, c = generator_input(y, task.op, cfg.image_size)
    boxes = local_crop_boxes(task.op, x.shape[0], cfg.image_size, cfg.local, crop_gen)
    return Batch(x, y, inp, c, boxes)


def generate(G, b: Batch, task: Task) -> torch.Tensor:
    return compose((G(b.inp) + 1) * 0.5, b.y, task)


def d_loss(D, b: Batch, x_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    l_real = D(b.x * 2 - 1, b.c, b.boxes)
    l_fake = D(x_hat.detach() * 2 - 1, b.c, b.boxes)
    loss = (F.binary_cross_entropy_with_logits(l_real, torch.ones_like(l_real))
            + F.binary_cross_entropy_with_logits(l_fake, torch.zeros_like(l_fake)))
    return loss, l_real, l_fake


def g_loss(G, D, b: Batch, task: Task, cfg: CGANTrainConfig, adversarial: bool) -> tuple[torch.Tensor, dict]:
    """The generator's objective on a batch: ``rec_weight * REC (+ adv_weight * BCE(D(x_hat), 1))``."""
    x_hat = generate(G, b, task)
    rec = reconstruction(x_hat, b.x, cfg.rec_loss)
    loss = cfg.rec_weight * rec
    adv = torch.zeros(())
    if adversarial:
        l_gen = D(x_hat * 2 - 1, b.c, b.boxes)
        adv = F.binary_cross_entropy_with_logits(l_gen, torch.ones_like(l_gen))
        loss = loss + cfg.adv_weight * adv
    return loss, {"loss_rec": rec.item(), "loss_adv": adv.item(), "loss_G": loss.item()}


def joint_optimizer(G, cfg: CGANTrainConfig) -> torch.optim.Adam:
    """The generator's optimiser of the joint phase: Adam with ``lr_g_joint`` (or
    ``lr_g``) and fresh moments.  Carried over from the reconstruction-only phase,
    Adam's second-moment estimates are those of the reconstruction gradients, so
    the first adversarial gradients (other parameters, other scales) can take
    steps many times the learning rate: the demo's first generators collapsed to
    a constant image within ten joint steps that way."""
    lr = cfg.lr_g if cfg.lr_g_joint is None else cfg.lr_g_joint
    return torch.optim.Adam(G.parameters(), lr=lr, betas=(cfg.beta1, cfg.beta2))


def phase_of(step: int, cfg: CGANTrainConfig) -> str:
    """Algorithm 1: 'g' (reconstruction only), 'd' (discriminator only) or 'joint'."""
    if step < cfg.pretrain_g_steps:
        return "g"
    if step < cfg.pretrain_g_steps + cfg.pretrain_d_steps:
        return "d"
    return "joint"


def train_step(G, D, opt_G, opt_D, b: Batch, task: Task, cfg: CGANTrainConfig, phase: str) -> dict:
    """One update of the phase's networks (D first, then G in the joint phase)."""
    out = {"loss_D": math.nan, "D_real": math.nan, "D_fake": math.nan}
    if phase in ("d", "joint"):
        with torch.no_grad():
            x_hat = generate(G, b, task)
        loss_D, l_real, l_fake = d_loss(D, b, x_hat)
        opt_D.zero_grad(set_to_none=True)
        loss_D.backward()
        opt_D.step()
        out.update({"loss_D": loss_D.item(), "D_real": torch.sigmoid(l_real).mean().item(),
                    "D_fake": torch.sigmoid(l_fake).mean().item()})
    if phase in ("g", "joint"):
        loss, parts = g_loss(G, D, b, task, cfg, adversarial=phase == "joint")
        opt_G.zero_grad(set_to_none=True)
        loss.backward()
        opt_G.step()
        out.update(parts)
    else:
        out.update({"loss_rec": math.nan, "loss_adv": math.nan, "loss_G": math.nan})
    return out


@torch.no_grad()
def validate(G, x: torch.Tensor, ids: list[str], task: Task, cfg: CGANTrainConfig, batch: int = 64) -> dict:
    """Mean per-image PSNR (data range 1) of the restorations of ``x`` and of the input ``A_input(y)``."""
    if x.shape[0] == 0:
        return {}
    was = G.training
    G.eval()
    ps, pin, grid = [], [], None
    for a in range(0, x.shape[0], batch):
        xb = x[a:a + batch]
        y = corrupt(xb, task, ids[a:a + batch], cfg.task_seed)
        xh = restore_batch(G, y, task, cfg.image_size).clamp(0, 1)
        ps.append(10 * torch.log10(1 / ((xh - xb) ** 2).flatten(1).mean(1).clamp_min(1e-12)))
        x0 = task.op.A_input(y).clamp(0, 1)
        pin.append(10 * torch.log10(1 / ((x0 - xb) ** 2).flatten(1).mean(1).clamp_min(1e-12)))
        if grid is None:
            k = min(8, xb.shape[0])
            grid = torch.cat([x0[:k], xh[:k], xb[:k]])
    G.train(was)
    return {"val_psnr": torch.cat(ps).mean().item(), "val_psnr_input": torch.cat(pin).mean().item(),
            "grid": grid}


# ----------------------------------------------------------------------------- pictures
CSV_FIELDS = ["step", "seconds", "phase", "loss_rec", "loss_adv", "loss_G", "loss_D", "D_real", "D_fake",
              "val_psnr"]


def plot_losses(csv_path, png_path, title: str = "") -> None:
    """Reconstruction / adversarial / discriminator losses and validation PSNR of a training log."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    rows = list(csv.DictReader(open(csv_path)))
    if not rows:
        return

    def col(k):
        return np.array([float(r[k]) if r.get(k) not in (None, "") else np.nan for r in rows])

    step = col("step")
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.4))
    ax[0].semilogy(step, col("loss_rec"), lw=0.8)
    ax[0].set_title("reconstruction loss (G)")
    for k in ("loss_D", "loss_adv"):
        ax[1].plot(step, col(k), lw=0.8, label={"loss_D": "D: BCE real + fake", "loss_adv": "G: BCE(D(x_hat), 1)"}[k])
    ax[1].set_title("adversarial losses")
    ax[1].legend(fontsize=7)
    v = col("val_psnr")
    ok = np.isfinite(v)
    ax[2].plot(step[ok], v[ok], "o-", ms=3)
    ax[2].set_title("validation PSNR (dB)")
    for a in ax:
        a.set_xlabel("step")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(png_path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


# ----------------------------------------------------------------------------- training
def regenerate_command(cfg: CGANTrainConfig, out_dir, checkpoint) -> str:
    """The ``scripts/train_cgan.py`` command line that reproduces a run of ``cfg``."""
    args = ["python", "scripts/train_cgan.py", "--out", str(out_dir), "--checkpoint", str(checkpoint)]
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if f.name == "max_minutes" or v is None:
            continue
        args += [f"--{f.name.replace('_', '-')}", str(v)]
    return shlex.join(args)


def train_cgan(cfg: CGANTrainConfig, out_dir, checkpoint=None, device=None, data=None, resume: bool = True,
               progress: bool = True, extra_provenance: dict | None = None) -> dict:
    """Train the cGAN of ``cfg.task`` and write its checkpoint.

    Writes into ``out_dir``: ``losses.csv``, ``loss.png``, ``samples/step_<k>.png``
    and ``samples.png`` (rows: observation, restoration, truth of 8 validation
    faces), ``train_state.pt`` (resume state, ``weights_only`` loadable) and
    ``summary.json``; and the checkpoint at the stem ``checkpoint`` (default
    ``out_dir/cgan``) every ``checkpoint_every`` steps and at the end.  ``data``
    (a (N,3,H,W) tensor in [0,1]) overrides ``cfg.data`` (tests).
    """
    from ..priors.train import save_grid_png  # noqa: PLC0415

    t_start = time.time()
    cfg.check()
    out_dir = Path(out_dir)
    (out_dir / "samples").mkdir(parents=True, exist_ok=True)
    checkpoint = Path(checkpoint) if checkpoint is not None else out_dir / "cgan"
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    device = torch.device(device) if device is not None else torch.device(
        "cuda" if torch.cuda.is_available() else "cpu")
    dtype = {"float32": torch.float32, "float16": torch.float16}[cfg.storage_dtype]
    task = make_task(cfg.task, cfg.image_size, cfg.task_seed)
    task.op.to(device)

    torch.manual_seed(cfg.seed)
    G = CGANGenerator(cfg.width, cfg.dilated_width).to(device).train()
    D = FusedDiscriminator(cfg.image_size, cfg.local, cfg.ndf, cfg.d_features).to(device).train()
    opt_G = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    opt_D = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    sampler = _Sampler(cfg, data, device)
    x_val, val_ids, val_recipe = validation_images(cfg, device)
    t_data = time.time() - t_start
    crop_gen = torch.Generator().manual_seed(cfg.seed * 1000 + 3)

    state_path, csv_path = out_dir / "train_state.pt", out_dir / "losses.csv"
    step, elapsed_before = 0, 0.0
    if resume and state_path.is_file():
        st = torch.load(state_path, map_location="cpu", weights_only=True)
        saved = {k: v for k, v in json.loads(st["config"]).items() if k not in CGANTrainConfig.RESUMABLE}
        now = {k: v for k, v in cfg.to_dict().items() if k in saved}
        if saved != now:
            raise ValueError(f"{state_path}: resume state was written with a different config "
                             f"({saved} vs {now}); delete it to start over")
        G.load_state_dict(st["G"]); D.load_state_dict(st["D"])
        if int(st["step"]) > cfg.pretrain_g_steps + cfg.pretrain_d_steps:
            opt_G = joint_optimizer(G, cfg)
        opt_G.load_state_dict(st["opt_G"]); opt_D.load_state_dict(st["opt_D"])
        sampler.load_state(st["sampler"]); crop_gen.set_state(st["crop_gen"])
        step, elapsed_before = int(st["step"]), float(st["elapsed"])
    rows = []
    if step > 0 and csv_path.is_file():
        rows = [r for r in csv.DictReader(open(csv_path)) if int(r["step"]) <= step]
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, CSV_FIELDS)
        w.writeheader()
        w.writerows(rows)
    last_val = {}

    def save_all(final: bool, stopped: str | None) -> None:
        torch.save({"G": G.state_dict(), "D": D.state_dict(), "opt_G": opt_G.state_dict(),
                    "opt_D": opt_D.state_dict(), "sampler": sampler.state(), "crop_gen": crop_gen.get_state(),
                    "step": step, "elapsed": elapsed_before + (time.time() - t_loop),
                    "config": json.dumps(cfg.to_dict())}, state_path)
        done = dataclasses.replace(cfg, steps=step)
        prov = {"kind": "cgan_seed004", "task": cfg.task, "task_spec": task.spec(), "steps": step,
                "phase_at_end": phase_of(max(step - 1, 0), cfg), "training": cfg.to_dict(),
                "data": sampler.recipe, "validation": {**val_recipe, **{k: v for k, v in last_val.items()
                                                                         if k != "grid"}},
                "completed": final and stopped is None, "stopped": stopped,
                "train_seconds": round(elapsed_before + (time.time() - t_loop), 1),
                "device": str(device), "torch_threads": torch.get_num_threads(),
                "regenerate": regenerate_command(done, out_dir, checkpoint),
                "objective": (f"D: BCE(D(x),1) + BCE(D(x_hat),0) (global + local fused); G: "
                              f"{cfg.rec_weight} * {cfg.rec_loss.upper()} + {cfg.adv_weight} * BCE(D(x_hat),1); "
                              f"G-only {cfg.pretrain_g_steps} steps, D-only {cfg.pretrain_d_steps}, then joint")}
        prov.update(extra_provenance or {})
        G.eval()
        save_cgan(checkpoint, G, prov, dtype=dtype)
        G.train()

    evaluated_at = [-1]

    def evaluate(step_: int) -> None:
        nonlocal last_val
        last_val = validate(G, x_val, val_ids, task, cfg)
        evaluated_at[0] = step_
        if last_val.get("grid") is not None:
            save_grid_png(out_dir / "samples" / f"step_{step_:06d}.png", last_val["grid"], nrow=8)
            save_grid_png(out_dir / "samples.png", last_val["grid"], nrow=8)

    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=cfg.steps, initial=step, desc=f"train_cgan {cfg.task}", mininterval=5)
    t_loop = time.time()
    stopped, last, steps_this_run = None, {}, 0
    fcsv = open(csv_path, "a", newline="")
    writer = csv.DictWriter(fcsv, CSV_FIELDS)
    try:
        while step < cfg.steps:
            if cfg.max_minutes is not None and (time.time() - t_start) > 60 * cfg.max_minutes:
                stopped = "wall_time"
                break
            phase = phase_of(step, cfg)
            if step == cfg.pretrain_g_steps + cfg.pretrain_d_steps:
                opt_G = joint_optimizer(G, cfg)
            b = make_batch(sampler.next(), task, cfg, step, crop_gen)
            last = train_step(G, D, opt_G, opt_D, b, task, cfg, phase)
            used = (["loss_D"] if phase != "g" else []) + (["loss_G"] if phase != "d" else [])
            if not all(math.isfinite(last[k]) for k in used):
                raise FloatingPointError(f"non-finite losses at step {step + 1}: {last}")
            step += 1
            steps_this_run += 1
            val = None
            if (cfg.sample_every and step % cfg.sample_every == 0) or step == cfg.steps:
                evaluate(step)
                val = last_val.get("val_psnr")
            if step % cfg.log_every == 0 or step == cfg.steps or val is not None:
                writer.writerow({"step": step, "seconds": round(elapsed_before + time.time() - t_loop, 2),
                                 "phase": phase, **{k: round(v, 6) for k, v in last.items()},
                                 "val_psnr": "" if val is None else round(val, 3)})
                fcsv.flush()
            if bar is not None:
                bar.update(1)
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < cfg.steps:
                save_all(final=False, stopped=None)
                plot_losses(csv_path, out_dir / "loss.png", f"cGAN {cfg.task}")
    finally:
        fcsv.close()
        if bar is not None:
            bar.close()
    if evaluated_at[0] != step:            # stopped by the budget between evaluations, or resumed at the end
        evaluate(step)
        if last and last_val.get("val_psnr") is not None:
            with open(csv_path, "a", newline="") as f:
                csv.DictWriter(f, CSV_FIELDS).writerow({
                    "step": step, "seconds": round(elapsed_before + time.time() - t_loop, 2),
                    "phase": phase_of(max(step - 1, 0), cfg), **{k: round(v, 6) for k, v in last.items()},
                    "val_psnr": round(last_val["val_psnr"], 3)})
    save_all(final=True, stopped=stopped)
    plot_losses(csv_path, out_dir / "loss.png", f"cGAN {cfg.task}")
    # beside the checkpoint: its training log and last sample grid (what the report shows
    # when the workflow uses a committed checkpoint instead of training one)
    for src, suffix in ((csv_path, "_losses.csv"), (out_dir / "samples.png", "_samples.png")):
        if src.is_file():
            with atomic_path(f"{checkpoint}{suffix}") as tmp:
                shutil.copyfile(src, tmp)
    loop_s = time.time() - t_loop
    summary = {"task": cfg.task, "steps": step, "steps_this_run": steps_this_run, "stopped": stopped,
               "data_seconds": round(t_data, 1), "loop_seconds": round(loop_s, 1),
               "steps_per_second": round(steps_this_run / loop_s, 4) if loop_s > 0 else None,
               "last": last, "validation": {k: v for k, v in last_val.items() if k != "grid"},
               "checkpoint": str(checkpoint), "config": cfg.to_dict(), "data": sampler.recipe}
    write_json_atomic(out_dir / "summary.json", summary)
    return summary


__all__ = ["CGANTrainConfig", "train_cgan", "train_step", "joint_optimizer", "g_loss", "d_loss", "make_batch", "compose",
           "restore_batch", "phase_of", "validate", "plot_losses", "regenerate_command", "Batch"]


def plot_training_curves(logs: dict, png_path, pdf_path=None, notes: dict | None = None) -> None:
    """One row per task (``logs``: task -> losses CSV of :func:`train_cgan`):
    reconstruction loss, adversarial losses, validation PSNR; phase changes
    (Algorithm 1: G only, D only, joint) as dotted lines.  ``notes``: task ->
    text appended to the row's title (steps, budget)."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    tasks = list(logs)
    fig, axes = plt.subplots(max(len(tasks), 1), 3, figsize=(13, 2.6 * max(len(tasks), 1)), squeeze=False)
    for i, t in enumerate(tasks):
        rows = list(csv.DictReader(open(logs[t])))

        def col(k, rows=rows):
            return np.array([float(r[k]) if r.get(k) not in (None, "") else np.nan for r in rows])

        step = col("step")
        phases = [r.get("phase", "") for r in rows]
        ax = axes[i]
        ax[0].semilogy(step, col("loss_rec"), lw=0.8)
        ax[0].set_ylabel(t, fontsize=9)
        ax[1].plot(step, col("loss_D"), lw=0.8, label="D: BCE(real) + BCE(fake)")
        ax[1].plot(step, col("loss_adv"), lw=0.8, label="G: BCE(D(x_hat), 1)")
        v = col("val_psnr")
        ok = np.isfinite(v)
        ax[2].plot(step[ok], v[ok], "o-", ms=3)
        for a in ax:
            for k in range(1, len(phases)):
                if phases[k] != phases[k - 1]:
                    a.axvline(step[k - 1], ls=":", c="grey", lw=0.8)
        if i == 0:
            ax[0].set_title("reconstruction loss (MSE or L1)", fontsize=9)
            ax[1].set_title("adversarial losses", fontsize=9)
            ax[2].set_title("validation PSNR (dB)", fontsize=9)
            ax[1].legend(fontsize=7)
        if notes and notes.get(t):
            ax[2].text(0.02, 0.04, notes[t], transform=ax[2].transAxes, fontsize=7, va="bottom")
    for a in axes[-1]:
        a.set_xlabel("step")
    fig.tight_layout()
    with atomic_path(png_path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    if pdf_path:
        with atomic_path(pdf_path, suffix=".pdf") as tmp:
            fig.savefig(tmp, format="pdf")
    plt.close(fig)


def training_curves_job(logs: dict, metas: dict, png_path, pdf_path=None) -> None:
    """The workflow's figure job: curves of the checkpoints' logs, each row noted with
    its steps, training time and final validation PSNR from the checkpoint's sidecar."""
    notes = {}
    for t, p in metas.items():
        m = json.loads(Path(p).read_text())
        val = (m.get("validation") or {}).get("val_psnr")
        notes[t] = (f"{m.get('steps')} steps, {m.get('train_seconds')} s on {m.get('device')}"
                    + (f", val {val:.2f} dB" if val is not None else ""))
    plot_training_curves(logs, png_path, pdf_path, notes)
