"""Artifact I/O: atomic writes of ``.npz`` arrays plus a JSON provenance sidecar.

Every artifact is written to a temporary file in the destination folder and
renamed into place, so a killed run never leaves a half-written file that a
later run would trust.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str | None = None):
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix or ".tmp",
                               dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes_atomic(path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)


def write_text_atomic(path, text: str) -> None:
    write_bytes_atomic(path, text.encode())


def write_json_atomic(path, obj) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")


def versions() -> dict:
    import torch

    import ganrestore

    out = {"python": platform.python_version(), "numpy": np.__version__,
           "torch": torch.__version__, "ganrestore": ganrestore.__version__}
    try:
        import skimage
        out["scikit-image"] = skimage.__version__
    except ImportError:  # pragma: no cover
        pass
    return out


def sidecar_path(path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".json")


def save_artifact(path, arrays: dict, meta: dict | None = None) -> None:
    """Write ``arrays`` as ``path`` (.npz) and ``meta`` + versions as ``path.json``.

    The sidecar is written first, the arrays last: the ``.npz`` existing means
    the artifact is complete.
    """
    path = Path(path)
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    for k, v in arrays.items():
        if v.dtype == object:
            raise TypeError(f"array {k!r} has dtype object; artifacts hold plain arrays only")
    meta = dict(meta or {})
    meta.setdefault("written_at", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    meta["versions"] = versions()
    meta["arrays"] = {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()}
    write_json_atomic(sidecar_path(path), meta)
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **arrays)


def load_artifact(path) -> dict:
    """Arrays of an artifact (no pickles: ``allow_pickle=False``)."""
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def load_meta(path) -> dict:
    p = sidecar_path(path)
    return json.loads(p.read_text()) if p.exists() else {}


def sha256_file(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def sha256_array(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def to_uint8(x) -> np.ndarray:
    """(B,3,H,W) float in [0,1] (tensor or array) -> (B,H,W,3) uint8."""
    a = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    a = np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8)
    return a.transpose(0, 2, 3, 1)


def from_uint8(a: np.ndarray):
    """(B,H,W,3) uint8 -> (B,3,H,W) float32 tensor in [0,1]."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2))).float() / 255.0


def load_split(path):
    """A prepared dataset split: ``(images (B,3,H,W) float tensor, ids list[str])``."""
    d = load_artifact(path)
    return from_uint8(d["images"]), [str(i) for i in d["ids"]]
