"""Artifact I/O: atomic writes of ``.npz`` arrays plus a JSON provenance sidecar.

Every artifact is written to a temporary file in the destination folder,
flushed to disk (``fsync``) and renamed into place, the folder fsync'ed after
the rename, so neither a killed run nor a power cut leaves a half-written or
empty "complete" file that a later run would trust.

Artifacts damaged at rest are not trusted either.  Snakemake does not re-check
outputs that exist (a ``.npz`` truncated in place with its mtime kept looks up
to date), so the library does: every sidecar records its artifact's sha256 and
size (:func:`save_artifact`), every reader verifies them (:func:`load_artifact`)
and refuses a damaged file with an :class:`ArtifactError` that names the file,
what is wrong with it, the rule that makes it and how to remake it
(``snakemake --forcerun <rule>``, or delete it).  ``ganrestore verify
results/<name>`` (:mod:`ganrestore.verify`) checks a whole results tree.
Verifying costs one sha256 pass per read (about 1.5 ms per MB here, the file
then read from the page cache by ``np.load``; ``benchmarks/bench_verify.py``).
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


class ArtifactError(ValueError):
    """An artifact (or its sidecar) is missing a piece, damaged or unreadable.

    ``path`` is the file, ``rule`` the workflow rule that makes it (None when
    unknown); the message says what is wrong and how to remake it."""

    def __init__(self, path, problem: str, rule: str | None = None):
        self.path, self.problem, self.rule = str(path), problem, rule
        super().__init__(f"{path}: {problem}. {remake_hint(path, rule)}")


def remake_hint(path, rule: str | None = None) -> str:
    """How to remake a damaged artifact: its rule with ``--forcerun``, or delete it
    (a file under ``results/``); a file the workflow does not make (a committed
    checkpoint, your own data) is restored from where it came from."""
    rule = rule or producer_rule(path)
    if rule:
        which = (" (<source> as data.source says: prepare_demo, prepare_celeba, prepare_celebahq, "
                 "prepare_folder or prepare_plugin)" if "<source>" in rule else "")
        return (f"It is made by rule {rule}{which}: remake it with `snakemake --forcerun {rule}` (reruns every "
                f"{rule} job), or delete {path} and run the workflow again (reruns that job only)")
    if "results" in Path(path).parts:
        return f"Delete {path} and run the workflow again: it will be remade"
    return (f"The workflow does not make {path}: restore a good copy (`git checkout -- {path}` for a file "
            "of the checkout, or the command its provenance records)")


#: results/<name>/<folder>/... -> the rule that writes the artifacts under it
_RULE_OF_FOLDER = {"corrupt": "corrupt", "restore": "restore", "classical": "learn_dictionary",
                   "cgan_cross": "cgan_cross_restore", "metrics": "evaluate", "priors": "train_gan",
                   "cgan": "train_cgan"}


def producer_rule(path, meta: dict | None = None) -> str | None:
    """The workflow rule that writes ``path``: from the sidecar's ``stage`` when
    readable, else from the folder under ``results/<name>/`` (None when unknown)."""
    stage = (meta or {}).get("stage") if isinstance(meta, dict) else None
    source = (meta or {}).get("source") if isinstance(meta, dict) else None
    if stage in ("data", "prepare"):
        if (meta or {}).get("plugin"):
            return "prepare_plugin"           # ganrestore.plugins.prepare_source
        return f"prepare_{source}" if isinstance(source, str) and source.isidentifier() else "prepare_<source>"
    if stage == "cgan_cross_restore":
        return "cgan_cross_restore"
    if stage in ("corrupt", "restore", "learn_dictionary"):
        return stage
    parts = Path(path).parts
    if "results" in parts:
        i = len(parts) - 1 - parts[::-1].index("results")
        rest = parts[i + 2:]
        if len(rest) >= 2:
            if rest[0] == "data":
                return "prepare_<source>"
            return _RULE_OF_FOLDER.get(rest[0])
    return None


def _fsync_path(path, directory: bool = False) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        if directory:
            return                     # a folder that cannot be opened (non-POSIX): nothing to sync
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(fd)


def _unwritable(folder: Path, e: OSError) -> OSError:
    """``e`` re-raised naming the folder and the errno (EROFS, EACCES, ENOSPC, ...)."""
    import errno as _errno

    name = _errno.errorcode.get(e.errno, str(e.errno)) if e.errno else "?"
    return type(e)(e.errno, f"cannot write into {folder}: {e.strerror or e} (errno {e.errno} {name})"
                   + ("; make the folder writable or set another results location"
                      if e.errno in (_errno.EROFS, _errno.EACCES, _errno.EPERM) else ""))


def check_writable(folder) -> None:
    """Raise an ``OSError`` naming the first folder that cannot be written (``folder``,
    created if missing, or any folder under it) with its errno, e.g. a read-only
    ``results/`` (EROFS) or one of another user (EACCES).  The workflow calls it
    before its first job, so a run into such a folder stops with that message
    instead of a failed job."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _unwritable(folder, e) from e
    for d, subdirs, _ in os.walk(folder):
        subdirs[:] = [s for s in subdirs if not s.startswith(".")]
        if os.access(d, os.W_OK | os.X_OK):
            continue
        try:                                  # the real errno, as a write would meet it
            fd, tmp = tempfile.mkstemp(prefix=".ganrestore-write-check.", dir=d)
        except OSError as e:
            raise _unwritable(Path(d), e) from e
        os.close(fd)
        os.unlink(tmp)


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str | None = None):
    """Yield a temporary path next to ``path``; on success fsync it, rename it onto
    ``path`` and fsync the folder (a power cut leaves the old file or the new
    one, never an empty one).  A folder that cannot be written raises an
    ``OSError`` naming it and the errno."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix or ".tmp",
                                   dir=path.parent)
    except OSError as e:
        raise _unwritable(path.parent, e) from e
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual mode
        _fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_path(path.parent, directory=True)


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

    The arrays go to a temporary file first; the sidecar, recording that file's
    ``sha256`` and ``bytes``, is written next; the ``.npz`` is renamed into place
    last: the ``.npz`` existing means the artifact is complete, and its sidecar
    says what its bytes must hash to.
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
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **arrays)
        meta["sha256"], meta["bytes"] = sha256_file(tmp), Path(tmp).stat().st_size
        write_json_atomic(sidecar_path(path), meta)


def read_json(path, what: str = "JSON file", rule: str | None = None):
    """``json.loads`` of a file, or an :class:`ArtifactError` naming it (and the rule
    that makes it) when it is not readable JSON."""
    try:
        return json.loads(Path(path).read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise
    except (ValueError, OSError) as e:  # JSONDecodeError, UnicodeDecodeError, EIO
        raise ArtifactError(path, f"not a readable {what} ({type(e).__name__}: {e})", rule) from None


def load_meta(path) -> dict:
    """The sidecar of ``path`` (``{}`` when there is none); an :class:`ArtifactError`
    naming the sidecar when it is not a JSON object."""
    p = sidecar_path(path)
    if not p.exists():
        return {}
    meta = read_json(p, f"sidecar of {Path(path).name}", producer_rule(path))
    if not isinstance(meta, dict):
        raise ArtifactError(p, f"not a sidecar (a JSON {type(meta).__name__}, not an object)", producer_rule(path))
    return meta


def check_artifact(path, meta: dict | None = None) -> dict:
    """Verify ``path`` against its sidecar (``meta``, read when not given): the
    recorded size and sha256 must match.  Returns the sidecar; raises
    :class:`ArtifactError` naming the file when they differ, ``FileNotFoundError``
    when it is missing.  A sidecar without a checksum (written before they were
    recorded) or no sidecar passes: nothing to compare with."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"artifact {path} not found")
    meta = load_meta(path) if meta is None else meta
    want = meta.get("sha256")
    if not want:
        return meta
    rule = producer_rule(path, meta)
    size = path.stat().st_size
    if meta.get("bytes") is not None and size != meta["bytes"]:
        raise ArtifactError(path, f"damaged: {size} bytes, its sidecar {sidecar_path(path).name} records "
                                  f"{meta['bytes']} (truncated or overwritten in place)", rule)
    got = sha256_file(path)
    if got != want:
        raise ArtifactError(path, f"damaged: its sha256 is {got}, its sidecar {sidecar_path(path).name} "
                                  f"records {want} (modified in place)", rule)
    return meta


def load_artifact(path, verify: bool = True) -> dict:
    """Arrays of an artifact (no pickles: ``allow_pickle=False``), verified first
    against its sidecar's sha256 (:func:`check_artifact`; ``verify=False`` skips
    that).  A damaged or unreadable file raises :class:`ArtifactError` naming it."""
    meta = check_artifact(path) if verify else {}
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except (FileNotFoundError, MemoryError):
        raise
    except Exception as e:  # BadZipFile, ValueError (pickled / bad header), EOFError, zlib.error, OSError
        raise ArtifactError(path, f"not a readable .npz ({type(e).__name__}: {e}): damaged or truncated",
                            producer_rule(path, meta)) from None


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
