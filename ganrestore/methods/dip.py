"""Deep Image Prior (Ulyanov, Vedaldi, Lempitsky, CVPR 2018), batched over images.

The restoration is the output of a randomly initialised convolutional network
``f_theta`` whose weights are fitted to the observation alone:

    theta_hat = argmin_theta  || y - A f_theta(z) ||_2^2,      x_hat = f_theta_hat(z),

with ``z`` a fixed random input, perturbed by fresh Gaussian noise of standard
deviation ``reg_noise_std`` at every step, Adam, and a fixed number of steps
(early stopping is the regulariser).  ``A`` is the task's operator
(``op.A``; the gradient flows through it by autograd), so DIP runs on every
task: inpainting, colourisation, super-resolution, denoising, quantisation and
any family a later module registers (compressed sensing, deblurring).

**Which iterate is returned.**  The official notebooks end with the network's
output after the last step (super-resolution, inpainting, denoising).
denoising.ipynb also keeps an exponential moving average of the outputs
(``out_avg = out_avg * exp_weight + out * (1 - exp_weight)``, ``exp_weight =
0.99``) and prints its PSNR (``PSNR_gt_sm``) beside the last iterate's; it is
the smoother estimate on a noisy image and the one we return for the denoising
row (our choice between the two that notebook shows).  So: the last iterate
``f_theta_T(z)`` (evaluated at the unperturbed input ``z``, as inpainting.ipynb
does) or, where the settings row has ``exp_weight > 0``, the moving average of
the outputs of the ``T`` steps.  **No best-objective iterate is kept** (no
BestKeeper, as in the official code): the objective falls towards fitting the
noise, so its minimum is the most over-fitted iterate; early stopping *is* the
schedule.

**Noisy tasks** (IAGAN, arXiv 1906.05284, section "Experiments": "We use DIP
official implementation for the noiseless scenarios, and for the examined noisy
scenarios we reduce the number of iterations by a factor of 4 (tuned for best
average performance) to prevent the network from overfitting the noise"):
on a task with ``task.noisy`` the iteration count of a row taken from a
*noiseless* notebook (super-resolution, inpainting, and the default row) is
divided by ``noisy_iteration_divisor`` (4).  The denoising row's 3000 steps
already are the official setting for a noisy image and are not divided again.

Settings and where they come from (DmitryUlyanov/deep-image-prior, commit
042e0d4; ``skip`` = ``models/skip.py``, ``get_net`` = ``models/__init__.py``,
``get_noise`` = ``utils/common_utils.py``):

==========================  ==========================================================
setting                     value, source
==========================  ==========================================================
network                     ``skip`` hourglass, 5 scales (``num_scales=5``), 128
                            channels down and up (``skip_n33d = skip_n33u = 128``),
                            3x3 filters down and up, 1x1 skip filters, a 1x1
                            conv after each up block (``need1x1_up=True``),
                            stride-2 convolutions to downsample
                            (``downsample_mode='stride'``), batch norm after every
                            conv and after each concat, LeakyReLU(0.2)
                            (``act('LeakyReLU')`` in ``models/common.py``), a
                            1x1 conv to 3 channels and a sigmoid
                            (``need_sigmoid=True``), biases everywhere
                            (``need_bias=True``), reflection padding
                            (``pad='reflection'`` in every notebook used here):
                            super-resolution.ipynb / denoising.ipynb (F16) via
                            ``get_net(input_depth, 'skip', pad, skip_n33d=128,
                            skip_n33u=128, skip_n11=4, num_scales=5,
                            upsample_mode='bilinear')``
batch norm                  train mode throughout (the notebooks never call
                            ``net.eval()``, also not for the final output): with
                            one image per network the statistics are that image's
                            per-channel mean / biased variance over H x W, eps 1e-5
weights' initialisation     PyTorch's defaults, as the notebooks (conv weight and
                            bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), BN weight 1,
                            bias 0)
input ``z``                 ``get_noise(32, 'noise', (H, W))``: 32 channels
                            (``input_depth = 32``), uniform on [0, 1) times
                            ``var = 1/10`` (``get_noise``'s defaults
                            ``noise_type='u', var=1./10``), fixed
input perturbation          ``net_input_saved + noise.normal_() * reg_noise_std``
                            at every step (all notebooks); the value per row below
optimiser                   Adam, lr 0.01 (``LR = 0.01``, ``OPTIMIZER = 'adam'``,
                            torch defaults betas (0.9, 0.999), eps 1e-8), over the
                            network only (``OPT_OVER = 'net'``); torch's fused
                            kernel where available (the same update)
loss                        ``torch.nn.MSELoss`` of ``A f(z)`` against ``y``: the
                            per-image *mean* squared error is what is
                            differentiated (same minimiser as ``||y - A f||^2``;
                            Adam's step does not depend on the loss scale up to
                            eps); reported objectives are ``||y - A x||^2`` sums
==========================  ==========================================================

Per task family (a row's values apply where the config leaves the key null):

=============  ===========================  ==========  =============  ========  ==========  ==========  =========
row            source                       iterations  reg_noise_std  skip_n11  upsample    exp_weight  backtrack
=============  ===========================  ==========  =============  ========  ==========  ==========  =========
``sr_x4``      super-resolution.ipynb,      2000        0.03           4         bilinear    0 (off)     no
               ``factor == 4``
``sr_x8``      super-resolution.ipynb,      4000        0.05           4         bilinear    0           no
               ``factor == 8``
``inpaint``    inpainting.ipynb, kate.png   6001        0.03           128       nearest     0           no
               branch (``num_iter = 6001``;
               "Same params and
               net as in super-resolution
               and denoising", but 128 skip
               channels and nearest
               upsampling)
``denoise``    denoising.ipynb, F16_GT.png  3000        1/30 (1/20     4         bilinear    0.99        yes
               (sigma = 25/255)                         for sigma >=
                                                        50/255, the
                                                        notebook's
                                                        comment)
``default``    no notebook: the SR x4 row   2000        0.03           4         bilinear    0           no
               (the common SR / denoising
               network)
=============  ===========================  ==========  =============  ========  ==========  ==========  =========

Families: ``sr`` with factor <= 4 -> ``sr_x4``, larger factors -> ``sr_x8``
(the notebook asserts on factors other than 4 and 8; x2 takes the x4 row, x16
the x8 row);
``inpaint`` -> ``inpaint``; ``denoise`` and ``quantize`` (A = I, an observation
that is the image plus an error) -> ``denoise``; everything else
(``colorize``, compressed sensing, deblurring, no task) -> ``default``.
Only ``denoise`` is not divided by 4 on noisy tasks (see above).

``backtrack`` (denoising.ipynb's "Falling back to previous checkpoint"): at
every step ``i`` with ``i % 100 != 0``, if the PSNR of the output against the
observation (here: ``-10 log10`` of the measurement MSE) fell by more than 5 dB
since the last checkpoint, the image's weights are reset to that checkpoint
(and Adam then steps with the gradient already computed, as in the notebook);
otherwise the checkpoint moves to the current weights.

Not taken from the notebooks: their images are large (SR crops to multiples
of 32, inpainting to 64); a 5-scale network needs ``H / 2^5 >= 2`` (reflection
padding of the deepest 3x3 convolution), so 64 px images are the smallest for
the official depth.  Smaller images need ``num_scales`` lowered explicitly (a
config that does not fit is refused, not silently changed).  The notebooks'
quirk of showing the output at the *last perturbed* input (super-resolution and
denoising reassign the global ``net_input``) is not reproduced: we evaluate the
last iterate at ``z``, as inpainting.ipynb does.

**Batching.**  Each image has its own network.  The ``B`` weight copies are
stacked along a leading image axis and one forward/backward runs the ``B``
networks together: every convolution is one grouped convolution with
``groups = B`` (image ``b``'s channels form group ``b``), batch norm acts on the
``(1, B*C, H, W)`` view (statistics per image and channel, exactly the
one-image batch statistics of the notebooks), padding, activations and
upsampling are per channel, concatenations per image.  The loss is a sum of
per-image terms and Adam is element-wise, so no image sees another.  The
workflow runs DIP in index-aligned blocks of 16 (:func:`ganrestore.methods.run_method`,
``microbatch: auto``): an image always sits at the same position of a block of
the same shape, so its result is bitwise independent of its batch-mates and the
shard size (``tests/test_batch_invariance.py``).  It is *not* bitwise the
result of the one-image path (``microbatch: 1``), nor of another block size:
the initial network, loss and gradients agree within 1e-4, but at the random
start many weights have a gradient that is exactly zero in real arithmetic
(conv biases before a batch norm; batch-norm scales whose channel a later
batch norm renormalises through the positively homogeneous LeakyReLU), i.e.
rounding noise of 1e-10..1e-8 in floats, and Adam's first step
``lr g / (|g| + eps)`` moves them by up to 0.4 lr with the sign of that noise;
grouped kernels of another shape round differently, and the trajectories part
(0.04 apart after one step, 0.2 after 60, 32 px).  The official code is as
sensitive to its kernels (``cudnn.benchmark = True``).  The block layout makes
that noise a function of the image's block position and the block shape only,
which is what reproducibility needs; blocks of 16 run 1.4-2x the one-image
path on the demo's CPU (``benchmarks/bench_gan.py --blocks``).

**Seeding.**  From the image's seed ``s`` (``(global seed, task, image id)``):
the initial weights from ``derive_seed(s, "dip", "weights")`` and the input
``z`` from ``derive_seed(s, "dip", "input")``, both drawn on the CPU (identical
on every device); the per-step input perturbations from
``derive_seed(s, "dip", "reg_noise")`` on the compute device (a CPU run and a
GPU run of the same image therefore differ in these draws).

Diagnostics per image: ``objective`` (``||y - A x_hat||^2`` of the returned
image), ``start_objective`` (the same at the first step, the random network),
``iterations`` (steps run, after the division on noisy tasks), ``seconds``,
``diverged``, ``measurement`` (= ``objective``), ``backtracks`` (checkpoint
restores), ``noisy_divided``.  Extras: ``trace`` (the measurement loss every
``trace_every`` steps; the last entry is the returned image's) and
``trace_step``.

The ``demo`` profile (CPU demo, 64 px, 8 images x 5 tasks) narrows the network
to 16 channels and runs 100 steps; see ``PROFILES``.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from ..seeding import derive_seed, generator
from . import register
from .base import Restoration
from .gan_core import resolve_device, resolve_params, trace_steps
from .gan_iagan import _adam_impl

# -- settings ------------------------------------------------------------------

# keys left None are taken from the task family's row of FAMILY_ROWS
PAPER = {
    "iterations": None,
    "lr": 0.01,
    "input_depth": 32,
    "input_noise_var": 0.1,
    "skip_n33d": 128,
    "skip_n33u": 128,
    "skip_n11": None,
    "num_scales": 5,
    "upsample_mode": None,
    "reg_noise_std": None,
    "exp_weight": None,
    "backtrack": None,
    "noisy_iteration_divisor": 4,
    "trace_every": 10,
}

FAMILY_ROWS = {
    "sr_x4": {"iterations": 2000, "reg_noise_std": 0.03, "skip_n11": 4, "upsample_mode": "bilinear",
              "exp_weight": 0.0, "backtrack": False, "noiseless_settings": True},
    "sr_x8": {"iterations": 4000, "reg_noise_std": 0.05, "skip_n11": 4, "upsample_mode": "bilinear",
              "exp_weight": 0.0, "backtrack": False, "noiseless_settings": True},
    "inpaint": {"iterations": 6001, "reg_noise_std": 0.03, "skip_n11": 128, "upsample_mode": "nearest",
                "exp_weight": 0.0, "backtrack": False, "noiseless_settings": True},
    "denoise": {"iterations": 3000, "reg_noise_std": 1.0 / 30.0, "skip_n11": 4, "upsample_mode": "bilinear",
                "exp_weight": 0.99, "backtrack": True, "noiseless_settings": False},
    "default": {"iterations": 2000, "reg_noise_std": 0.03, "skip_n11": 4, "upsample_mode": "bilinear",
                "exp_weight": 0.0, "backtrack": False, "noiseless_settings": True},
}

# The CPU demo (64 px, 8 images x 5 tasks, one thread per job): the network narrowed to
# 16 channels down / up (the inpainting row's skip connections, as wide as its main path
# officially, narrowed with it to 16; the other rows keep 4), 100 steps, and for the
# denoising row an averaging window scaled to the short run (exp_weight 0.9: a time
# constant of 10 of 100 steps; officially 100 of 3000 - with 0.99 a 100-step run's average
# would still weigh the random start by 0.99^100 = 0.37).  ``rows`` holds a profile's
# per-row overrides.  Seconds per image: benchmarks/bench_dip.py --demo.
PROFILES = {
    "demo": {"iterations": 100, "skip_n33d": 16, "skip_n33u": 16,
             "rows": {"inpaint": {"skip_n11": 16}, "denoise": {"exp_weight": 0.9}}},
}

BACKTRACK_EVERY = 100        # denoising.ipynb: show_every = 100, checked when i % show_every != 0
BACKTRACK_DB = 5.0           # "if psrn_noisy - psrn_noisy_last < -5"
LEAKY_SLOPE = 0.2            # models/common.py: nn.LeakyReLU(0.2)
BN_EPS = 1e-5                # nn.BatchNorm2d default


def family_row(task) -> str:
    """The settings row of :data:`FAMILY_ROWS` for ``task`` (None: ``default``)."""
    fam = getattr(task, "family", "") or ""
    if fam == "sr":
        factor = int((getattr(task, "extra", None) or {}).get("factor", getattr(task.op, "factor", 4)))
        return "sr_x4" if factor <= 4 else "sr_x8"
    if fam == "inpaint":
        return "inpaint"
    if fam in ("denoise", "quantize"):
        return "denoise"
    return "default"


def settings(cfg: dict | None, task) -> dict:
    """Resolved settings for ``task``: PAPER, then the profile, then ``cfg``;
    keys still None take the family row's value.  Also returns the row name
    (``row``), whether the noisy division applies (``noisy_divided``) and the
    iteration count actually run (``steps``)."""
    p = resolve_params("dip", cfg, PAPER, PROFILES)
    row_name = family_row(task)
    row = dict(FAMILY_ROWS[row_name])
    row.update((p.pop("rows", None) or {}).get(row_name, {}))
    from_row = {k for k in row if k in p and p[k] is None}
    for k in from_row:
        p[k] = row[k]
    if row_name == "denoise" and "reg_noise_std" in from_row:
        sigma = float(getattr(task, "sigma", 0.0) or 0.0)
        if sigma >= 50.0 / 255.0:
            p["reg_noise_std"] = 1.0 / 20.0      # denoising.ipynb: "set to 1./20. for sigma=50"
    noisy = bool(getattr(task, "noisy", False))
    divisor = int(p["noisy_iteration_divisor"])
    if divisor < 1:
        raise ValueError(f"dip: noisy_iteration_divisor must be >= 1, got {divisor}")
    p["row"] = row_name
    p["noisy_divided"] = noisy and row["noiseless_settings"] and divisor > 1
    iters = int(p["iterations"])
    if iters < 0:
        raise ValueError(f"dip: iterations must be >= 0, got {iters}")
    p["steps"] = iters // divisor if p["noisy_divided"] else iters
    if p["upsample_mode"] not in ("bilinear", "nearest"):
        raise ValueError(f"dip: upsample_mode must be bilinear or nearest, got {p['upsample_mode']!r}")
    ew = float(p["exp_weight"])
    if not 0.0 <= ew < 1.0:
        raise ValueError(f"dip: exp_weight must be in [0, 1), got {ew}")
    if float(p["reg_noise_std"]) < 0 or float(p["lr"]) <= 0 or float(p["input_noise_var"]) < 0:
        raise ValueError("dip: reg_noise_std and input_noise_var must be >= 0 and lr > 0")
    return p


def _per_scale(v, n: int, what: str) -> list[int]:
    if isinstance(v, (list, tuple)):
        if len(v) != n:
            raise ValueError(f"dip: {what} has {len(v)} entries for num_scales = {n}")
        out = [int(c) for c in v]
    else:
        out = [int(v)] * n
    if any(c < 0 for c in out) or (what != "skip_n11" and any(c < 1 for c in out)):
        raise ValueError(f"dip: {what} must be positive (skip_n11 may be 0), got {v!r}")
    return out


# -- the network ---------------------------------------------------------------

class SkipNet:
    """The ``skip`` hourglass network of ``models/skip.py`` as a functional model
    over per-image weight copies.

    ``params``: name -> tensor with a leading image axis ``B``;
    ``forward(params, z)`` with ``z`` (B, input_depth, H, W) returns
    (B, 3, H, W) in (0, 1).  Level ``i`` (input ``x``, depth ``d``)::

        skip   = act(bn(conv1x1(x)))                           (if skip_n11[i] > 0)
        deeper = act(bn(conv3x3_stride2(x))); act(bn(conv3x3(.)))
                 -> level i+1 (if not the deepest) -> upsample x2
        out    = bn(concat(skip, deeper)); act(bn(conv3x3(.))); act(bn(conv1x1(.)))

    and the output is ``sigmoid(conv1x1(level_0(z)))`` - the module order of
    ``skip()``.
    """

    def __init__(self, input_depth: int = 32, down=(128,) * 5, up=(128,) * 5, skip=(4,) * 5,
                 upsample_mode: str = "bilinear", out_channels: int = 3):
        if not len(down) == len(up) == len(skip):
            raise ValueError("down, up and skip need one entry per scale")
        self.input_depth = int(input_depth)
        self.down, self.up, self.skip = [int(c) for c in down], [int(c) for c in up], [int(c) for c in skip]
        self.n_scales = len(self.down)
        self.upsample_mode = upsample_mode
        self.out_channels = int(out_channels)
        self.specs = self._layer_specs()

    def _layer_specs(self) -> list[tuple[str, str, tuple, int]]:
        """``(name, kind, shape, fan_in)`` of every parameter, in initialisation order:
        the order of the official ``skip()`` module's ``parameters()``."""
        specs = []

        def conv(name, cout, cin, k):
            specs.append((name + ".w", "conv_w", (cout, cin, k, k), cin * k * k))
            specs.append((name + ".b", "conv_b", (cout,), cin * k * k))

        def bn(name, c):
            specs.append((name + ".g", "bn_w", (c,), 0))
            specs.append((name + ".h", "bn_b", (c,), 0))

        def level(i, d_in):             # the registration order of skip()'s modules
            s, dn = self.skip[i], self.down[i]
            k = self.up[i + 1] if i < self.n_scales - 1 else dn
            if s:
                conv(f"l{i}.skip", s, d_in, 1)
                bn(f"l{i}.skip_bn", s)
            conv(f"l{i}.down1", dn, d_in, 3)
            bn(f"l{i}.down1_bn", dn)
            conv(f"l{i}.down2", dn, dn, 3)
            bn(f"l{i}.down2_bn", dn)
            if i < self.n_scales - 1:
                level(i + 1, dn)
            bn(f"l{i}.cat_bn", s + k)
            conv(f"l{i}.up", self.up[i], s + k, 3)
            bn(f"l{i}.up_bn", self.up[i])
            conv(f"l{i}.up1x1", self.up[i], self.up[i], 1)
            bn(f"l{i}.up1x1_bn", self.up[i])

        level(0, self.input_depth)
        conv("out", self.out_channels, self.up[0], 1)
        return specs

    def n_params(self) -> int:
        return sum(int(np.prod(shape)) for _, _, shape, _ in self.specs)

    def min_size(self) -> int:
        """Smallest image side: the deepest 3x3 convolution reflection-pads a map of >= 2 px."""
        return 2 ** (self.n_scales + 1)

    def check_size(self, H: int, W: int) -> None:
        n = 2 ** self.n_scales
        if min(H, W) < self.min_size() or H % n or W % n:
            raise ValueError(
                f"dip: a {self.n_scales}-scale network needs image sides divisible by {n} and >= "
                f"{self.min_size()} (the deepest feature map must be >= 2 px for reflection padding); "
                f"got {H}x{W}: lower num_scales")

    def init_params(self, seeds, device) -> dict:
        """Per-image initial weights, PyTorch's default initialisation, drawn on the
        CPU from ``derive_seed(seed, "dip", "weights")``, then stacked."""
        per_image = []
        for s in seeds:
            g = generator(derive_seed(int(s), "dip", "weights"))
            d = {}
            for name, kind, shape, fan_in in self.specs:
                if kind in ("conv_w", "conv_b"):        # kaiming_uniform_(a=sqrt(5)) / bias: U(+-1/sqrt(fan_in))
                    bound = 1.0 / math.sqrt(fan_in)
                    d[name] = (torch.rand(shape, generator=g) * 2.0 - 1.0) * bound
                elif kind == "bn_w":
                    d[name] = torch.ones(shape)
                else:
                    d[name] = torch.zeros(shape)
            per_image.append(d)
        return {name: torch.stack([d[name] for d in per_image]).to(device).contiguous().requires_grad_(True)
                for name, _, _, _ in self.specs}

    # -- functional forward over B weight copies --------------------------------
    @staticmethod
    def _conv(x, p, name, stride=1):
        w, b = p[name + ".w"], p[name + ".b"]
        B, C, H, W = x.shape
        k = w.shape[-1]
        if k > 1:
            x = F.pad(x, ((k - 1) // 2,) * 4, mode="reflect")
        cout = w.shape[1]
        y = F.conv2d(x.reshape(1, B * C, x.shape[2], x.shape[3]), w.reshape(B * cout, C, k, k),
                     b.reshape(B * cout), stride=stride, groups=B)
        return y.reshape(B, cout, y.shape[2], y.shape[3])

    @staticmethod
    def _bn(x, p, name):
        B, C, H, W = x.shape
        y = F.batch_norm(x.reshape(1, B * C, H, W), None, None, p[name + ".g"].reshape(-1),
                         p[name + ".h"].reshape(-1), True, 0.0, BN_EPS)
        return y.reshape(B, C, H, W)

    def _cba(self, x, p, name, stride=1):
        return F.leaky_relu(self._bn(self._conv(x, p, name, stride), p, name + "_bn"), LEAKY_SLOPE)

    def _level(self, i, x, p):
        parts = []
        if self.skip[i]:
            parts.append(self._cba(x, p, f"l{i}.skip"))
        d = self._cba(x, p, f"l{i}.down1", stride=2)
        d = self._cba(d, p, f"l{i}.down2")
        if i < self.n_scales - 1:
            d = self._level(i + 1, d, p)
        if self.upsample_mode == "bilinear":
            d = F.interpolate(d, scale_factor=2, mode="bilinear", align_corners=False)
        else:
            d = F.interpolate(d, scale_factor=2, mode="nearest")
        parts.append(d)
        h = torch.cat(parts, 1) if len(parts) > 1 else d
        h = self._bn(h, p, f"l{i}.cat_bn")
        h = self._cba(h, p, f"l{i}.up")
        return self._cba(h, p, f"l{i}.up1x1")

    def forward(self, params: dict, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self._conv(self._level(0, z, params), params, "out"))

    __call__ = forward


def build_net(p: dict) -> SkipNet:
    n = int(p["num_scales"])
    if n < 1:
        raise ValueError(f"dip: num_scales must be >= 1, got {n}")
    if int(p["input_depth"]) < 1:
        raise ValueError("dip: input_depth must be >= 1")
    return SkipNet(int(p["input_depth"]), _per_scale(p["skip_n33d"], n, "skip_n33d"),
                   _per_scale(p["skip_n33u"], n, "skip_n33u"), _per_scale(p["skip_n11"], n, "skip_n11"),
                   p["upsample_mode"])


def net_inputs(seeds, depth: int, H: int, W: int, var: float) -> torch.Tensor:
    """``get_noise(depth, 'noise', (H, W))``: U[0, 1) x var, per image from
    ``derive_seed(seed, "dip", "input")``, drawn on the CPU."""
    return torch.stack([torch.rand((depth, H, W), generator=generator(derive_seed(int(s), "dip", "input"))) * var
                        for s in seeds])


# -- the fit -------------------------------------------------------------------

def fit(net: SkipNet, params: dict, z: torch.Tensor, y: torch.Tensor, op, *, steps: int, lr: float,
        reg_noise_std: float, exp_weight: float, backtrack: bool, noise_gens, trace_every: int = 10) -> dict:
    """Adam on the B weight copies, ``steps`` steps; returns the kept images and traces."""
    B = y.shape[0]
    leaves = list(params.values())
    opt = torch.optim.Adam(leaves, lr=lr, **_adam_impl())
    dev = z.device
    alive = torch.ones(B, dtype=torch.bool, device=dev)
    tsteps = trace_steps(steps, trace_every)
    trace = torch.full((B, len(tsteps)), math.nan, device=dev)
    k = 0
    out_avg = None
    start = torch.full((B,), math.nan, device=dev)
    last_params, psnr_last = None, None
    backtracks = torch.zeros(B, dtype=torch.int64, device=dev)
    if backtrack:
        last_params = [t.detach().clone() for t in leaves]
        psnr_last = torch.zeros(B, device=dev)

    def view(mask, t):
        return mask.view((B,) + (1,) * (t.dim() - 1))

    for t in range(steps):
        inp = z
        if reg_noise_std > 0:
            eps = torch.stack([torch.randn(z.shape[1:], generator=g, device=dev) for g in noise_gens])
            inp = z + eps * reg_noise_std
        out = net(params, inp)
        r = (op.A(out) - y).flatten(1)
        mse = r.pow(2).mean(1)                                   # MSELoss, per image
        meas = mse.detach() * r.shape[1]                         # ||y - A f||^2
        if t == 0:
            start = meas.clone()
        if k < len(tsteps) and tsteps[k] == t:
            trace[:, k] = torch.where(alive, meas, torch.full_like(meas, math.nan))
            k += 1
        alive &= torch.isfinite(meas)      # a non-finite gradient shows as a non-finite loss one step later
        total = torch.where(alive, mse, torch.zeros_like(mse)).sum()
        grads = torch.autograd.grad(total, leaves)
        if exp_weight > 0:
            o = out.detach()
            out_avg = o if out_avg is None else out_avg * exp_weight + o * (1.0 - exp_weight)
        with torch.no_grad():
            if backtrack and t % BACKTRACK_EVERY:
                psnr = -10.0 * torch.log10(mse.detach().clamp_min(1e-30))
                bad = alive & (psnr - psnr_last < -BACKTRACK_DB)
                if bool(bad.any()):
                    for leaf, saved in zip(leaves, last_params):
                        leaf.copy_(torch.where(view(bad, leaf), saved, leaf))
                        saved.copy_(leaf)
                else:
                    torch._foreach_copy_(last_params, [lf.detach() for lf in leaves])
                psnr_last = torch.where(bad, psnr_last, psnr)
                backtracks += bad.long()
        all_alive = bool(alive.all())
        for leaf, g in zip(leaves, grads):
            leaf.grad = g if all_alive else torch.where(view(alive, g), g, torch.zeros_like(g))
        opt.step()

    with torch.no_grad():
        x = out_avg if (exp_weight > 0 and out_avg is not None) else net(params, z)
        final = (op.A(x) - y).flatten(1).pow(2).sum(1)
        if steps == 0:
            start = final.clone()
        alive &= torch.isfinite(final) & torch.isfinite(x.flatten(1)).all(1)
        if k < len(tsteps):
            trace[:, k] = torch.where(alive, final, torch.full_like(final, math.nan))
    return {"x": x, "objective": final, "start": start, "alive": alive, "trace": trace,
            "trace_step": tsteps, "backtracks": backtracks}


def _check(cfg, task, config=None):
    """Config check at workflow start-up: known keys, valid values, an image size the network fits."""
    p = settings(cfg, task)
    net = build_net(p)
    size = int(getattr(task.op, "image_size", 0) or (config or {}).get("image_size", 64))
    net.check_size(size, size)


@register("dip", needs_prior=False, gpu=True, check=_check, block=16)
def restore_dip(y, op, prior, cfg, seeds, upstream=None, task=None):
    """Deep Image Prior (Ulyanov et al. 2018): fit a random skip network to y through A, stop early."""
    t0 = time.perf_counter()
    p = settings(cfg, task)
    dev = resolve_device(p, None)
    if hasattr(op, "to"):
        op = op.to(dev)
    y = y.to(dev).float()
    B = y.shape[0]
    if len(seeds) != B:
        raise ValueError(f"dip: {len(seeds)} seeds for {B} images")
    H = W = int(getattr(op, "image_size", 0) or 0)
    if not H:
        H, W = op.A_adjoint(y).shape[-2:]
    net = build_net(p)
    net.check_size(H, W)
    params = net.init_params(seeds, dev)
    z = net_inputs(seeds, net.input_depth, H, W, float(p["input_noise_var"])).to(dev)
    gens = [generator(derive_seed(int(s), "dip", "reg_noise"), device=dev) for s in seeds]
    r = fit(net, params, z, y, op, steps=int(p["steps"]), lr=float(p["lr"]),
            reg_noise_std=float(p["reg_noise_std"]), exp_weight=float(p["exp_weight"]),
            backtrack=bool(p["backtrack"]), noise_gens=gens, trace_every=int(p["trace_every"]))
    alive = r["alive"].cpu().numpy()
    x = r["x"].detach().clamp(0, 1).cpu()
    x[torch.from_numpy(~alive)] = float("nan")
    obj = r["objective"].cpu().numpy().astype(np.float64)
    obj[~alive] = np.nan
    sec = (time.perf_counter() - t0) / B
    diag = {"objective": obj, "start_objective": r["start"].cpu().numpy().astype(np.float64),
            "iterations": np.full(B, int(p["steps"]), np.int64), "seconds": np.full(B, sec),
            "restarts_used": np.ones(B, np.int64), "diverged": ~alive, "measurement": obj.copy(),
            "backtracks": r["backtracks"].cpu().numpy().astype(np.int64),
            "noisy_divided": np.full(B, bool(p["noisy_divided"]))}
    extras = {"trace": r["trace"].cpu().numpy().astype(np.float32),
              "trace_step": np.tile(np.asarray(r["trace_step"], np.int64), (B, 1))}
    return Restoration(x, diag, extras)


__all__ = ["SkipNet", "PAPER", "FAMILY_ROWS", "PROFILES", "family_row", "settings", "build_net", "fit",
           "net_inputs", "restore_dip"]
