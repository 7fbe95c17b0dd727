"""CelebA-HQ (Karras et al., ICLR 2018): prepare test/val splits from the 1024x1024 images.

CelebA-HQ is 30,000 1024x1024 faces made from in-the-wild CelebA by PGGAN's
``dataset_tool.py create_celebahq`` (artifact removal, 4x super-resolution,
landmark-based crop, mirror padding, Gaussian blending).  It is not a plain
download, so two routes lead to it; both end in a folder (or archive) of the
1024x1024 images that this module reads:

1. **User-supplied images (the usual route).**  A folder, ``.zip`` or
   ``.tar[.gz]`` of the 30,000 images as the common redistributions ship them
   (``imgHQ00000.jpg`` / ``.png``, ``00000.jpg``, ``0.jpg`` (CelebAMask-HQ's
   ``CelebA-HQ-img``), or the torrent's ``imgHQ00000.npy`` arrays).  Set
   ``data.celebahq.dir`` or ``data.celebahq.archive``.
2. **The official generation.**  Download in-the-wild CelebA
   (``img_celeba.7z``, ``list_landmarks_celeba.txt``) and the delta files
   (``Anno/image_list.txt`` and ``deltas00000.zip`` ... ``deltas29000.zip``
   from the CelebA-HQ folder of the CelebA Google Drive), then run
   ``python dataset_tool.py create_celebahq <tfrecord dir> <celeba dir>
   <delta dir>`` from https://github.com/tkarras/progressive_growing_of_gans
   (TensorFlow 1, plus ``cryptography`` for the AES-encrypted deltas).  It
   writes TFRecords; export the 1024x1024 level as images (one PNG per record,
   named by record index ``imgHQ%05d.png``) and use route 1.  This is not
   automated here (it needs TF1 and ~100 GB of scratch).

Which images form the test split: CelebA-HQ has no official partition (PGGAN
trained on all 30,000).  IAGAN reports "100 images from CelebA-HQ" without
naming them.  The ``test`` split here is the first ``n_test`` images in
natural file-name order after ``offset``; ``val`` is the ``n_val`` images that
follow the test ones.  Ids are the file stems.

Resizing to the configured ``image_size``: ``resample: box`` (default) is
PGGAN's own pyramid -- each lower level of its TFRecords is the 2x2 mean of
the level above in float, rounded once -- which for a power-of-two factor ``f``
equals the mean over ``f x f`` blocks (exact, and what PGGAN generators at
lower resolutions were trained on).  ``lanczos`` / ``bicubic`` use Pillow's
anti-aliased filters for other factors; ``bilinear`` is Pillow's anti-aliased
bilinear filter, how pytorch_GAN_zoo's ``datasets.py`` (``NumpyResize``,
``Image.BILINEAR``) resized CelebA-HQ for its public 256 / 512 px PGANs.
Sizes 64 to 1024 (``image_size``); 1024 keeps the images as they are.
"""

from __future__ import annotations

import hashlib
import io as _io
import logging
import re
import tarfile
import zipfile
from pathlib import Path

import numpy as np

from . import merge_defaults

log = logging.getLogger(__name__)

EXTENSIONS = (".png", ".jpg", ".jpeg", ".npy", ".webp", ".bmp")

DEFAULTS = {
    "dir": None,
    "archive": None,
    "n_test": 100,
    "n_val": 0,
    "offset": 0,
    "resample": "box",
    "expect_size": 1024,
}


def with_defaults(cfg: dict | None) -> dict:
    out = merge_defaults(DEFAULTS, cfg, "data.celebahq")
    return out


def natural_key(name: str):
    """Sort key that orders ``img2`` before ``img10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


class HQSource:
    """Image files of a folder, zip or tar, listed in natural order, read as bytes."""

    def __init__(self, path):
        self.path = Path(path)
        self._zip = self._tar = None
        if self.path.is_dir():
            self.names = sorted((str(p.relative_to(self.path)) for p in self.path.rglob("*")
                                 if p.is_file() and p.suffix.lower() in EXTENSIONS
                                 and not p.name.startswith(".")), key=natural_key)
        elif zipfile.is_zipfile(self.path):
            self._zip = zipfile.ZipFile(self.path)
            self.names = sorted((i.filename for i in self._zip.infolist()
                                 if not i.is_dir() and Path(i.filename).suffix.lower() in EXTENSIONS
                                 and not Path(i.filename).name.startswith(".")), key=natural_key)
        elif self.path.is_file() and tarfile.is_tarfile(self.path):
            self._tar = tarfile.open(self.path)
            self._members = {m.name: m for m in self._tar.getmembers()
                             if m.isfile() and Path(m.name).suffix.lower() in EXTENSIONS
                             and not Path(m.name).name.startswith(".")}
            self.names = sorted(self._members, key=natural_key)
        else:
            raise FileNotFoundError(f"CelebA-HQ source {self.path} is neither a folder nor a zip/tar archive")
        if not self.names:
            raise FileNotFoundError(f"no images ({', '.join(EXTENSIONS)}) in {self.path}")

    def read_bytes(self, name: str) -> bytes:
        if self._zip is not None:
            return self._zip.read(name)
        if self._tar is not None:
            f = self._tar.extractfile(self._members[name])  # bytes only: nothing written to disk
            return f.read()
        return (self.path / name).read_bytes()

    def close(self):
        for h in (self._zip, self._tar):
            if h is not None:
                h.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def decode(data: bytes, name: str) -> np.ndarray:
    """uint8 (H, W, 3) from image bytes or a ``.npy`` array ((1,)3,H,W or H,W,3; no pickles)."""
    if name.lower().endswith(".npy"):
        a = np.load(_io.BytesIO(data), allow_pickle=False)
        a = np.squeeze(a)
        if a.ndim == 3 and a.shape[0] == 3 and a.shape[-1] != 3:
            a = a.transpose(1, 2, 0)
        if a.ndim != 3 or a.shape[-1] != 3 or a.dtype != np.uint8:
            raise ValueError(f"{name}: expected a uint8 RGB array, got {a.dtype} {a.shape}")
        return np.ascontiguousarray(a)
    from .celeba import decode_rgb

    return decode_rgb(data, name)


def resize_hq(img: np.ndarray, size: int, resample: str = "box") -> np.ndarray:
    """Anti-aliased downscale of a square uint8 image to ``size`` (see the module docstring)."""
    h, w = img.shape[:2]
    if h != w:
        raise ValueError(f"CelebA-HQ images are square; got {w}x{h}")
    if size == h:
        return img
    if resample == "box":
        if h % size:
            raise ValueError(f"resample 'box' needs image size {h} divisible by {size}; "
                             f"use 'lanczos' or 'bicubic'")
        f = h // size
        m = img.reshape(size, f, size, f, 3).astype(np.float64).mean(axis=(1, 3))
        return np.clip(np.rint(m), 0, 255).astype(np.uint8)
    from PIL import Image

    filt = {"lanczos": Image.LANCZOS, "bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}.get(resample)
    if filt is None:
        raise ValueError(f"resample must be box, lanczos, bicubic or bilinear, got {resample!r}")
    return np.asarray(Image.fromarray(img).resize((size, size), filt))


def _safe_id(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", Path(name).stem)


def build_celebahq(cfg: dict, image_size: int, progress: bool = True) -> dict:
    """Test and val splits: ``{"test": {"images", "ids"}, "val": {...}, "manifest": rows}``."""
    from tqdm.auto import tqdm

    from ..io import sha256_array

    cfg = with_defaults(cfg)
    src_path = cfg["archive"] or cfg["dir"]
    if not src_path:
        raise ValueError("data.celebahq: set dir (a folder of the 1024x1024 images) or archive "
                         "(a zip/tar of them); see config/README.md for how to obtain CelebA-HQ")
    out: dict = {"manifest": []}
    with HQSource(src_path) as src:
        start = cfg["offset"]
        need = cfg["n_test"] + cfg["n_val"]
        if start + need > len(src.names):
            raise ValueError(f"{src_path}: {len(src.names)} images; asked for {need} after offset {start}")
        chosen = {"test": src.names[start:start + cfg["n_test"]],
                  "val": src.names[start + cfg["n_test"]:start + need]}
        for split, names in chosen.items():
            images, ids = [], []
            for k, name in enumerate(tqdm(names, desc=f"celebahq {split}", disable=not progress,
                                          mininterval=1.0, leave=False)):
                data = src.read_bytes(name)
                img = decode(data, name)
                if cfg["expect_size"] and img.shape[:2] != (cfg["expect_size"],) * 2:
                    raise ValueError(f"{name}: {img.shape[1]}x{img.shape[0]} pixels; CelebA-HQ images are "
                                     f"{cfg['expect_size']}x{cfg['expect_size']} (set expect_size: null "
                                     f"to accept other square sizes)")
                small = resize_hq(img, image_size, cfg["resample"])
                images.append(small)
                ids.append(_safe_id(name))
                out["manifest"].append({"split": split, "index": k, "id": ids[-1],
                                        "source": f"{Path(src_path).name}:{name}",
                                        "source_sha256": hashlib.sha256(data).hexdigest(),
                                        "protocol": f"celebahq_{cfg['resample']}", "image_size": image_size,
                                        "sha256": sha256_array(small)})
            if len(set(ids)) != len(ids):
                raise ValueError(f"{src_path}: duplicate image ids in the {split} split")
            out[split] = {"images": np.stack(images) if images else
                          np.zeros((0, image_size, image_size, 3), np.uint8), "ids": ids}
    return out


__all__ = ["DEFAULTS", "HQSource", "build_celebahq", "decode", "natural_key", "resize_hq", "with_defaults"]
