"""Progressive GAN (Karras et al., ICLR 2018) as trained by facebookresearch/pytorch_GAN_zoo,
and the safe reading of that project's public checkpoints.

The checkpoints
---------------
pytorch_GAN_zoo's ``hubconf.py`` names the public PGAN files; the CelebA ones:

=========================================================================  =====  ===========
``https://dl.fbaipublicfiles.com/gan_zoo/PGAN/<file>``                     size   data
=========================================================================  =====  ===========
``celebaCropped_s5_i83000-2b0acc76.pth``                                    128   CelebA, 128x128 crop at (25, 57)
``celebaHQ_s6_i80000-6196db68.pth``                                         256   CelebA-HQ
``celebaHQ16_december_s7_i96000-9c72988c.pth``                              512   CelebA-HQ
=========================================================================  =====  ===========

(no 1024-px model is published; the hash in each name is the first 8 hex
digits of the file's sha256, torch.hub's convention).  Each is a
``torch.save``-d dict ``{'config', 'netG', 'netD', 'avgG'}``
(``models/base_GAN.py`` ``getStateDict``) whose ``'config'`` is a pickled
``models.utils.config.BaseConfig`` instance - a class with no behaviour, its
attributes the model's settings - so ``torch.load(weights_only=True)`` refuses
the file, and plain ``torch.load`` would run whatever the pickle asks.

:func:`read_zoo_checkpoint` never does the latter.  It first lists every
global the pickle stream references without executing it
(:func:`pickle_globals`, :mod:`pickletools`) and refuses the file unless
each one is on a short allowlist (tensor rebuilding, storage types,
``OrderedDict`` and ``models.utils.config.BaseConfig``); then it loads it with
torch's restricted ``weights_only`` unpickler, admitting only
:class:`ZooConfig`, a stand-in registered under that module path whose
``__setstate__`` accepts plain data (strings, numbers, booleans, ``None``,
lists / tuples / dicts of those) and nothing else.  No code of the checkpoint
runs; a ``__reduce__`` payload is refused by the first pass before any object
is built.  There is no fall-back to unsafe loading.

The architecture (read in the zoo's ``models/networks/progressive_conv_net.py``,
``custom_layers.py``, ``mini_batch_stddev_module.py`` and
``models/progressive_gan.py``; written here)
-----------------------------------------------------------------------------
Equalized learning rate: every convolution / linear layer computes
``layer(x) * c`` with He's constant ``c = sqrt(2 / fan_in)`` (``fan_in`` =
in-channels x kernel area), bias included.  Pixel norm
``x / sqrt(mean_c(x^2) + 1e-8)``.  Leaky ReLU slope ``leakyReluLeak`` (0.2).

``G``: pixel-norm ``z``; linear ``nz -> 16 d0`` + leaky ReLU, reshaped to
``d0 x 4 x 4``, pixel-norm; scale 0: one 3x3 convolution ``d0 -> d0`` (leaky
ReLU, pixel norm); then one block per entry ``d`` of ``depthOtherScales``:
nearest 2x upsampling, two 3x3 convolutions ``d_prev -> d -> d`` (each leaky
ReLU + pixel norm); a 1x1 "to RGB" convolution per scale, the last one used.
With the blending factor ``alpha > 0`` the output is ``alpha up(toRGB_{-2}(x_{-2}))
+ (1 - alpha) toRGB_{-1}(x)``; a finished training has ``alpha = 0``.  Only the
"to RGB" / "from RGB" layers the forward pass uses are kept (the last scale's,
and the one before it when ``alpha > 0``): the zoo's checkpoints carry one per
scale, and dead weights would be copied per image by IAGAN and get no gradient.  No output
activation for the WGAN-GP loss (``generationActivation`` is ``None``; tanh for
the DCGAN / MSE losses).  ``z ~ N(0, I_512)``.

``D`` mirrors it: 1x1 "from RGB" + leaky ReLU at the input scale; per extra
scale (highest first) two 3x3 convolutions ``d -> d -> d_prev`` (leaky ReLU)
and a 2x2 average pool; at 4x4 the minibatch standard-deviation channel
(``miniBatchStdDev``), a 3x3 convolution ``d0(+1) -> d0``, a linear ``16 d0 ->
d0`` and the decision linear ``d0 -> 1 (+ classes)``, leaky ReLU between.  The
zoo trains it as a WGAN-GP critic (``lossMode: WGANGP``, drift penalty
``epsilonD``): its output is an unbounded critic value, higher for real
images, not a logit.

Batch independence.  The minibatch standard-deviation channel mixes the
images of a batch (groups of 4).  Restoration methods must not see their
batch-mates, so :class:`PGANDiscriminator` uses a fixed value for that channel
(``mbstd_value``: the mean group statistic over samples of the averaged
generator, measured once at conversion, recorded in the provenance); with
``mbstd_batch = True`` it computes the zoo's batch statistic instead.

>>> G = PGANGenerator(nz=16, depths=[16, 8]).eval()
>>> G(torch.randn(2, 16)).shape
torch.Size([2, 3, 8, 8])
"""

from __future__ import annotations

import hashlib
import io
import math
import pickle
import pickletools
import zipfile
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

ZOO_BASE_URL = "https://dl.fbaipublicfiles.com/gan_zoo/PGAN/"
#: The public CelebA / CelebA-HQ PGAN checkpoints of pytorch_GAN_zoo (hubconf.py), by output size.
ZOO_CELEBA = {
    128: "celebaCropped_s5_i83000-2b0acc76.pth",
    256: "celebaHQ_s6_i80000-6196db68.pth",
    512: "celebaHQ16_december_s7_i96000-9c72988c.pth",
}


# ----------------------------------------------------------------------------- layers
def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Karras et al.'s pixel-wise feature normalisation over the channel axis (dim 1)."""
    return x * (x.pow(2).mean(dim=1, keepdim=True) + eps).rsqrt()


class _Equalized(nn.Module):
    """``inner(x) * c``, ``c = sqrt(2 / fan_in)`` when ``equalized`` (else 1); the bias is scaled too."""

    def __init__(self, inner: nn.Module, equalized: bool):
        super().__init__()
        self.inner = inner
        fan_in = math.prod(inner.weight.shape[1:])
        self.c = math.sqrt(2.0 / fan_in) if equalized else 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x) * self.c


class _GainBias(nn.Module):
    """The same layer as :class:`_Equalized` in the parameterisation of ptrblck's
    PGGAN conversion (``prog_gans_pytorch_inference/model.py``: a convolution
    without bias followed by ``WScaleLayer``, ``x * scale + b``, both
    ``nn.Parameter``), which the official IAGAN adapts (``IAGAN.py`` ``IA``:
    ``Adam(G.parameters())``): ``layer(x; W) * gain + bias`` with the weight
    ``W`` as stored, a learnable per-layer ``gain`` (one scalar, initialised to
    the He constant ``c``) and an *unscaled* bias (initialised to ``c b``), so
    that the output is the zoo layer's, ``c (layer(x; W) + b)``, while Adam
    moves the bias in output units and adapts the gain.  Built by
    :func:`official_parameterisation`."""

    def __init__(self, eq: "_Equalized"):
        super().__init__()
        inner = eq.inner
        self.kind = "conv" if isinstance(inner, nn.Conv2d) else "linear"
        self.padding = inner.padding if self.kind == "conv" else None
        self.weight = nn.Parameter(inner.weight.detach().clone())
        self.gain = nn.Parameter(torch.full((1,), float(eq.c), dtype=inner.weight.dtype))
        b = inner.bias.detach() if inner.bias is not None else torch.zeros(inner.weight.shape[0])
        self.bias = nn.Parameter((b * eq.c).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "conv":
            return F.conv2d(x, self.weight, None, padding=self.padding) * self.gain + self.bias.view(1, -1, 1, 1)
        return F.linear(x, self.weight) * self.gain + self.bias


def _conv(cin, cout, k, equalized):
    return _Equalized(nn.Conv2d(cin, cout, k, padding=k // 2), equalized)


def _linear(cin, cout, equalized):
    return _Equalized(nn.Linear(cin, cout), equalized)


def _upscale2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


def _check_depths(depths) -> list[int]:
    d = [int(v) for v in depths]
    if not d or any(v < 1 for v in d):
        raise ValueError(f"depths must be a non-empty list of positive channel counts, got {depths}")
    return d


class PGANGenerator(nn.Module):
    """PGAN generator at its final scale: ``z`` (B, nz) ~ N(0, I) -> (B, nc, 4 * 2^k, 4 * 2^k).

    ``depths``: channels of scale 0 (4x4) then of each further scale
    (``[depthScale0] + depthOtherScales``).
    """

    z_dist = "normal"

    def __init__(self, nz: int = 512, depths=(512,), nc: int = 3, leak: float = 0.2,
                 normalization: bool = True, equalized: bool = True, alpha: float = 0.0,
                 activation: str = "none"):
        super().__init__()
        depths = _check_depths(depths)
        if activation not in ("none", "tanh"):
            raise ValueError(f"activation must be 'none' or 'tanh', got {activation!r}")
        self.nz, self.depths, self.nc, self.leak = nz, depths, nc, float(leak)
        self.normalization, self.equalized, self.alpha = bool(normalization), bool(equalized), float(alpha)
        self.activation = activation
        self.fc = _linear(nz, 16 * depths[0], equalized)
        blocks = [nn.ModuleList([_conv(depths[0], depths[0], 3, equalized)])]
        for prev, d in zip(depths[:-1], depths[1:]):
            blocks.append(nn.ModuleList([_conv(prev, d, 3, equalized), _conv(d, d, 3, equalized)]))
        self.blocks = nn.ModuleList(blocks)
        if self.alpha > 0 and len(depths) < 2:
            raise ValueError("alpha > 0 needs at least two scales")
        self.to_rgb = _conv(depths[-1], nc, 1, equalized)
        self.to_rgb_low = _conv(depths[-2], nc, 1, equalized) if self.alpha > 0 else None

    @property
    def image_size(self) -> int:
        return 4 * 2 ** (len(self.depths) - 1)

    def arch(self) -> dict:
        return {"name": "pgan_generator", "nz": self.nz, "depths": list(self.depths), "nc": self.nc,
                "leak": self.leak, "normalization": self.normalization, "equalized": self.equalized,
                "alpha": self.alpha, "activation": self.activation}

    def _act(self, x):
        x = F.leaky_relu(x, self.leak)
        return pixel_norm(x) if self.normalization else x

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = z.reshape(z.shape[0], -1)
        if self.normalization:
            z = pixel_norm(z)
        x = F.leaky_relu(self.fc(z), self.leak).view(z.shape[0], self.depths[0], 4, 4)
        if self.normalization:
            x = pixel_norm(x)
        last = len(self.blocks) - 1
        low = None
        for s, block in enumerate(self.blocks):
            if s > 0:
                x = _upscale2(x)
            for conv in block:
                x = self._act(conv(x))
            if self.alpha > 0 and s == last - 1:            # the previous scale's image, blended in
                low = _upscale2(self.to_rgb_low(x))
        x = self.to_rgb(x)
        if low is not None:
            x = self.alpha * low + (1.0 - self.alpha) * x
        return torch.tanh(x) if self.activation == "tanh" else x


#: how a PGAN generator's layers are parameterised for the image-adaptive stage
PGAN_PARAMETERISATIONS = ("official", "zoo")


def official_parameterisation(G: PGANGenerator) -> PGANGenerator:
    """A copy of ``G`` whose every equalized layer is re-expressed as IAGAN's
    official generator parameterises it (:class:`_GainBias`): same images,
    different parameters for an optimiser to adapt.

    Fidelity.  The official IAGAN (shadyabh/IAGAN, README: "for PGGAN we use
    https://github.com/ptrblck/prog_gans_pytorch_inference") adapts ptrblck's
    conversion of Karras et al.'s Theano model, whose layers are
    ``conv(x; W) * scale + b`` (``model.py`` ``WScaleLayer``; ``transfer_weights.py``
    copies Lasagne's ``W``, ``scale`` and ``b``, the Lasagne ``WScaleLayer``
    having divided ``W`` by ``scale = sqrt(mean(W_init^2))``).  In PyTorch
    ``scale`` and ``b`` are parameters, so ``IAGAN.py``'s ``Adam(G.parameters())``
    adapts a gain per layer and biases in output units.  pytorch_GAN_zoo's
    equalized layers compute ``c (conv(x; W) + b)`` and adapt ``W`` and ``b``
    only: with the same ``lr_theta`` (1e-3) a bias moves ``c`` (0.02-0.08 for
    512 channels) times less in output units, and no gain moves.  Here
    ``W`` is kept, ``gain = c`` and ``bias = c b``: Adam's steps on ``W``
    are the same in both (Adam is scale-free per element), those on bias and
    gain are the official model's.  What differs still: ptrblck's latent layer
    is a 4 x 4 convolution (padding 3) with one bias per channel, the zoo's a
    linear layer with one per output unit (16 per channel); the layer keeps
    the zoo's layout.  Buffers and the forward are unchanged (``G.eval()`` is
    preserved); ``G`` itself is not modified."""
    import copy

    if not isinstance(G, PGANGenerator):
        raise TypeError(f"official_parameterisation takes a PGANGenerator, got {type(G).__name__}")
    out = copy.deepcopy(G)

    def swap(module):
        for name, child in list(module.named_children()):
            if isinstance(child, _Equalized):
                setattr(module, name, _GainBias(child))
            else:
                swap(child)

    swap(out)
    out.parameterisation = "official"
    return out.train(G.training)


def minibatch_stddev(x: torch.Tensor, group: int = 4) -> torch.Tensor:
    """The zoo's minibatch standard deviation statistic, one value per image (B,):
    groups of ``min(B, group)`` consecutive images (the whole batch when that does
    not divide it), std over the group per feature, averaged over features; 0
    for a batch of one."""
    B = x.shape[0]
    g = min(B, group)
    if B % g:
        g = B
    if g <= 1:
        return x.new_zeros(B)
    y = x.view(-1, g, *x.shape[1:])
    s = (y.var(1, unbiased=True) + 1e-8).sqrt().flatten(1).mean(1)
    return s.repeat_interleave(g)


class PGANDiscriminator(nn.Module):
    """PGAN critic at its final scale: (B, nc, S, S) in ``[-1, 1]`` -> (B, n_out); column 0 is
    the WGAN-GP critic value (higher = more real).  See the module docstring for the
    minibatch standard-deviation channel (fixed ``mbstd_value`` unless ``mbstd_batch``)."""

    def __init__(self, depths=(512,), nc: int = 3, leak: float = 0.2, equalized: bool = True,
                 alpha: float = 0.0, mbstd: bool = True, n_out: int = 1, output: str = "critic"):
        super().__init__()
        depths = _check_depths(depths)
        if output not in ("critic", "logit"):
            raise ValueError(f"output must be 'critic' (WGAN-GP) or 'logit', got {output!r}")
        self.output = output
        self.depths, self.nc, self.leak, self.equalized = depths, nc, float(leak), bool(equalized)
        self.alpha, self.mbstd, self.n_out = float(alpha), bool(mbstd), int(n_out)
        self.mbstd_batch = False
        if self.alpha > 0 and len(depths) < 2:
            raise ValueError("alpha > 0 needs at least two scales")
        self.from_rgb = _conv(nc, depths[-1], 1, equalized)
        self.from_rgb_low = _conv(nc, depths[-2], 1, equalized) if self.alpha > 0 else None
        # blocks[s] for s >= 1 takes scale s (channels depths[s]) down to scale s - 1
        self.blocks = nn.ModuleList([nn.ModuleList()] + [
            nn.ModuleList([_conv(d, d, 3, equalized), _conv(d, prev, 3, equalized)])
            for prev, d in zip(depths[:-1], depths[1:])])
        d0 = depths[0]
        self.conv0 = _conv(d0 + (1 if self.mbstd else 0), d0, 3, equalized)
        self.fc0 = _linear(16 * d0, d0, equalized)
        self.decision = _linear(d0, self.n_out, equalized)
        self.register_buffer("mbstd_value", torch.zeros(1))

    @property
    def image_size(self) -> int:
        return 4 * 2 ** (len(self.depths) - 1)

    def arch(self) -> dict:
        return {"name": "pgan_discriminator", "depths": list(self.depths), "nc": self.nc, "leak": self.leak,
                "equalized": self.equalized, "alpha": self.alpha, "mbstd": self.mbstd, "n_out": self.n_out,
                "output": self.output}

    @property
    def d_kind(self) -> str:
        """'critic' (WGAN-GP: unbounded, higher = more real) or 'logit' (cross-entropy / logistic losses)."""
        return self.output

    def features_4x4(self, x: torch.Tensor) -> torch.Tensor:
        """Everything before the minibatch statistic: the 4x4 feature map."""
        last = len(self.depths) - 1
        low = None
        if self.alpha > 0:
            low = F.leaky_relu(self.from_rgb_low(F.avg_pool2d(x, 2)), self.leak)
        x = F.leaky_relu(self.from_rgb(x), self.leak)
        for s in range(last, 0, -1):
            for conv in self.blocks[s]:
                x = F.leaky_relu(conv(x), self.leak)
            x = F.avg_pool2d(x, 2)
            if low is not None and s == last and last > 1:   # the zoo merges only with >= 2 extra scales
                x = self.alpha * low + (1 - self.alpha) * x
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features_4x4(x)
        if self.mbstd:
            if self.mbstd_batch:
                s = minibatch_stddev(x)
            else:
                s = self.mbstd_value.to(x.dtype).expand(x.shape[0])
            x = torch.cat([x, s.view(-1, 1, 1, 1).expand(-1, 1, *x.shape[2:])], dim=1)
        x = F.leaky_relu(self.conv0(x), self.leak)
        x = F.leaky_relu(self.fc0(x.flatten(1)), self.leak)
        return self.decision(x)


# ----------------------------------------------------------------------------- safe reading
class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint's pickle references a global outside the allowlist (nothing was executed)."""


_PLAIN = (str, int, float, bool, type(None))


def _plain(v, where: str):
    if isinstance(v, _PLAIN):
        return v
    if isinstance(v, (list, tuple)):
        return type(v)(_plain(u, f"{where}[{i}]") for i, u in enumerate(v))
    if isinstance(v, dict):
        out = {}
        for k, u in v.items():
            if not isinstance(k, str):
                raise UnsafeCheckpointError(f"BaseConfig.{where}: non-string key {k!r}")
            out[k] = _plain(u, f"{where}.{k}")
        return out
    raise UnsafeCheckpointError(f"BaseConfig.{where}: {type(v).__name__} is not plain data")


class ZooConfig:
    """Stand-in for pytorch_GAN_zoo's ``models.utils.config.BaseConfig``: attributes only.

    Registered with torch's ``weights_only`` unpickler under that exact
    module path (nothing named ``models`` is imported); its state is checked
    to be plain data before it is stored.  ``vars(cfg)`` gives the settings.
    """

    __module__ = "models.utils.config"
    __qualname__ = "BaseConfig"

    def __setstate__(self, state):
        slots = None
        if isinstance(state, tuple) and len(state) == 2:
            state, slots = state
        if slots:
            raise UnsafeCheckpointError("BaseConfig with slot state")
        if not isinstance(state, dict):
            raise UnsafeCheckpointError(f"BaseConfig state is a {type(state).__name__}, not a dict")
        for k, v in state.items():
            if not isinstance(k, str):
                raise UnsafeCheckpointError(f"BaseConfig attribute name {k!r} is not a string")
            self.__dict__[k] = _plain(v, k)


ZOO_CONFIG_GLOBAL = "models.utils.config.BaseConfig"
_STORAGES = ("Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool")
#: Every global a zoo checkpoint may reference (in the zip and the legacy torch.save formats).
ALLOWED_GLOBALS = frozenset(
    {ZOO_CONFIG_GLOBAL, "collections.OrderedDict", "torch._utils._rebuild_tensor",
     "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter", "torch.device"}
    | {f"torch.{s}Storage" for s in _STORAGES} | {"torch.storage.UntypedStorage"})


#: Largest ``data.pkl`` read from a zip-format checkpoint (the zoo's: a few KB).
MAX_PICKLE_BYTES = 16 * 1024 ** 2
#: Most scales a zoo config may ask for (4 px * 2^8 = 1024 px, the largest image_size).
MAX_SCALES = 9
#: Most channels per scale a zoo config may ask for (the zoo's models use <= 512).
MAX_DEPTH = 4096


def _pickle_streams(raw: bytes) -> list[bytes]:
    """The pickle stream(s) of a torch.save file: ``data.pkl`` of the zip format, or the
    legacy format's consecutive pickles (magic number, protocol, system info, the
    object, the storage keys) up to where the raw storage bytes begin."""
    bio = io.BytesIO(raw)
    if zipfile.is_zipfile(bio):
        with zipfile.ZipFile(bio) as zf:
            names = [n for n in zf.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
            if len(names) != 1:
                raise UnsafeCheckpointError(f"a torch zip checkpoint has one data.pkl; found {names}")
            size = zf.getinfo(names[0]).file_size
            if size > MAX_PICKLE_BYTES:
                raise UnsafeCheckpointError(f"data.pkl is {size} bytes, over the cap of {MAX_PICKLE_BYTES} "
                                            "(a zoo checkpoint's is a few KB: its tensors are separate members)")
            with zf.open(names[0]) as f:
                data = f.read(MAX_PICKLE_BYTES + 1)
            if len(data) > MAX_PICKLE_BYTES:
                raise UnsafeCheckpointError(f"data.pkl is over the cap of {MAX_PICKLE_BYTES} bytes")
            return [data]
    out, pos = [], 0
    for _ in range(5):
        start = pos
        try:
            for op, _arg, p in pickletools.genops(io.BytesIO(raw[pos:])):
                if op.name == "STOP":
                    pos = start + p + 1
                    break
            else:
                raise UnsafeCheckpointError("pickle stream without STOP")
        except (ValueError, EOFError) as e:
            raise UnsafeCheckpointError(f"not a torch.save file: {e}") from None
        out.append(raw[start:pos])
    return out


def pickle_globals(raw: bytes) -> set[str]:
    """Every ``module.name`` a torch.save file's pickles reference (GLOBAL, STACK_GLOBAL,
    INST), listed by disassembly with :mod:`pickletools`: nothing is executed."""
    found: set[str] = set()
    str_ops = ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8", "STRING", "BINSTRING",
               "SHORT_BINSTRING")
    for stream in _pickle_streams(raw):
        last: list = []             # the values the last two ops pushed (a string, or None for anything else)
        memo: dict = {}
        for op, arg, _pos in pickletools.genops(io.BytesIO(stream)):
            name = op.name
            if name in ("GLOBAL", "INST"):
                mod, attr = str(arg).split(" ", 1)
                found.add(f"{mod}.{attr}")
            elif name == "STACK_GLOBAL":
                if len(last) < 2 or not all(isinstance(v, str) for v in last[-2:]):
                    raise UnsafeCheckpointError("STACK_GLOBAL whose module and name cannot be read statically")
                found.add(f"{last[-2]}.{last[-1]}")
            if name == "MEMOIZE":
                memo[len(memo)] = last[-1] if last else None
                continue
            if name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[arg] = last[-1] if last else None
                continue
            if name in ("GET", "BINGET", "LONG_BINGET"):
                last.append(memo.get(arg))
            elif name in str_ops:
                last.append(str(arg))
            elif op.stack_after:
                last.append(None)
            last = last[-2:]
    return found


def read_zoo_checkpoint(path) -> dict:
    """Read a pytorch_GAN_zoo checkpoint safely (see the module docstring).

    Returns ``{"config": dict, "netG": state, "netD": state, "avgG": state or None,
    "sha256": hex}``.  Raises :class:`UnsafeCheckpointError` (naming the globals)
    for a pickle that references anything outside :data:`ALLOWED_GLOBALS`, and
    ``ValueError`` for a file that is not a zoo checkpoint.
    """
    path = Path(path)
    raw = path.read_bytes()
    found = pickle_globals(raw)
    bad = sorted(found - ALLOWED_GLOBALS)
    if bad:
        raise UnsafeCheckpointError(
            f"{path}: refusing to load: its pickle references {', '.join(bad)}, outside the allowlist of "
            f"a pytorch_GAN_zoo checkpoint (tensors, storages, OrderedDict, {ZOO_CONFIG_GLOBAL}); "
            "nothing was executed")
    with torch.serialization.safe_globals([ZooConfig]):
        try:
            blob = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            text = str(e)
            reason = text.split("WeightsUnpickler error:", 1)[-1].split("Check the documentation", 1)[0].strip()
            raise UnsafeCheckpointError(
                f"{path}: torch's restricted (weights_only) unpickler refused it: {reason or text[:300]}; "
                "it is not loaded any other way (the zoo writes pickle protocol 2)") from None
    if not isinstance(blob, dict) or not {"config", "netG", "netD"} <= set(blob):
        keys = sorted(blob) if isinstance(blob, dict) else type(blob).__name__
        raise ValueError(f"{path}: not a pytorch_GAN_zoo checkpoint (expected a dict with 'config', "
                         f"'netG', 'netD' and 'avgG'; got {keys})")
    if not isinstance(blob["config"], ZooConfig):
        raise ValueError(f"{path}: 'config' is a {type(blob['config']).__name__}, not a BaseConfig")
    for k in ("netG", "netD", "avgG"):
        v = blob.get(k)
        if v is not None and not (isinstance(v, dict) and all(torch.is_tensor(t) for t in v.values())):
            raise ValueError(f"{path}: {k!r} is not a state dict of tensors")
    return {"config": dict(vars(blob["config"])), "netG": blob["netG"], "netD": blob["netD"],
            "avgG": blob.get("avgG"), "sha256": hashlib.sha256(raw).hexdigest()}


# ----------------------------------------------------------------------------- conversion
def _cfg(cfg: dict, key: str, default=None, required=True):
    if key in cfg:
        return cfg[key]
    if required and default is None:
        raise ValueError(f"zoo config has no {key!r} (keys: {sorted(cfg)})")
    return default


def architectures(cfg: dict) -> tuple[dict, dict]:
    """The ``arch()`` dicts of G and D that a zoo ``BaseConfig`` describes."""
    cat = int(cfg.get("categoryVectorDim", 0) or 0)
    if cat:
        raise ValueError(f"conditional PGAN (categoryVectorDim = {cat}, attributes "
                         f"{cfg.get('attribKeysOrder')}) is not supported: it needs class labels")
    other = _cfg(cfg, "depthOtherScales", [], False)
    if not isinstance(other, (list, tuple)) or len(other) > MAX_SCALES - 1:
        raise ValueError(f"zoo config depthOtherScales must be a list of at most {MAX_SCALES - 1} channel "
                         f"counts (images of at most {4 * 2 ** (MAX_SCALES - 1)} px), got "
                         f"{other if not isinstance(other, (list, tuple)) else f'{len(other)} entries'}")
    depths = [_cfg(cfg, "depthScale0")] + list(other)
    if not all(isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= MAX_DEPTH for d in depths):
        raise ValueError(f"zoo config depths must be integers in 1..{MAX_DEPTH}, got {depths}")
    nz = int(cfg.get("latentVectorDim", cfg.get("noiseVectorDim", 0)) or 0)
    if nz < 1:
        raise ValueError("zoo config has no latentVectorDim / noiseVectorDim")
    loss = str(cfg.get("lossCriterion", "WGANGP"))
    if loss not in ("WGANGP", "Logistic", "DCGAN", "MSE"):
        raise ValueError(f"unknown zoo lossCriterion {loss!r}")
    common = {"nc": int(cfg.get("dimOutput", 3)), "leak": float(cfg.get("leakyReluLeak", 0.2)),
              "equalized": bool(cfg.get("equalizedlR", True)), "alpha": float(cfg.get("alpha", 0.0) or 0.0)}
    G = {"name": "pgan_generator", "nz": nz, "depths": depths, **common,
         "normalization": bool(cfg.get("perChannelNormalization", True)),
         "activation": "tanh" if loss in ("DCGAN", "MSE") else "none"}
    D = {"name": "pgan_discriminator", "depths": depths, **common,
         "mbstd": bool(cfg.get("miniBatchStdDev", False)), "n_out": 1,
         "output": "critic" if loss == "WGANGP" else "logit"}
    return G, D


def _zoo_key(k: str) -> str:
    """Old zoo state dicts name ``x.weight`` what newer ones name ``x.module.weight``."""
    for leaf in ("weight", "bias"):
        if k.endswith("." + leaf) and not k.endswith(".module." + leaf):
            return k[: -len(leaf)] + "module." + leaf
    return k


def _rgb_key(prefix: str, i: int, leaf: str, net) -> str | None:
    """The zoo's per-scale RGB layer ``i``: the last scale's, the previous one's when
    alpha > 0, else unused (None: dropped)."""
    last = len(net.depths) - 1
    if i == last:
        return f"{prefix}.inner.{leaf}"
    if i == last - 1 and net.alpha > 0:
        return f"{prefix}_low.inner.{leaf}"
    return None


def _map_generator_key(k: str, net) -> str | None:
    k = _zoo_key(k)
    parts = k.split(".")
    leaf = parts[-1]
    if parts[0] == "formatLayer":
        return f"fc.inner.{leaf}"
    if parts[0] == "groupScale0":
        return f"blocks.0.{parts[1]}.inner.{leaf}"
    if parts[0] == "scaleLayers":
        return f"blocks.{int(parts[1]) + 1}.{parts[2]}.inner.{leaf}"
    if parts[0] == "toRGBLayers":
        return _rgb_key("to_rgb", int(parts[1]), leaf, net)
    raise KeyError(k)


def _map_discriminator_key(k: str, net) -> str | None:
    k = _zoo_key(k)
    parts = k.split(".")
    leaf = parts[-1]
    if parts[0] == "fromRGBLayers":
        return _rgb_key("from_rgb", int(parts[1]), leaf, net)
    if parts[0] == "scaleLayers":          # zoo's scaleLayers[i] is the block of scale i + 1
        return f"blocks.{int(parts[1]) + 1}.{parts[2]}.inner.{leaf}"
    if parts[0] == "groupScaleZero":
        return f"{'conv0' if parts[1] == '0' else 'fc0'}.inner.{leaf}"
    if parts[0] == "decisionLayer":
        return f"decision.inner.{leaf}"
    raise KeyError(k)


def _map_state(net: nn.Module, state: dict, mapper, what: str) -> dict:
    """The zoo tensors of ``state`` under ``net``'s names, each checked against
    ``net``'s shape (``net`` may live on the meta device: nothing is allocated)
    and for finite values; every tensor ``net`` needs must be there."""
    own = net.state_dict()
    mapped = {}
    for k, v in state.items():
        try:
            mk = mapper(k, net)
        except (KeyError, ValueError, IndexError):
            raise ValueError(f"{what}: unexpected tensor {k!r} for the architecture {net.arch()}") from None
        if mk is None:                     # an RGB layer of an earlier scale, unused at the final one
            continue
        if mk not in own:
            raise ValueError(f"{what}: tensor {k!r} ({mk}) is not in the architecture {net.arch()}")
        if tuple(v.shape) != tuple(own[mk].shape):
            raise ValueError(f"{what}: {k!r} has shape {tuple(v.shape)}, the architecture "
                             f"{net.arch()} needs {tuple(own[mk].shape)} (the zoo config and the tensors "
                             "disagree; refused before building the network)")
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            raise ValueError(f"{what}: tensor {k!r} holds non-finite values (NaN or inf)")
        mapped[mk] = v
    missing = sorted(set(own) - set(mapped) - {"mbstd_value"})
    if missing:
        raise ValueError(f"{what}: missing tensors {missing[:8]} for the architecture {net.arch()}")
    return mapped


def _load_mapped(net: nn.Module, state: dict, mapper, what: str) -> None:
    mapped = {k: v.float() for k, v in _map_state(net, state, mapper, what).items()}
    own = net.state_dict()
    if "mbstd_value" in own:
        mapped["mbstd_value"] = own["mbstd_value"]
    net.load_state_dict(mapped)


def networks_from_zoo(ckpt: dict, generator: str = "avgG") -> tuple[PGANGenerator, PGANDiscriminator]:
    """G (``avgG``, the smoothed generator the zoo advises, or ``netG``) and D, eval mode, float32.

    The networks the zoo config describes are first built on the meta device
    and every tensor of the file is compared with them (names, shapes, finite
    values): a config asking for a giant network with tiny tensors is refused
    before anything is allocated, as :func:`ganrestore.priors.checkpoint.load_prior`
    compares a safetensors header with its sidecar."""
    ga, da = architectures(ckpt["config"])
    gk = {k: v for k, v in ga.items() if k != "name"}
    dk = {k: v for k, v in da.items() if k != "name"}
    state = ckpt.get(generator)
    if state is None:
        raise ValueError(f"the checkpoint has no {generator!r} state")
    with torch.device("meta"):
        Gm, Dm = PGANGenerator(**gk), PGANDiscriminator(**dk)
    _map_state(Gm, state, _map_generator_key, f"zoo {generator}")
    _map_state(Dm, ckpt["netD"], _map_discriminator_key, "zoo netD")
    G, D = PGANGenerator(**gk), PGANDiscriminator(**dk)
    _load_mapped(G, state, _map_generator_key, f"zoo {generator}")
    _load_mapped(D, ckpt["netD"], _map_discriminator_key, "zoo netD")
    return G.eval(), D.eval()


@torch.no_grad()
def calibrate_mbstd(G: PGANGenerator, D: PGANDiscriminator, n_groups: int = 8, seed: int = 0,
                    device=None) -> float:
    """The mean minibatch std statistic of D on groups of 4 samples of G (the value
    D uses for every image at restoration time, see the module docstring).  About
    140 GFLOP per sample at 512 px: 90 s for 8 groups on 2 CPU threads."""
    if not D.mbstd:
        return 0.0
    from . import default_device

    device = torch.device(device) if device is not None else default_device()   # CUDA when present
    G, D = G.to(device), D.to(device)
    g = torch.Generator().manual_seed(seed)
    vals = []
    for _ in range(n_groups):
        z = torch.randn(4, G.nz, generator=g).to(device)
        vals.append(minibatch_stddev(D.features_4x4(G(z)))[0].item())
    return float(sum(vals) / len(vals))


def convert_zoo_checkpoint(pth, stem, *, url: str | None = None, generator: str = "avgG",
                           mbstd_groups: int = 8, device=None, extra_provenance: dict | None = None,
                           expect_size: int | None = None):
    """Read a zoo checkpoint safely and write it as a prior checkpoint (safetensors + JSON).

    Returns the stem.  The provenance records the source file and URL, its
    sha256, the zoo config (plain data), which generator was kept, and the
    minibatch-std value D will use.  ``expect_size``: refuse (before writing
    anything) a checkpoint whose images are not that size.
    """
    from .checkpoint import save_prior

    ckpt = read_zoo_checkpoint(pth)
    if expect_size is not None:
        depths = architectures(ckpt["config"])[0]["depths"]
        size = 4 * 2 ** (len(depths) - 1)
        if size != int(expect_size):
            raise ValueError(f"{Path(pth).name} makes {size}x{size} images but image_size is {expect_size}: "
                             "set image_size to match, or fetch the checkpoint of that size")
    G, D = networks_from_zoo(ckpt, generator)
    value = calibrate_mbstd(G, D, mbstd_groups, device=device)
    D.mbstd_value.fill_(value)
    G, D = G.cpu().eval(), D.cpu().eval()
    prov = {"kind": "pgan_zoo", "source_file": Path(pth).name, "source_url": url,
            "source_sha256": ckpt["sha256"], "generator": generator,
            "zoo_config": ckpt["config"], "image_size": G.image_size,
            "mbstd_value": value, "mbstd_note": (
                f"D's minibatch-std channel is fixed to the mean statistic of {mbstd_groups} groups of 4 "
                f"{generator} samples (batch-independent restoration)" if D.mbstd else "no minibatch std"),
            "d_kind": D.d_kind,
            "reference": "facebookresearch/pytorch_GAN_zoo (models/progressive_gan.py, "
                         "models/networks/progressive_conv_net.py)",
            "regenerate": f"python scripts/fetch_prior.py --file {Path(pth).name} --out {stem}"}
    prov.update(extra_provenance or {})
    return save_prior(stem, G, D, prov)


__all__ = ["PGANGenerator", "PGANDiscriminator", "official_parameterisation", "PGAN_PARAMETERISATIONS", "ZooConfig", "UnsafeCheckpointError", "ALLOWED_GLOBALS",
           "ZOO_CELEBA", "ZOO_BASE_URL", "pickle_globals", "read_zoo_checkpoint", "architectures",
           "networks_from_zoo", "convert_zoo_checkpoint", "calibrate_mbstd", "minibatch_stddev", "pixel_norm"]
