"""Tasks: a named operator + noise level + optional quantisation.

A task name is a family's base name plus, for every family, an optional
generic noise suffix ``_noise<sigma>`` (sigma in [0, 1] pixel units, on the
measurements): ``inpaint_center32``, ``colorize``, ``sr4``, ``sr4_noise0.0392``,
``sr4_misaligned``, ``denoise_sigma0.1``, ``quantize5``, ``cs_gaussian_0.3``,
``cs_fourier_0.5_noise0.0392``, ``deblur_uniform9_noise0.0392``, and Yeh et al.'s
five as their official code makes them, ``<task>_official``
(:mod:`ganrestore.official`).  A corruption is

    y = Q(A T(x) + sigma * eps),   eps ~ N(0, I) drawn from the image's own seed,

with ``T`` the task's transform of the clean image (the identity but for
misaligned super-resolution, whose ground truth is the shifted image) and ``Q``
the optional uniform quantiser to L levels per channel.  The noise is not
clipped (the Gaussian model the methods assume).

The families are one table, :data:`FAMILIES`: a new task is one operator class
(:mod:`ganrestore.operators`) plus one :class:`Family` entry.  Operators that
depend on randomness (the Gaussian matrix, the Fourier mask) draw it from
``derive_seed(seed, base name, 'operator')``: the experiment's seed and the task
fix it, every image shares it.

Choices the papers leave unstated are task options (the config's
``task_options``, :data:`TASK_OPTIONS` with today's values as defaults), passed
to :func:`make_task` and read only by the families that name them
(:attr:`Family.options`):

* ``blur_boundary`` (``deblur_uniform<k>``): ``circular`` | ``zero`` |
  ``reflect`` (:class:`ganrestore.operators.UniformBlur`); IAGAN names none.
* ``misaligned_shift`` (``sr<k>_misaligned``): the vertical shift in pixels,
  ``None`` = ``image_size // 16`` (4 px at 64, 8 at 128); IAGAN says "a few
  pixels".

A task's :meth:`Task.spec` records the values it was built with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

import torch

from . import operators as ops
from .seeding import derive_seed, image_seeds, randn_per_image


@dataclass
class Task:
    name: str
    op: ops.Operator
    sigma: float = 0.0
    levels: int | None = None
    family: str = ""
    extra: dict = field(default_factory=dict)
    protocol: str = "slides"            # 'official': Yeh et al.'s official code (ganrestore.official)

    @property
    def noisy(self) -> bool:
        return self.sigma > 0 or self.levels is not None or self.extra.get("official_levels") is not None

    def clean(self, x: torch.Tensor) -> torch.Tensor:
        """The ground truth of this task for clean test images ``x`` (what the
        corruption starts from and what evaluation compares with)."""
        shift = int(self.extra.get("shift", 0) or 0)
        return shift_down(x, shift) if shift else x

    def spec(self) -> dict:
        out = {"name": self.name, "operator": self.op.spec(), "sigma": self.sigma,
               "levels": self.levels, "family": self.family, "protocol": self.protocol}
        if self.extra.get("shift"):
            out["shift"] = int(self.extra["shift"])
        return out


def shift_down(x: torch.Tensor, k: int) -> torch.Tensor:
    """Translate images down by ``k`` pixels, repeating the top row (IAGAN's
    misaligned faces: "vertically translated by a few pixels")."""
    if k <= 0:
        return x
    top = x[..., :1, :].expand(*x.shape[:-2], k, x.shape[-1])
    return torch.cat([top, x[..., :-k, :]], dim=-2)


def quantize(x: torch.Tensor, levels: int) -> torch.Tensor:
    """Uniform quantiser to ``levels`` values in [0, 1] (inputs clipped first)."""
    q = levels - 1
    return torch.round(x.clamp(0, 1) * q) / q


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


def _ratio(name: str, text: str) -> float:
    try:
        r = float(text)
    except ValueError:
        raise ValueError(f"task {name!r}: ratio {text!r} is not a number") from None
    if not 0 < r <= 1:
        raise ValueError(f"task {name!r}: the compression ratio m/n must be in (0, 1], got {r:g}")
    return r


#: The task options and their defaults (today's behaviour); config key ``task_options``
TASK_OPTIONS = {"blur_boundary": "circular", "misaligned_shift": None}


def task_options(options: dict | None = None) -> dict:
    """:data:`TASK_OPTIONS` updated by ``options`` (a ``None`` value keeps the
    default); unknown keys and bad values raise ``ValueError`` naming them."""
    opts = dict(TASK_OPTIONS)
    for k, v in (options or {}).items():
        if k not in TASK_OPTIONS:
            raise ValueError(f"task_options.{k}: unknown option; known: {', '.join(TASK_OPTIONS)}")
        if v is not None:
            opts[k] = v
    if opts["blur_boundary"] not in ops.BLUR_BOUNDARIES:
        raise ValueError(f"task_options.blur_boundary: {opts['blur_boundary']!r} is not one of "
                         f"{', '.join(ops.BLUR_BOUNDARIES)}")
    s = opts["misaligned_shift"]
    if s is not None and (isinstance(s, bool) or not isinstance(s, int) or s < 1):
        raise ValueError(f"task_options.misaligned_shift: {s!r} must be a whole number of pixels >= 1 (or null)")
    return opts


@dataclass(frozen=True)
class Family:
    """One task family: ``pattern`` matches the base name (no noise suffix);
    ``build(match, image_size, op_seed, name, **opts)`` returns ``(operator,
    fields)`` where ``fields`` sets Task fields (``sigma``, ``levels``,
    ``extra``); ``opts`` holds the task options named in ``options`` (none by
    default, so a plugin's builder need not take any)."""
    name: str
    pattern: str
    build: Callable
    help: str
    noise_suffix: bool = True
    options: tuple = ()


def _inpaint(m, size, seed, name):
    hole = int(m["hole"])
    if not 1 <= hole < size:
        raise ValueError(f"task {name!r}: the hole must be 1 to {size - 1} px for {size}px images")
    return ops.Inpainting.center_hole(size, hole), {}


def _sr(m, size, seed, name, misaligned_shift=None):
    factor = int(m["factor"])
    if factor < 2 or size % factor:
        raise ValueError(f"task {name!r}: factor must be >=2 and divide {size}")
    extra = {"factor": factor}
    if m["misaligned"]:
        # IAGAN: "vertically translated by a few pixels"; default size // 16 (4 px at 64, 8 px at 128)
        shift = max(1, size // 16) if misaligned_shift is None else int(misaligned_shift)
        if not 1 <= shift < size:
            raise ValueError(f"task {name!r}: task_options.misaligned_shift {shift} must be 1 to {size - 1} px")
        extra["shift"] = shift
    return ops.BicubicDownsample(size, factor), {"extra": extra}


def _denoise(m, size, seed, name):
    return ops.Identity(size), {"sigma": _sigma(name, m["sigma"], positive=True)}


def _quantize(m, size, seed, name):
    levels = int(m["levels"])
    if not 2 <= levels <= 256:
        raise ValueError(f"task {name!r}: needs 2 to 256 levels per channel")
    return ops.Identity(size), {"levels": levels}


def _cs_gaussian(m, size, seed, name):
    return ops.GaussianCS(size, _ratio(name, m["ratio"]), seed), {}


def _cs_fourier(m, size, seed, name):
    op = ops.FourierCS(size, _ratio(name, m["ratio"]), seed)
    return op, {"extra": {"kept_fraction": op.kept_fraction}}


def _deblur(m, size, seed, name, blur_boundary="circular"):
    k = int(m["size"])
    if not 1 <= k <= size:
        raise ValueError(f"task {name!r}: the blur must be 1 to {size} px")
    return ops.UniformBlur(size, k, blur_boundary), {}


FAMILIES: list[Family] = [
    Family("inpaint", r"inpaint_center(?P<hole>\d+)", _inpaint, "inpaint_center<h>"),
    Family("colorize", r"colorize", lambda m, size, seed, name: (ops.Grayscale(size), {}), "colorize"),
    Family("sr", r"sr(?P<factor>\d+)(?P<misaligned>_misaligned)?", _sr, "sr<k>[_misaligned]",
           options=("misaligned_shift",)),
    Family("denoise", r"denoise_sigma(?P<sigma>[0-9.]+)", _denoise, "denoise_sigma<sigma>", noise_suffix=False),
    Family("quantize", r"quantize(?P<levels>\d+)", _quantize, "quantize<levels>"),
    Family("cs_gaussian", r"cs_gaussian_(?P<ratio>[0-9.]+)", _cs_gaussian, "cs_gaussian_<m/n>"),
    Family("cs_fourier", r"cs_fourier_(?P<ratio>[0-9.]+)", _cs_fourier, "cs_fourier_<ratio>"),
    Family("deblur", r"deblur_uniform(?P<size>\d+)", _deblur, "deblur_uniform<k>", options=("blur_boundary",)),
]

_NOISE = re.compile(r"^(?P<base>.+?)_noise(?P<sigma>[0-9.]+)$")


def register_family(family: Family) -> None:
    """Add a task family (plugins); its name must be new."""
    if any(f.name == family.name for f in FAMILIES):
        raise ValueError(f"task family {family.name!r} exists already")
    FAMILIES.append(family)


def task_names_help() -> str:
    return ", ".join(f.help + ("[_noise<sigma>]" if f.noise_suffix else "") for f in FAMILIES) + \
        "; Yeh et al.'s five with _official (their official code's protocol)"


def make_task(name: str, image_size: int = 64, seed: int = 0, options: dict | None = None) -> Task:
    """Build a :class:`Task` from its config name; unknown names and out-of-range
    parameters raise ``ValueError`` naming the task.  ``seed``: the experiment's
    seed (operators drawn at random derive theirs from it and the task);
    ``options``: the config's ``task_options`` (:data:`TASK_OPTIONS`)."""
    opts = task_options(options)
    if name.endswith(OFFICIAL_SUFFIX):
        return _official_task(name, int(image_size), int(seed), opts)
    base, sigma_text = name, None
    nm = _NOISE.match(name)
    if nm:
        base, sigma_text = nm["base"], nm["sigma"]
    for fam in FAMILIES:
        m = re.fullmatch(fam.pattern, base)
        if not m:
            continue
        if sigma_text is not None and not fam.noise_suffix:
            raise ValueError(f"task {name!r}: the {fam.name} family has its own noise level; no _noise suffix")
        op, fields = fam.build(m, int(image_size), derive_seed(int(seed), base, "operator"), name,
                               **{k: opts[k] for k in fam.options})
        task = Task(name, op, family=fam.name, **fields)
        if sigma_text is not None:
            task.sigma = _sigma(name, sigma_text, positive=False)
        return task
    raise ValueError(f"unknown task {name!r}; known forms: {task_names_help()}")


OFFICIAL_SUFFIX = "_official"
_OFFICIAL_FAMILIES = ("inpaint", "colorize", "sr", "denoise", "quantize")


def _official_task(name: str, image_size: int, seed: int, options: dict | None = None) -> Task:
    """``<task>_official``: Yeh et al.'s five tasks as their official code corrupts
    them and sets up the data term (:mod:`ganrestore.official`)."""
    base = name[: -len(OFFICIAL_SUFFIX)]
    if base.endswith(OFFICIAL_SUFFIX) or _NOISE.match(base):
        raise ValueError(f"task {name!r}: the official protocol takes one of Yeh et al.'s tasks as they are")
    t = make_task(base, image_size, seed, options)
    if t.family not in _OFFICIAL_FAMILIES:
        raise ValueError(f"task {name!r}: the official protocol exists for "
                         f"{', '.join(_OFFICIAL_FAMILIES)} tasks only")
    if t.family == "quantize" and t.levels != 5:
        raise ValueError(f"task {name!r}: the official code quantises with step 55 (5 levels): quantize5_official")
    from .official import TF_LUMA  # noqa: PLC0415

    op = t.op
    if t.family == "colorize":
        op = ops.Grayscale(image_size, weights=TF_LUMA)
    elif t.family == "sr":
        op = ops.BilinearDownUp(image_size, int(t.extra["factor"]))
    # the observation is quantised or noisy as the code makes it; the methods see
    # Identity + a target, so 'levels' is not re-applied by corrupt()
    return Task(name, op, sigma=t.sigma, levels=None, family=t.family,
                extra={**t.extra, "official_levels": t.levels}, protocol="official")


def corrupt(x: torch.Tensor, task: Task, ids, global_seed: int) -> torch.Tensor:
    """Observation ``y`` for clean images ``x`` (B,3,H,W); noise seeded per image id.
    Under the official protocol, the measurement the methods see
    (:func:`ganrestore.official.target` of the official observation)."""
    if task.protocol == "official":
        from . import official  # noqa: PLC0415

        seeds = image_seeds(global_seed, task.name, ids, "noise")
        return official.target(task, official.observe(task, task.clean(x), seeds))
    y = task.op.A(task.clean(x))
    if task.sigma > 0:
        eps = randn_per_image(image_seeds(global_seed, task.name, ids, "noise"), y.shape[1:], x.device)
        y = y + task.sigma * eps
    if task.levels is not None:
        y = quantize(y, task.levels)
    return y

__all__ = ["Task", "Family", "FAMILIES", "make_task", "corrupt", "quantize", "register_family", "shift_down",
           "task_names_help", "OFFICIAL_SUFFIX", "TASK_OPTIONS", "task_options"]
