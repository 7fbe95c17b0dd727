"""Any folder of face photographs -> detected, aligned, cropped test/val splits.

Each photograph is decoded to 8-bit RGB (EXIF orientation applied, 16-bit and
alpha converted: :mod:`ganrestore.data.imageio`), every face in it is
detected and aligned to the CelebA DCGAN framing by
:func:`ganrestore.data.align.align_faces` -- the code that prepares the
embedded demo -- and cropped to ``image_size``.  With ``align: false`` the
photographs are taken as already aligned: central square crop, anti-aliased
(Pillow bicubic) resize.

Ordering is deterministic: files sorted by their path relative to ``dir`` in
natural order (``img2`` before ``img10``), faces in detection order.  Ids are
the relative path without extension (separators and odd characters -> ``_``),
with ``_f<k>`` appended for the k-th face when ``faces: all`` keeps several.
The first ``n_test`` faces form the test split, the next ``n_val`` the
validation split; ``n_test: None`` (library use) keeps every face, the last
``n_val`` going to validation.  The workflow needs ``n_test`` as a number
(it shards the test split before any photograph is read).

Bad inputs: ``on_error: raise`` (default) stops at the first file that cannot
be decoded or is refused by :func:`ganrestore.data.imageio.read_image` (a
decompression bomb, more than ``MAX_PIXELS`` pixels, an unsupported pixel
mode), naming it; ``skip`` logs a warning naming the file and goes on.
``on_no_face`` does the same for photographs with no detected face (default
``skip``).  Every kept face has a manifest row (source file, its sha256, the
face index, the output's sha256).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from . import merge_defaults

from .celebahq import natural_key
from .imageio import read_image

log = logging.getLogger(__name__)

EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")

DEFAULTS = {
    "dir": None,
    "recursive": True,
    "align": True,
    "faces": "first",
    "on_error": "raise",
    "on_no_face": "skip",
    "n_test": None,
    "n_val": 0,
}


def with_defaults(cfg: dict | None) -> dict:
    out = merge_defaults(DEFAULTS, cfg, "data.folder")
    for key, allowed in (("on_error", ("raise", "skip")), ("on_no_face", ("raise", "skip")),
                         ("faces", ("first", "all"))):
        if out[key] not in allowed:
            raise ValueError(f"data.folder.{key} must be one of {allowed}, got {out[key]!r}")
    return out


def list_images(folder, recursive: bool = True) -> list[Path]:
    """Image files under ``folder`` (hidden files skipped), natural order of the relative path.

    What is left out is logged (a warning each kind): files of other types
    (``.gif``, ``.txt``, ...: counted per extension) and symbolic links that
    loop or point nowhere (named).  Symlinked folders are not descended into."""
    from collections import Counter

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"data.folder.dir: {folder} is not a folder")
    it = folder.rglob("*") if recursive else folder.iterdir()
    files, other, dangling = [], Counter(), []
    for p in it:
        if any(part.startswith(".") for part in p.relative_to(folder).parts):
            continue
        if p.is_symlink() and not p.exists():       # a loop (ELOOP) or a link to nothing
            dangling.append(p)
            continue
        if not p.is_file():
            continue
        if p.suffix.lower() in EXTENSIONS:
            files.append(p)
        else:
            other[p.suffix.lower() or "(no extension)"] += 1
    if other:
        log.warning("data.folder.dir %s: skipping %d files that are not of a supported image type (%s); "
                    "supported: %s", folder, sum(other.values()),
                    ", ".join(f"{ext}: {n}" for ext, n in sorted(other.items())), " ".join(EXTENSIONS))
    for p in dangling[:20]:
        log.warning("data.folder.dir %s: skipping %s: a symbolic link that loops or points nowhere", folder, p)
    if len(dangling) > 20:
        log.warning("data.folder.dir %s: ... and %d more such links", folder, len(dangling) - 20)
    return sorted(files, key=lambda p: natural_key(p.relative_to(folder).as_posix()))


def read_photo(path) -> np.ndarray:
    """uint8 RGB (H, W, 3) by :func:`ganrestore.data.imageio.read_image` (EXIF orientation
    applied, 16-bit and alpha converted, oversized images refused); ``ValueError`` naming the file."""
    return read_image(path)


def center_crop_resize(img: np.ndarray, size: int) -> np.ndarray:
    """Central square crop, then Pillow's anti-aliased bicubic resize to ``size``."""
    from PIL import Image

    h, w = img.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    crop = img[top:top + s, left:left + s]
    if s == size:
        return np.ascontiguousarray(crop)
    return np.asarray(Image.fromarray(crop).resize((size, size), Image.BICUBIC))


def _make_id(rel: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", rel.with_suffix("").as_posix().replace("/", "__"))


def _default_aligner(size: int):
    from .align import align_faces  # lazy: dlib and its model load only when needed

    return lambda img: align_faces(img, size=size)


def build_folder(cfg: dict, image_size: int, progress: bool = True, aligner=None) -> dict:
    """Splits from a folder: ``{"test": {"images", "ids"}, "val": {...}, "manifest": rows}``.

    ``aligner(img_uint8) -> list of uint8 (S, S, 3)`` replaces
    :func:`~ganrestore.data.align.align_faces` (tests use it).
    """
    from tqdm.auto import tqdm

    from ..io import sha256_array, sha256_file

    cfg = with_defaults(cfg)
    if not cfg["dir"]:
        raise ValueError("data.folder.dir: set it to a folder of face photographs")
    folder = Path(cfg["dir"])
    files = list_images(folder, cfg["recursive"])
    if not files:
        raise FileNotFoundError(f"data.folder.dir: no images ({', '.join(EXTENSIONS)}) in {folder}")
    if cfg["align"]:
        aligner = aligner or _default_aligner(image_size)
    else:
        aligner = lambda img: [center_crop_resize(img, image_size)]  # noqa: E731
    need = None if cfg["n_test"] is None else cfg["n_test"] + cfg["n_val"]
    faces, rows, skipped = [], [], []
    for path in tqdm(files, desc="folder faces", disable=not progress, mininterval=1.0, leave=False):
        if need is not None and len(faces) >= need:
            break
        rel = path.relative_to(folder)
        try:
            # decoded from the file (Pillow reads what it needs: a 1 GiB file named .jpg is
            # not read into memory), then hashed in chunks
            img = read_image(path, str(path))
            digest = sha256_file(path)
        except (ValueError, OSError) as e:
            if cfg["on_error"] == "raise":
                raise ValueError(f"{e} (set data.folder.on_error: skip to leave such files out)") from None
            log.warning("skipping %s: %s", path, e)
            skipped.append(str(rel))
            continue
        found = list(aligner(img))
        if not found:
            if cfg["on_no_face"] == "raise":
                raise ValueError(f"{path}: no face detected (set data.folder.on_no_face: skip to leave it out)")
            log.warning("skipping %s: no face detected", path)
            skipped.append(str(rel))
            continue
        if cfg["faces"] == "first":
            found = found[:1]
        base = _make_id(rel)
        for k, face in enumerate(found):
            face = np.asarray(face, dtype=np.uint8)
            if face.shape != (image_size, image_size, 3):
                raise ValueError(f"aligner returned {face.shape} for {path}, expected "
                                 f"{(image_size, image_size, 3)}")
            fid = base if cfg["faces"] == "first" else f"{base}_f{k}"
            faces.append((fid, face))
            rows.append({"id": fid, "source": rel.as_posix(), "source_sha256": digest, "face": k,
                         "protocol": "align_faces" if cfg["align"] else "center_crop",
                         "image_size": image_size, "sha256": sha256_array(face)})
    ids = [f for f, _ in faces]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"data.folder: files map to the same id {dup[:5]} (same name, different "
                         f"extension?); rename them")
    n_test = len(faces) - cfg["n_val"] if cfg["n_test"] is None else cfg["n_test"]
    if n_test < 1 or n_test + cfg["n_val"] > len(faces):
        raise ValueError(f"data.folder: {len(faces)} faces found in {folder} ({len(skipped)} files "
                         f"skipped); asked for n_test={cfg['n_test']}, n_val={cfg['n_val']}")
    out: dict = {"manifest": [], "skipped": skipped}
    for split, lo, hi in (("test", 0, n_test), ("val", n_test, n_test + cfg["n_val"])):
        sel = faces[lo:hi]
        out[split] = {"images": np.stack([f for _, f in sel]) if sel else
                      np.zeros((0, image_size, image_size, 3), np.uint8), "ids": [i for i, _ in sel]}
        out["manifest"] += [{"split": split, "index": k, **rows[lo + k]} for k in range(hi - lo)]
    return out


__all__ = ["DEFAULTS", "build_folder", "center_crop_resize", "list_images", "read_photo", "with_defaults"]
