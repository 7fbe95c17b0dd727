"""``cgan`` -- the direct approach: one forward pass of a conditional GAN trained
for the task (seed 004, Chen, Ji, Zhang; networks and training in
:mod:`ganrestore.cgan`).

    x_hat = compose(G_task(A_input(y), c), y)

``G_task`` is the generator trained on (corrupted, clean) pairs of *this*
task; ``c`` the condition channel (the inpainting hole, a zero channel
elsewhere, :func:`ganrestore.cgan.models.condition_map`); ``compose`` keeps the
observed pixels where they are exact (noiseless inpainting).  No prior, no
optimisation: the method is as good as the training its checkpoint had, and
it has a checkpoint only for the corruptions it was trained on (the Yeh slides'
"a new model needs to be trained for each new corruption").

Which checkpoint: ``cfg['extra_inputs']['cgan_checkpoint']`` (the workflow:
rule ``train_cgan``'s output or the committed checkpoint named by the config's
``cgan.checkpoint``), else ``cfg['checkpoint']`` (a stem; ``{task}`` is
replaced by the task's name), else the committed demo checkpoint
``ganrestore/cgan/checkpoints/demo_cgan_{task}``.  A missing checkpoint is a
``FileNotFoundError`` that names the task, the path and how to train one; a
checkpoint trained for another task is refused unless ``cfg['cross_task']``
is true (the cross-corruption table, :mod:`ganrestore.cgan.cross`, does that
on purpose).

Diagnostics: ``objective`` = ``||y - A x_hat||^2`` (library units),
``iterations`` 0, ``seconds``; the sidecar of the checkpoint used is the
artifact's provenance (``trained_on`` in ``extras``).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from . import register
from .base import Restoration

#: the committed demo checkpoints (one per Yeh task), relative to the checkout
DEMO_CHECKPOINT = "ganrestore/cgan/checkpoints/demo_cgan_{task}"
KEYS = {"checkpoint", "cross_task", "device", "extra_inputs", "per_task"}

_CACHE: dict = {}


def _root() -> Path:
    return Path(__file__).resolve().parents[2]


def checkpoint_stem(cfg: dict, task) -> Path:
    """The checkpoint stem this method uses for ``task`` (see the module docstring)."""
    name = getattr(task, "name", None)
    extra = (cfg.get("extra_inputs") or {}).get("cgan_checkpoint")
    stem = extra or cfg.get("checkpoint") or DEMO_CHECKPOINT
    if "{task}" in str(stem):
        if name is None:
            raise ValueError("cgan: the checkpoint pattern needs the task")
        stem = str(stem).replace("{task}", name)
    p = Path(str(stem))
    if p.suffix in (".json", ".safetensors"):
        p = p.with_suffix("")
    if not p.is_absolute() and not Path(f"{p}.json").exists() and Path(_root() / f"{p}.json").exists():
        p = _root() / p                     # a relative stem shipped with the checkout
    return p


def load_for(cfg: dict, task, device) -> "CGANCheckpoint":  # noqa: F821
    """The checkpoint of ``task`` (cached per process; sha256-checked on first load)."""
    from ..cgan.checkpoint import json_path, load_cgan  # noqa: PLC0415

    stem = checkpoint_stem(cfg, task)
    jp = json_path(stem)
    name = getattr(task, "name", "?")
    if not jp.is_file():
        raise FileNotFoundError(
            f"cgan: no checkpoint for task {name!r}: {jp} does not exist. The direct approach needs a "
            f"generator trained for each corruption: train one with the workflow (cgan: {{train: true}}, "
            f"rule train_cgan) or `python scripts/train_cgan.py --task {name} --out <dir> --checkpoint "
            f"<stem>`, or restrict the method with method_tasks.cgan to the tasks that have one")
    st = jp.stat()
    key = (str(jp.resolve()), st.st_mtime_ns, st.st_size, str(device))
    if key not in _CACHE:
        _CACHE.clear()                      # one checkpoint at a time: a job uses one
        _CACHE[key] = load_cgan(stem, device=device)
    ck = _CACHE[key]
    if ck.task != name and not cfg.get("cross_task", False):
        raise ValueError(f"cgan: checkpoint {stem} was trained for task {ck.task!r}, not {name!r} "
                         "(set cross_task: true to apply it to another task on purpose)")
    size = int(ck.meta.get("training", {}).get("image_size", 64))
    if getattr(task.op, "image_size", size) != size:
        raise ValueError(f"cgan: checkpoint {stem} was trained on {size}px images, the task has "
                         f"{task.op.image_size}px")
    return ck


def _check(cfg, task, config=None):
    """Config check at start-up: known keys only (the checkpoint's presence is checked by the workflow)."""
    unknown = sorted(set(cfg) - KEYS)
    if unknown:
        raise ValueError(f"unknown keys {unknown}; known: {sorted(KEYS - {'extra_inputs', 'per_task'})}")


@register("cgan", gpu=True, check=_check)
def restore_cgan(y, op, prior, cfg, seeds, upstream=None, task=None):
    """Conditional GAN of seed 004: one forward pass of the generator trained for the task."""
    from ..cgan.train import restore_batch  # noqa: PLC0415

    t0 = time.perf_counter()
    if task is None:
        raise ValueError("cgan needs the task (its checkpoint is per task)")
    dev = torch.device(cfg["device"]) if cfg.get("device") else (
        torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu"))
    ck = load_for(cfg, task, dev)
    if hasattr(op, "to"):
        op = op.to(dev)
    y = y.to(dev).float()
    with torch.no_grad():
        x_hat = restore_batch(ck.G, y, task, int(op.image_size)).clamp(0, 1)
        r = op.A(x_hat) - y
        obj = (r * r).flatten(1).sum(1).double().cpu().numpy()
    B = y.shape[0]
    return Restoration(x_hat, {"objective": obj, "iterations": np.zeros(B, np.int64),
                               "seconds": np.full(B, (time.perf_counter() - t0) / B)},
                       {"trained_on": np.array([str(ck.task)] * B)})
