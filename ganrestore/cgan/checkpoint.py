"""cGAN checkpoints: one per task, safetensors weights + a JSON provenance sidecar.

A checkpoint is a *stem* ``<dir>/<name>`` with ``<stem>.safetensors`` (the
generator's tensors under ``G.<param>``; floating tensors optionally stored as
float16 and loaded back as float32) and ``<stem>.json``: format, the task the
generator was trained for, its architecture and tensor table, the training
configuration, steps, data recipe, the command that regenerates it and the
sha256 of the weights.  The discriminator is not stored (restoration needs
only G; a training run's resume state keeps D).

:func:`load_cgan` refuses a weights file whose sha256 differs from the
sidecar's, and tensors whose names or shapes differ from the architecture.

>>> import tempfile
>>> d = tempfile.mkdtemp()
>>> _ = save_cgan(f"{d}/c", CGANGenerator(width=8, dilated_width=8), {"task": "sr4"})
>>> load_cgan(f"{d}/c").task
'sr4'
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..io import atomic_path, sha256_file, versions, write_json_atomic
# one stem / path convention and one provenance stamp for every checkpoint of the project
from ..priors.checkpoint import code_version, json_path, stem_of, weights_path
from .models import CGANGenerator

FORMAT = "ganrestore-cgan/1"


def build_generator(arch: dict) -> CGANGenerator:
    """A generator from its ``arch()`` dict (unknown names or keys refused)."""
    if arch.get("name") != "cgan_seed004_generator":
        raise ValueError(f"unknown cGAN architecture {arch.get('name')!r}")
    keys = {"width", "dilated_width", "in_channels", "dilations"}
    unknown = sorted(set(arch) - keys - {"name"})
    if unknown:
        raise ValueError(f"cGAN architecture: unknown keys {unknown}")
    kw = {k: arch[k] for k in keys if k in arch}
    if "dilations" in kw:
        kw["dilations"] = tuple(kw["dilations"])
    return CGANGenerator(**kw)


@dataclass
class CGANCheckpoint:
    """A loaded checkpoint: the generator (eval mode, float32) and its provenance."""
    G: CGANGenerator
    meta: dict = field(default_factory=dict)
    stem: str = ""

    @property
    def task(self) -> str | None:
        return self.meta.get("task")


def save_cgan(path_stem, G: CGANGenerator, provenance: dict, dtype: torch.dtype = torch.float32) -> Path:
    """Write ``<stem>.safetensors`` then ``<stem>.json`` (both atomically); return the stem."""
    from safetensors.torch import save_file

    stem = stem_of(path_stem)
    tensors = {}
    for k, v in G.state_dict().items():
        v = v.detach().to("cpu")
        tensors[f"G.{k}"] = (v.to(dtype) if v.is_floating_point() else v).contiguous()
    wp = weights_path(stem)
    with atomic_path(wp, suffix=".safetensors") as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT})
    meta = dict(provenance)
    meta.update({"format": FORMAT, "weights": wp.name, "sha256": sha256_file(wp), "bytes": wp.stat().st_size,
                 "storage_dtype": str(dtype).replace("torch.", ""),
                 "G": {"arch": G.arch(), "tensors": {k: list(v.shape) for k, v in G.state_dict().items()}},
                 "code_version": code_version(), "versions": versions(),
                 "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    write_json_atomic(json_path(stem), meta)
    return stem


def read_meta(path_stem) -> dict:
    """The sidecar of a checkpoint (``FileNotFoundError`` when absent)."""
    jp = json_path(path_stem)
    if not jp.is_file():
        raise FileNotFoundError(f"cGAN checkpoint sidecar {jp} not found")
    try:
        meta = json.loads(jp.read_text())
    except ValueError as e:
        raise ValueError(f"{jp}: not a readable JSON sidecar ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ValueError(f"{jp}: format {got!r}, expected {FORMAT!r}")
    return meta


def load_cgan(path_stem, device=None) -> CGANCheckpoint:
    """Load a cGAN checkpoint (stem, ``.json`` or ``.safetensors``) in eval mode, float32."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    stem = stem_of(path_stem)
    meta = read_meta(stem)
    jp = json_path(stem)
    wp = jp.with_name(meta.get("weights", weights_path(stem).name))
    if not wp.is_file():
        raise FileNotFoundError(f"cGAN weights {wp} (named by {jp}) not found")
    actual = sha256_file(wp)
    if actual != meta.get("sha256"):
        raise ValueError(f"{wp}: sha256 mismatch: {jp.name} records {meta.get('sha256')} but the file "
                         f"hashes to {actual}; regenerate it with the sidecar's 'regenerate' command")
    arch = (meta.get("G") or {}).get("arch")
    if not isinstance(arch, dict):
        raise ValueError(f"{jp}: no generator architecture recorded")
    with torch.device("meta"):
        want = {k: list(v.shape) for k, v in build_generator(arch).state_dict().items()}
    with safe_open(str(wp), framework="pt") as f:
        got = {k[2:]: list(f.get_slice(k).get_shape()) for k in f.keys() if k.startswith("G.")}
    if got != want:
        bad = sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))
        raise ValueError(f"{wp}: tensors do not match the architecture {arch}: {bad[:8]} "
                         f"(file {[got.get(k) for k in bad[:3]]} vs {[want.get(k) for k in bad[:3]]})")
    G = build_generator(arch)
    state = {k[2:]: v.float() if v.is_floating_point() else v for k, v in load_file(str(wp)).items()
             if k.startswith("G.")}
    G.load_state_dict(state)
    G = G.to(torch.device(device) if device is not None else "cpu").eval()
    for p in G.parameters():
        p.requires_grad_(False)
    return CGANCheckpoint(G=G, meta=meta, stem=str(stem))


__all__ = ["FORMAT", "CGANCheckpoint", "save_cgan", "load_cgan", "read_meta", "build_generator", "stem_of",
           "weights_path", "json_path"]
