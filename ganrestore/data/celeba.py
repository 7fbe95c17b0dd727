"""CelebA (Liu et al., ICCV 2015): fetch, verify, crop, and prepare test/val splits.

The files
---------
:data:`CELEBA_FILES` lists the files of the "Align&Cropped" release with the
Google Drive ids and md5 checksums torchvision's ``CelebA`` dataset carries
(``torchvision/datasets/celeba.py``, ``file_list``; the md5 of
``list_landmarks_celeba.txt`` is the one commented out there).  They come from
the official page, https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html
("Align&Cropped Images" -> ``img_align_celeba.zip``; "Anno" -> the ``list_*``
files; "Eval" -> ``list_eval_partition.txt``).

Where the files come from, in order (:func:`locate`):

1. ``archive`` -- a user's ``img_align_celeba.zip``;
2. ``dir`` -- a user's folder holding ``img_align_celeba/`` (extracted) or
   ``img_align_celeba.zip``, and the ``list_*.txt`` files;
3. ``root`` -- the download cache (``results/downloads/celeba`` by default,
   shared by every experiment);
4. a download into ``root`` (Google Drive with its large-file confirmation, or
   ``mirror``: a base URL serving the files by name), resumable and md5-checked
   (:mod:`ganrestore.data.download`) when ``download`` is true.

Every file taken from anywhere is md5-checked against :data:`CELEBA_FILES`
(or the ``md5`` overrides, for a re-packed copy); a missing or bad file stops
with a message naming it and where to get it.  An already extracted
``img_align_celeba/`` folder cannot be checked against the archive's md5:
each image is checked to be a 178x218 RGB picture, and the manifest records
its sha256.

Images are read straight from the zip (no extraction needed for a 100-image
test split); :func:`extract_archive` extracts resumably and atomically for
whoever needs the folder.

Crop protocols
--------------
Each output image is a named, recorded function of the 178x218 aligned image
``x`` (rows ``y``, columns ``x``; PIL boxes are ``(left, top, right,
bottom)``):

``dcgan64``
    The DCGAN/CSGM/Yeh protocol: ``center_crop(x, 108)`` with top-left
    ``(round((178-108)/2), round((218-108)/2)) = (35, 55)``, i.e. box
    ``(35, 55, 143, 163)``, resized to 64x64 with Pillow's bilinear filter,
    which is anti-aliased when downscaling (carpedm20/DCGAN-tensorflow
    ``utils.center_crop``; AshishBora/csgm ``src/dcgan_utils.py``, called with
    ``image_size = 108`` from ``src/celebA_input.py``; both resize with
    ``scipy.misc.imresize``, whose default ``interp='bilinear'`` is Pillow's
    ``BILINEAR``).
``csgm64``
    ``dcgan64`` plus the quirk of that code path: ``imread(...).astype(float)``
    hands ``imresize`` a float array, and ``scipy.misc.toimage`` then
    *byte-scales* it (``(x - min) * 255 / (max - min)``, rounded, over the
    whole 108x108x3 crop) before resizing.  Use it to match CSGM's inputs bit
    for bit; most crops span 0..255 already, so it rarely matters.
``began128`` / ``began64``
    The BEGAN protocol (carpedm20/BEGAN-tensorflow ``data_loader.py``):
    ``tf.image.crop_to_bounding_box(x, 50, 25, 128, 128)``, i.e. box
    ``(25, 50, 153, 178)``, then ``resize_nearest_neighbor`` to the model
    size (identity at 128; at 64, TF1's legacy nearest neighbour takes source
    index ``floor(i * 128 / 64)``).  IAGAN's CelebA experiments use a 128x128
    BEGAN.
``pgan128``
    pytorch_GAN_zoo's ``celeba_cropped`` (``datasets.py`` ``celebaSetup``:
    ``img[cy - 64: cy + 64, cx - 64: cx + 64]`` with ``(cx, cy) = (89, 121)``),
    i.e. box ``(25, 57, 153, 185)``, no resize: the images the zoo's public
    128-px CelebA PGAN (``celebaCropped_s5_i83000-2b0acc76.pth``) was trained on.
``landmarks64`` / ``landmarks128``
    Re-alignment from ``list_landmarks_align_celeba.txt`` through
    :func:`ganrestore.data.align.align_from_landmarks` (similarity fit to the
    mean CelebA landmarks carried into the 108-pixel DCGAN frame), the same
    code that aligns the demo and folder photographs.

Splits
------
The official partition (``list_eval_partition.txt``: 0 train, 1 val, 2
test).  The workflow's ``test`` split is the first ``n_test`` images of
partition 2 in file order (``182638.jpg``, ``182639.jpg``, ... ; 100 as in
the papers), shifted by ``offset``; ``val`` is the first ``n_val`` of
partition 1; ``train`` (only when ``n_train`` is not 0; ``None`` = all
162,770) the first ``n_train`` of partition 0, for training a prior.  Ids are
the file stems (``"182638"``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import merge_defaults
from .download import (GDRIVE_BASE, ChecksumError, check_file, check_file_cached, download_gdrive,
                       download_url)

log = logging.getLogger(__name__)

CELEBA_URL = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"
ALIGNED_SHAPE = (218, 178)  # (H, W) of the "Align&Cropped" images
IMAGE_DIR = "img_align_celeba"
ARCHIVE = "img_align_celeba.zip"
PARTITION = "list_eval_partition.txt"
LANDMARKS_ALIGN = "list_landmarks_align_celeba.txt"


@dataclass(frozen=True)
class CelebAFile:
    name: str
    gdrive_id: str
    md5: str
    where: str  # the heading of the official page that links it

    @property
    def hint(self) -> str:
        return (f"Get {self.name} from {CELEBA_URL} ({self.where}; Google Drive id {self.gdrive_id}) "
                f"and point data.celeba.dir (a folder) or data.celeba.archive (the zip) at it")


#: Google Drive ids and md5s as in torchvision's ``CelebA.file_list``.
CELEBA_FILES: dict[str, CelebAFile] = {f.name: f for f in [
    CelebAFile(ARCHIVE, "0B7EVK8r0v71pZjFTYXZWM3FlRnM", "00d2c5bc6d35e252742224ab0c1e8fcb",
               "Align&Cropped Images"),
    CelebAFile(PARTITION, "0B7EVK8r0v71pY0NSMzRuSXJEVkk", "d32c9cbf5e040fd4025c592c306e6668", "Eval"),
    CelebAFile(LANDMARKS_ALIGN, "0B7EVK8r0v71pd0FJY3Blby1HUTQ", "cc24ecafdb5b50baae59b03474781f8c",
               "Anno"),
    CelebAFile("list_landmarks_celeba.txt", "0B7EVK8r0v71pTzJIdlJWdHczRlU",
               "063ee6ddb681f96bc9ca28c6febb9d1a", "Anno"),
    CelebAFile("list_attr_celeba.txt", "0B7EVK8r0v71pblRyaVFSWGxPY0U", "75e246fa4810816ffd6ee81facbd244c",
               "Anno"),
    CelebAFile("list_bbox_celeba.txt", "0B7EVK8r0v71pbThiMVRxWXZ4dU0", "00566efa6fedff7a56946cd1c10f1c16",
               "Anno"),
    CelebAFile("identity_CelebA.txt", "1_ee_0u7vcNLOfNLegJRHmolfH5ICW-XS",
               "32bd1bd63d3c78cd57e08160ec5ed1e2", "Anno"),
]}

PARTITIONS = {"train": 0, "val": 1, "test": 2}

#: Defaults of the ``data.celeba`` config block (config/schema.yaml describes each key).
DEFAULTS = {
    "root": "results/downloads/celeba",
    "archive": None,
    "dir": None,
    "download": True,
    "gdrive_base": GDRIVE_BASE,
    "mirror": None,
    "md5": {},
    "extract": False,
    "protocol": "dcgan64",
    "n_test": 100,
    "n_val": 0,
    "n_train": 0,
    "offset": 0,
    "retries": 5,
}


def with_defaults(cfg: dict | None) -> dict:
    out = merge_defaults(DEFAULTS, cfg, "data.celeba")
    return out


# ----------------------------------------------------------------------------------------
# crop protocols


@dataclass(frozen=True)
class CropProtocol:
    """A named crop of the 178x218 aligned image: ``box`` then resize to ``size``."""

    name: str
    size: int
    box: tuple[int, int, int, int] | None  # PIL (left, top, right, bottom); None = landmark alignment
    resample: str  # 'bilinear' (Pillow, anti-aliased), 'tf_nearest', 'none', 'landmarks'
    bytescale: bool = False
    source: str = ""

    def spec(self) -> dict:
        return {"name": self.name, "size": self.size, "box": self.box, "resample": self.resample,
                "bytescale": self.bytescale, "source": self.source}


_DCGAN_SRC = ("carpedm20/DCGAN-tensorflow utils.center_crop; AshishBora/csgm src/dcgan_utils.py "
              "(crop 108 from src/celebA_input.py)")
_BEGAN_SRC = "carpedm20/BEGAN-tensorflow data_loader.py: crop_to_bounding_box(50, 25, 128, 128)"
_PGAN_SRC = "facebookresearch/pytorch_GAN_zoo datasets.py celebaSetup: img[121-64:121+64, 89-64:89+64]"

PROTOCOLS: dict[str, CropProtocol] = {p.name: p for p in [
    CropProtocol("dcgan64", 64, (35, 55, 143, 163), "bilinear", False, _DCGAN_SRC),
    CropProtocol("csgm64", 64, (35, 55, 143, 163), "bilinear", True,
                 _DCGAN_SRC + " incl. scipy.misc.imresize byte-scaling of float input"),
    CropProtocol("began128", 128, (25, 50, 153, 178), "none", False, _BEGAN_SRC),
    CropProtocol("began64", 64, (25, 50, 153, 178), "tf_nearest", False,
                 _BEGAN_SRC + " + resize_nearest_neighbor to 64"),
    CropProtocol("pgan128", 128, (25, 57, 153, 185), "none", False, _PGAN_SRC),
    CropProtocol("landmarks64", 64, None, "landmarks", False,
                 "ganrestore.data.align.align_from_landmarks(list_landmarks_align_celeba)"),
    CropProtocol("landmarks128", 128, None, "landmarks", False,
                 "ganrestore.data.align.align_from_landmarks(list_landmarks_align_celeba)"),
]}


def get_protocol(name: str, image_size: int | None = None) -> CropProtocol:
    if name not in PROTOCOLS:
        raise ValueError(f"unknown CelebA crop protocol {name!r}; known: {', '.join(PROTOCOLS)}")
    p = PROTOCOLS[name]
    if image_size is not None and int(image_size) != p.size:
        alts = [q for q in PROTOCOLS if PROTOCOLS[q].size == int(image_size)]
        raise ValueError(f"crop protocol {name!r} makes {p.size}x{p.size} images but image_size is "
                         f"{image_size}; protocols of that size: {', '.join(alts) or 'none'}")
    return p


def bytescale(a: np.ndarray) -> np.ndarray:
    """``scipy.misc.bytescale`` (SciPy <= 1.2) of a float array: min..max -> 0..255, rounded."""
    a = np.asarray(a, dtype=np.float64)
    lo, hi = a.min(), a.max()
    scale = 255.0 / ((hi - lo) or 1.0)
    return (((a - lo) * scale).clip(0, 255) + 0.5).astype(np.uint8)


def tf_nearest_resize(a: np.ndarray, size: int) -> np.ndarray:
    """TF1 ``resize_nearest_neighbor`` (``align_corners=False``, legacy): source ``floor(i * in / out)``."""
    h, w = a.shape[:2]
    rows = np.floor(np.arange(size) * (h / size)).astype(int)
    cols = np.floor(np.arange(size) * (w / size)).astype(int)
    return a[rows][:, cols]


def apply_protocol(img: np.ndarray, protocol: CropProtocol | str, landmarks=None) -> np.ndarray:
    """Crop/resize one aligned CelebA image (uint8 ``(218, 178, 3)``) -> uint8 ``(size, size, 3)``."""
    from PIL import Image

    p = PROTOCOLS[protocol] if isinstance(protocol, str) else protocol
    img = np.asarray(img)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected uint8 (H, W, 3), got {img.dtype} {img.shape}")
    if p.resample == "landmarks":
        if landmarks is None:
            raise ValueError(f"protocol {p.name} needs the image's 5 landmarks")
        from .align import align_from_landmarks  # lazy: pulls in scikit-image warping

        return align_from_landmarks(img, np.asarray(landmarks, float).reshape(5, 2), size=p.size)
    left, top, right, bottom = p.box
    if img.shape[0] < bottom or img.shape[1] < right:
        raise ValueError(f"image {img.shape[:2]} is smaller than crop box {p.box}")
    crop = img[top:bottom, left:right]
    if p.bytescale:
        crop = bytescale(crop)
    if p.resample == "none":
        out = crop
    elif p.resample == "tf_nearest":
        out = tf_nearest_resize(crop, p.size)
    elif p.resample == "bilinear":
        out = np.asarray(Image.fromarray(crop).resize((p.size, p.size), Image.BILINEAR))
    else:  # pragma: no cover - guarded by PROTOCOLS
        raise ValueError(p.resample)
    if out.shape != (p.size, p.size, 3):
        raise AssertionError(f"protocol {p.name} produced {out.shape}")
    return np.ascontiguousarray(out, dtype=np.uint8)


# ----------------------------------------------------------------------------------------
# annotation files


def read_partition(path) -> dict[str, int]:
    """``{filename: partition}`` from ``list_eval_partition.txt`` (file order kept)."""
    out: dict[str, int] = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise ValueError(f"{path}:{n}: expected '<file> <0|1|2>', got {line.strip()!r}")
            if parts[0] in out:
                raise ValueError(f"{path}:{n}: duplicate entry {parts[0]}")
            out[parts[0]] = int(parts[1])
    return out


def read_landmarks(path) -> dict[str, np.ndarray]:
    """``{filename: (5, 2) float (x, y)}`` from a CelebA landmark file (count line, header, rows)."""
    out: dict[str, np.ndarray] = {}
    with open(path) as f:
        lines = f.read().splitlines()
    if len(lines) < 2:
        raise ValueError(f"{path}: too short to be a CelebA landmark file")
    for n, line in enumerate(lines[2:], 3):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 11:
            raise ValueError(f"{path}:{n}: expected a file name and 10 numbers, got {len(parts)} fields")
        out[parts[0]] = np.asarray(parts[1:], dtype=float).reshape(5, 2)
    return out


def split_files(partition: dict[str, int], split: str, n: int | None, offset: int = 0) -> list[str]:
    """The first ``n`` files (after ``offset``) of an official split, in file order."""
    if split not in PARTITIONS:
        raise ValueError(f"split must be one of {list(PARTITIONS)}, got {split!r}")
    files = [f for f, p in partition.items() if p == PARTITIONS[split]]
    files = files[offset:] if n is None else files[offset:offset + n]
    if n is not None and len(files) < n:
        raise ValueError(f"CelebA {split} split has {len(files) + offset} images; asked for {n} "
                         f"after offset {offset}")
    return files


# ----------------------------------------------------------------------------------------
# locating / fetching / verifying


def _md5_for(name: str, cfg: dict) -> str:
    return (cfg.get("md5") or {}).get(name) or CELEBA_FILES[name].md5


def fetch_file(name: str, cfg: dict, progress: bool = True) -> Path:
    """A verified copy of one CelebA file: the user's (archive/dir), the cache, or a download."""
    cfg = with_defaults(cfg)
    meta = CELEBA_FILES[name]
    md5 = _md5_for(name, cfg)
    if name == ARCHIVE and cfg["archive"]:
        user = Path(cfg["archive"])
        if not user.is_file():
            raise FileNotFoundError(f"data.celeba.archive: {user} does not exist. {meta.hint}")
        check_file(user, md5=md5, hint=meta.hint, name=name)  # raises ChecksumError
        return user
    if cfg["dir"] and (Path(cfg["dir"]) / name).is_file():
        user = Path(cfg["dir"]) / name
        check_file(user, md5=md5, hint=meta.hint, name=name)  # nothing written into the user's folder
        return user
    cached = Path(cfg["root"]) / name
    candidates = ([Path(cfg["dir"]) / name] if cfg["dir"] else []) + [cached]
    if cached.is_file():
        # verified once, then trusted while its size and mtime are unchanged (a .verified stamp)
        try:
            check_file_cached(cached, md5=md5, hint=meta.hint, name=name)
            return cached
        except ChecksumError:
            if not cfg["download"]:
                raise
            log.warning("%s in the cache fails its md5; downloading it again", cached)
            cached.unlink()
    if not cfg["download"]:
        raise FileNotFoundError(f"{name} not found (looked in {', '.join(map(str, candidates))}) and "
                                f"data.celeba.download is false. {meta.hint}")
    log.info("downloading %s into %s", name, cached.parent)
    if cfg["mirror"]:
        url = cfg["mirror"].rstrip("/") + "/" + name
        return download_url(url, cached, md5=md5, retries=cfg["retries"], progress=progress,
                            hint=meta.hint)
    return download_gdrive(meta.gdrive_id, cached, md5=md5, base=cfg["gdrive_base"],
                           retries=cfg["retries"], progress=progress, hint=meta.hint)


class ImageStore:
    """Read CelebA aligned images by file name from a folder or straight from the zip."""

    def __init__(self, folder: Path | None = None, archive: Path | None = None):
        if (folder is None) == (archive is None):
            raise ValueError("give exactly one of folder, archive")
        self.folder, self.archive = folder, archive
        self._zip = None
        self._index: dict[str, str] = {}
        if archive is not None:
            self._zip = zipfile.ZipFile(archive)
            for info in self._zip.infolist():
                if not info.is_dir():
                    self._index.setdefault(Path(info.filename).name, info.filename)

    def source(self, name: str) -> str:
        if self._zip is not None:
            return f"{self.archive.name}:{self._index.get(name, name)}"
        return f"{self.folder.name}/{name}"

    def read_bytes(self, name: str) -> bytes:
        if self._zip is not None:
            if name not in self._index:
                raise FileNotFoundError(f"{name} is not in {self.archive}")
            return self._zip.read(self._index[name])  # CRC-checked by zipfile
        p = self.folder / name
        if not p.is_file():
            raise FileNotFoundError(f"{name}: not found in {self.folder}")
        return p.read_bytes()

    def close(self):
        if self._zip is not None:
            self._zip.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def decode_rgb(data: bytes, name: str = "image") -> np.ndarray:
    """uint8 RGB from image bytes by :func:`ganrestore.data.imageio.read_image` (``ValueError`` naming
    ``name`` when undecodable or refused)."""
    from .imageio import read_image

    return read_image(data, name)


def open_images(cfg: dict, progress: bool = True) -> ImageStore:
    """Where the aligned images are: an extracted folder in ``dir`` or ``root``, else the verified zip."""
    cfg = with_defaults(cfg)
    if not cfg["archive"]:
        for base in [cfg["dir"], cfg["root"]]:
            if base and (Path(base) / IMAGE_DIR).is_dir() and (
                    base == cfg["dir"] or (Path(base) / IMAGE_DIR / ".extracted.json").is_file()):
                log.info("reading images from the extracted folder %s", Path(base) / IMAGE_DIR)
                return ImageStore(folder=Path(base) / IMAGE_DIR)
    archive = fetch_file(ARCHIVE, cfg, progress)
    if cfg["extract"]:
        dest = extract_archive(archive, Path(cfg["root"]), progress=progress)
        return ImageStore(folder=dest / IMAGE_DIR)
    return ImageStore(archive=archive)


def extract_archive(archive, dest, progress: bool = True) -> Path:
    """Extract ``archive`` into ``dest``: resumable and atomic per member.

    Each member is written to a temporary file and renamed, so a killed run
    leaves only whole files (plus temporaries, cleaned up next time); members
    already present with the right size are skipped.  A marker
    ``<top>/.extracted.json`` (the archive's size and mtime) is written last;
    :func:`open_images` trusts an extracted folder in ``root`` only with it.
    """
    from tqdm.auto import tqdm

    from ..io import write_json_atomic

    archive, dest = Path(archive), Path(dest)
    st = archive.stat()
    stamp = {"archive": archive.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    with zipfile.ZipFile(archive) as z:
        infos = [i for i in z.infolist() if not i.is_dir()]
        tops = {Path(i.filename).parts[0] for i in infos}
        marker = dest / (IMAGE_DIR if IMAGE_DIR in tops else "") / ".extracted.json"
        if marker.is_file():
            import json

            if json.loads(marker.read_text()) == stamp:
                return dest
        root = dest.resolve()
        for info in tqdm(infos, desc=f"extract {archive.name}", disable=not progress,
                         mininterval=1.0, leave=False):
            target = (dest / info.filename).resolve()
            if root not in target.parents:
                raise ValueError(f"{archive}: member {info.filename!r} would land outside {dest}")
            if target.is_file() and target.stat().st_size == info.file_size:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.part")
            with z.open(info) as src, open(tmp, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            os.replace(tmp, target)
        for leftover in dest.rglob(".*.part"):
            leftover.unlink(missing_ok=True)
    write_json_atomic(marker, stamp)
    return dest


# ----------------------------------------------------------------------------------------
# preparing splits


def load_images(cfg: dict, split: str, n: int | None, image_size: int | None = None,
                offset: int | None = None, progress: bool = True) -> dict:
    """The cropped images of a CelebA split.

    Returns ``{"images": uint8 (N, S, S, 3), "ids": list[str], "manifest": list[dict],
    "protocol": dict, "files": {name: md5}}``.
    """
    from tqdm.auto import tqdm

    from ..io import sha256_array

    cfg = with_defaults(cfg)
    protocol = get_protocol(cfg["protocol"], image_size)
    offset = cfg["offset"] if offset is None else offset
    part_path = fetch_file(PARTITION, cfg, progress)
    files_used = {PARTITION: _md5_for(PARTITION, cfg)}
    names = split_files(read_partition(part_path), split, n, offset if split == "test" else 0)
    landmarks = None
    if protocol.resample == "landmarks":
        lm_path = fetch_file(LANDMARKS_ALIGN, cfg, progress)
        files_used[LANDMARKS_ALIGN] = _md5_for(LANDMARKS_ALIGN, cfg)
        landmarks = read_landmarks(lm_path)
    images, ids, rows = [], [], []
    if not names:
        return {"images": np.zeros((0, protocol.size, protocol.size, 3), np.uint8), "ids": [],
                "manifest": [], "protocol": protocol.spec(), "files": files_used}
    with open_images(cfg, progress) as store:
        if store.archive is not None:
            files_used[ARCHIVE] = _md5_for(ARCHIVE, cfg)
        for name in tqdm(names, desc=f"celeba {split} ({protocol.name})", disable=not progress,
                         mininterval=1.0, leave=False):
            data = store.read_bytes(name)
            img = decode_rgb(data, store.source(name))
            if img.shape[:2] != ALIGNED_SHAPE:
                raise ValueError(f"{store.source(name)}: {img.shape[1]}x{img.shape[0]} pixels, not a "
                                 f"CelebA aligned image (178x218). Use the 'Align&Cropped' release.")
            lm = None
            if landmarks is not None:
                if name not in landmarks:
                    raise KeyError(f"{name} has no entry in {LANDMARKS_ALIGN}")
                lm = landmarks[name]
            out = apply_protocol(img, protocol, lm)
            images.append(out)
            ids.append(Path(name).stem)
            rows.append({"id": Path(name).stem, "source": store.source(name),
                         "source_sha256": hashlib.sha256(data).hexdigest(),
                         "protocol": protocol.name, "image_size": protocol.size,
                         "sha256": sha256_array(out)})
    return {"images": np.stack(images), "ids": ids, "manifest": rows, "protocol": protocol.spec(),
            "files": files_used}


def build_celeba(cfg: dict, image_size: int, progress: bool = True) -> dict:
    """The workflow splits: ``{"test": {...}, "val": {...}, ["train": {...},] "manifest": rows}``.

    ``train`` (the official train partition, for training a prior) only when
    ``n_train`` is not 0; see :func:`load_images` for each split's fields.
    """
    cfg = with_defaults(cfg)
    out: dict = {"manifest": []}
    splits = [("test", cfg["n_test"]), ("val", cfg["n_val"])]
    if cfg["n_train"] != 0:  # None = the whole official train partition
        splits.append(("train", cfg["n_train"]))
    for split, n in splits:
        part = load_images(cfg, split, n, image_size, progress=progress)
        out[split] = part
        out["manifest"] += [{"split": split, "index": k, **r} for k, r in enumerate(part["manifest"])]
    return out


__all__ = ["ALIGNED_SHAPE", "CELEBA_FILES", "CelebAFile", "CropProtocol", "DEFAULTS", "ImageStore",
           "PARTITIONS", "PROTOCOLS", "apply_protocol", "build_celeba", "bytescale", "extract_archive",
           "fetch_file", "get_protocol", "load_images", "open_images", "read_landmarks",
           "read_partition", "split_files", "tf_nearest_resize", "with_defaults"]
