"""Tasks: a named operator + noise level + optional quantisation.

Names follow the design card: ``inpaint_center32``, ``colorize``, ``sr4``,
``denoise_sigma0.1``, ``quantize5``, and ``sr<k>_noise<sigma>`` (noise sigma in
[0, 1] pixel units everywhere).  A corruption is

    y = Q(A x + sigma * eps),   eps ~ N(0, I) drawn from the image's own seed,

with Q the optional uniform quantiser to L levels per channel.  The noise is not
clipped (the Gaussian model the methods assume).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch

from . import operators as ops
from .seeding import image_seeds, randn_per_image


@dataclass
class Task:
    name: str
    op: ops.Operator
    sigma: float = 0.0
    levels: int | None = None
    family: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def noisy(self) -> bool:
        return self.sigma > 0 or self.levels is not None

    def spec(self) -> dict:
        return {"name": self.name, "operator": self.op.spec(), "sigma": self.sigma,
                "levels": self.levels, "family": self.family}


def quantize(x: torch.Tensor, levels: int) -> torch.Tensor:
    """Uniform quantiser to ``levels`` values in [0, 1] (inputs clipped first)."""
    q = levels - 1
    return torch.round(x.clamp(0, 1) * q) / q


_PATTERNS = [
    (re.compile(r"^inpaint_center(\d+)$"), "inpaint"),
    (re.compile(r"^colorize$"), "colorize"),
    (re.compile(r"^sr(\d+)(?:_noise([0-9.]+))?$"), "sr"),
    (re.compile(r"^denoise_sigma([0-9.]+)$"), "denoise"),
    (re.compile(r"^quantize(\d+)$"), "quantize"),
]

# Families added by later modules (e.g. compressed sensing, deblurring) register
# a builder here: name regex -> callable(match, image_size) -> Task.
EXTRA_TASKS: list[tuple[re.Pattern, object]] = []


def task_names_help() -> str:
    return ("inpaint_center<h>, colorize, sr<k>[_noise<sigma>], denoise_sigma<sigma>, "
            "quantize<levels>" + "".join(f", {p.pattern}" for p, _ in EXTRA_TASKS))


def _sigma(name: str, text: str, positive: bool) -> float:
    """A noise level from a task name: in [0, 1] pixel units (0 excluded where ``positive``)."""
    try:
        sigma = float(text)
    except ValueError:
        raise ValueError(f"task {name!r}: noise level {text!r} is not a number") from None
    if not (0 < sigma <= 1 if positive else 0 <= sigma <= 1):
        raise ValueError(f"task {name!r}: noise sigma {sigma:g} must be in {'(0' if positive else '[0'}, 1] "
                         "(pixel units, images in [0, 1]; e.g. 0.1 for 25.5/255)")
    return sigma


def make_task(name: str, image_size: int = 64) -> Task:
    """Build a :class:`Task` from its config name; unknown names and out-of-range
    parameters raise ``ValueError`` naming the task."""
    for pat, fam in _PATTERNS:
        m = pat.match(name)
        if not m:
            continue
        if fam == "inpaint":
            hole = int(m.group(1))
            if not 1 <= hole < image_size:
                raise ValueError(f"task {name!r}: the hole must be 1 to {image_size - 1} px for {image_size}px images")
            return Task(name, ops.Inpainting.center_hole(image_size, int(m.group(1))), family=fam)
        if fam == "colorize":
            return Task(name, ops.Grayscale(image_size), family=fam)
        if fam == "sr":
            factor = int(m.group(1))
            if factor < 2 or image_size % factor:
                raise ValueError(f"task {name!r}: factor must be >=2 and divide {image_size}")
            sigma = _sigma(name, m.group(2), positive=False) if m.group(2) else 0.0
            return Task(name, ops.BicubicDownsample(image_size, factor), sigma=sigma, family=fam,
                        extra={"factor": factor})
        if fam == "denoise":
            sigma = _sigma(name, m.group(1), positive=True)
            return Task(name, ops.Identity(image_size), sigma=sigma, family=fam)
        if fam == "quantize":
            levels = int(m.group(1))
            if not 2 <= levels <= 256:
                raise ValueError(f"task {name!r}: needs 2 to 256 levels per channel")
            return Task(name, ops.Identity(image_size), levels=levels, family=fam)
    for pat, builder in EXTRA_TASKS:
        m = pat.match(name)
        if m:
            return builder(m, image_size)
    raise ValueError(f"unknown task {name!r}; known forms: {task_names_help()}")


def corrupt(x: torch.Tensor, task: Task, ids, global_seed: int) -> torch.Tensor:
    """Observation ``y`` for clean images ``x`` (B,3,H,W); noise seeded per image id."""
    y = task.op.A(x)
    if task.sigma > 0:
        eps = randn_per_image(image_seeds(global_seed, task.name, ids, "noise"), y.shape[1:], x.device)
        y = y + task.sigma * eps
    if task.levels is not None:
        y = quantize(y, task.levels)
    return y
