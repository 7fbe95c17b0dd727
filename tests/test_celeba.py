"""CelebA / CelebA-HQ preparation: crop protocols against independent oracles, and the data
functions against a synthetic CelebA-shaped release served from 127.0.0.1."""

import csv
import io
import json
import tarfile
import zipfile

import numpy as np
import pytest
import torch
from fixtures_celeba import MEAN_LANDMARKS, FakeServer, build_synthetic_celeba, md5
from ganrestore.pipeline import write_manifest
from PIL import Image

from ganrestore.data import celeba, celebahq
from ganrestore.data.download import ChecksumError


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for k in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(k, raising=False)


def _coords_image():
    """uint8 image whose R channel is the row and G channel the column (mod 256)."""
    yy, xx = np.mgrid[0:218, 0:178]
    return np.stack([yy % 256, xx % 256, (yy + xx) % 256], -1).astype(np.uint8)


# -- crop protocols ----------------------------------------------------------------------


def test_dcgan64_box_is_the_central_108_crop():
    # DCGAN center_crop: j = round((218-108)/2) = 55, i = round((178-108)/2) = 35
    img = np.full((218, 178, 3), 50, np.uint8)
    img[55:163, 35:143] = 200
    out = celeba.apply_protocol(img, "dcgan64")
    assert out.shape == (64, 64, 3) and np.all(out == 200)  # nothing from outside the box leaks in
    img2 = img.copy()
    img2[55, 35:143] = 0  # first row of the box: must show in the output's first row
    assert celeba.apply_protocol(img2, "dcgan64")[0].mean() < 200
    img3 = img.copy()
    img3[54, :] = 0  # the row above the box: must not
    assert np.array_equal(celeba.apply_protocol(img3, "dcgan64"), out)


def test_dcgan64_resize_matches_torch_antialiased_bilinear():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)
    out = celeba.apply_protocol(img, "dcgan64").astype(int)
    crop = torch.from_numpy(img[55:163, 35:143].astype(np.float32)).permute(2, 0, 1)[None]
    ref = torch.nn.functional.interpolate(crop, size=(64, 64), mode="bilinear", antialias=True,
                                          align_corners=False)[0].permute(1, 2, 0).numpy()
    assert np.abs(out - np.rint(ref)).max() <= 1  # Pillow's fixed-point rounding


def test_csgm64_byte_scales_the_crop_like_scipy_misc():
    img = np.full((218, 178, 3), 7, np.uint8)
    img[55:163, 35:143] = np.linspace(20, 120, 108).astype(np.uint8)[None, :, None]
    out = celeba.apply_protocol(img, "csgm64")
    assert out.min() <= 2 and out.max() >= 250  # stretched to the full range (20..120 before)
    # scipy.misc.bytescale as SciPy 1.1 wrote it, on the crop, then the dcgan64 resize
    crop = img[55:163, 35:143].astype(float)
    scale = float(255 - 0) / (crop.max() - crop.min())
    stretched = (((crop - crop.min()) * scale + 0).clip(0, 255) + 0.5).astype(np.uint8)
    ref = np.asarray(Image.fromarray(stretched).resize((64, 64), Image.BILINEAR))
    assert np.array_equal(out, ref)
    assert not np.array_equal(out, celeba.apply_protocol(img, "dcgan64"))


def test_began_crop_box_and_tf_nearest_resize():
    img = _coords_image()
    out = celeba.apply_protocol(img, "began128")
    # tf.image.crop_to_bounding_box(x, offset_height=50, offset_width=25, 128, 128)
    assert out.shape == (128, 128, 3)
    assert tuple(out[0, 0, :2]) == (50, 25) and tuple(out[-1, -1, :2]) == (177, 152)
    small = celeba.apply_protocol(img, "began64")
    assert np.array_equal(small, out[::2, ::2])  # TF1 legacy nearest: source floor(2 i)


def test_protocol_must_match_image_size():
    with pytest.raises(ValueError, match="began128"):
        celeba.get_protocol("dcgan64", 128)
    with pytest.raises(ValueError, match="unknown CelebA crop protocol"):
        celeba.get_protocol("dcgan65")


def test_landmark_alignment_at_mean_landmarks_reproduces_dcgan_crop():
    from fixtures_celeba import synthetic_face

    img = synthetic_face(np.random.default_rng(3), MEAN_LANDMARKS)
    a = celeba.apply_protocol(img, "landmarks64", MEAN_LANDMARKS).astype(float)
    b = celeba.apply_protocol(img, "dcgan64").astype(float)
    assert a.shape == (64, 64, 3)
    assert np.abs(a - b).mean() < 4.0  # same framing; only the resampling filters differ


# -- annotation files --------------------------------------------------------------------


def test_partition_and_landmarks_parsing(tmp_path):
    rel = build_synthetic_celeba(tmp_path, n_train=2, n_val=1, n_test=3)
    part = celeba.read_partition(rel["files"]["list_eval_partition.txt"])
    assert celeba.split_files(part, "test", 2) == rel["test"][:2]
    assert celeba.split_files(part, "test", 2, offset=1) == rel["test"][1:3]
    with pytest.raises(ValueError, match="asked for 4"):
        celeba.split_files(part, "test", 4)
    lms = celeba.read_landmarks(rel["files"]["list_landmarks_align_celeba.txt"])
    name = rel["test"][0]
    assert np.array_equal(lms[name], rel["landmarks"][name])
    bad = tmp_path / "bad.txt"
    bad.write_text("000001.jpg 3\n")
    with pytest.raises(ValueError, match="bad.txt:1"):
        celeba.read_partition(bad)


# -- the data functions on a synthetic release ---------------------------------------------


@pytest.fixture
def release(tmp_path):
    return build_synthetic_celeba(tmp_path, n_train=3, n_val=2, n_test=6)


def _cfg(tmp_path, rel, **kw):
    cfg = {"root": str(tmp_path / "cache"), "md5": rel["md5"], "retries": 1, "n_test": 4}
    cfg.update(kw)
    return cfg


def _serve_drive(server, rel, mode="form", corrupt=None):
    for name, f in celeba.CELEBA_FILES.items():
        if name in rel["files"]:
            data = rel["files"][name].read_bytes()
            if name == corrupt:
                data = data[:-10] + b"0123456789"
            server.gdrive[f.gdrive_id] = (data, mode)


def _oracle(rel, name, protocol="dcgan64"):
    return celeba.apply_protocol(rel["images"][name], protocol)


def test_download_and_prepare_test_split_through_drive(tmp_path, release):
    with FakeServer() as server:
        _serve_drive(server, release, mode="form")
        server.drop_once["/download"] = 5_000  # the archive's transfer is cut once
        cfg = _cfg(tmp_path, release, gdrive_base=f"{server.base}/uc", n_val=2)
        out = celeba.build_celeba(cfg, image_size=64, progress=False)
        assert "/download" not in server.drop_once
        assert any(r == "bytes=5000-" for p, r in server.log if p.startswith("/download"))
    t = out["test"]
    assert t["images"].shape == (4, 64, 64, 3) and t["images"].dtype == np.uint8
    assert t["ids"] == [n[:-4] for n in release["test"][:4]]
    for k, name in enumerate(release["test"][:4]):
        assert np.array_equal(t["images"][k], _oracle(release, name))
    assert out["val"]["ids"] == [n[:-4] for n in release["val"]]
    rows = out["manifest"]
    assert [r["split"] for r in rows] == ["test"] * 4 + ["val"] * 2
    assert rows[0]["source"] == "img_align_celeba.zip:img_align_celeba/" + release["test"][0]
    assert rows[0]["protocol"] == "dcgan64" and len(rows[0]["source_sha256"]) == 64
    cache = tmp_path / "cache"
    # .verified stamps and the persistent download locks (never unlinked: issue 30) beside the files
    assert sorted(p.name for p in cache.iterdir() if not p.name.endswith((".verified", ".lock"))) == [
        "img_align_celeba.zip", "list_eval_partition.txt"]
    # a second run needs no network at all
    out2 = celeba.build_celeba({**cfg, "gdrive_base": "http://127.0.0.1:9/uc"}, 64, progress=False)
    assert np.array_equal(out2["test"]["images"], t["images"])


def test_bad_archive_checksum_never_reaches_the_dataset(tmp_path, release):
    with FakeServer() as server:
        _serve_drive(server, release, corrupt="img_align_celeba.zip")
        cfg = _cfg(tmp_path, release, gdrive_base=f"{server.base}/uc")
        with pytest.raises(ChecksumError, match=r"img_align_celeba.zip: md5 mismatch.*mmlab"):
            celeba.build_celeba(cfg, 64, progress=False)
    cache = tmp_path / "cache"
    assert not (cache / "img_align_celeba.zip").exists()
    assert not (cache / "img_align_celeba.zip.part").exists()


def test_user_archive_with_wrong_md5_is_refused(tmp_path, release):
    cfg = _cfg(tmp_path, release, archive=str(release["files"]["img_align_celeba.zip"]),
               dir=str(release["src"]), download=False,
               md5={**release["md5"], "img_align_celeba.zip": "f" * 32})
    with pytest.raises(ChecksumError, match="img_align_celeba.zip"):
        celeba.load_images(cfg, "test", 2, 64, progress=False)


def test_official_checksums_apply_without_overrides(tmp_path, release):
    cfg = {"root": str(tmp_path / "c"), "dir": str(release["src"]), "download": False}
    with pytest.raises(ChecksumError, match="d32c9cbf5e040fd4025c592c306e6668"):
        celeba.load_images(cfg, "test", 2, 64, progress=False)


def test_missing_file_message_names_it_and_where_to_get_it(tmp_path, release):
    cfg = {"root": str(tmp_path / "empty"), "download": False}
    with pytest.raises(FileNotFoundError, match=r"list_eval_partition.txt.*mmlab.ie.cuhk.edu.hk.*data.celeba"):
        celeba.load_images(cfg, "test", 2, 64, progress=False)


def test_user_folder_and_archive_routes_agree(tmp_path, release):
    # dir holds the extracted img_align_celeba/ folder and the txt files
    a = celeba.load_images(_cfg(tmp_path, release, dir=str(release["src"]), download=False),
                           "test", 3, 64, progress=False)
    assert a["manifest"][0]["source"].startswith("img_align_celeba/")
    b = celeba.load_images(_cfg(tmp_path, release, archive=str(release["files"]["img_align_celeba.zip"]),
                                dir=str(release["src"]), download=False), "test", 3, 64, progress=False)
    assert np.array_equal(a["images"], b["images"]) and a["ids"] == b["ids"]
    assert [r["source_sha256"] for r in a["manifest"]] == [r["source_sha256"] for r in b["manifest"]]


def test_landmark_protocol_reads_the_landmark_file(tmp_path, release):
    out = celeba.load_images(_cfg(tmp_path, release, dir=str(release["src"]), download=False,
                                  protocol="landmarks128"), "test", 2, 128, progress=False)
    assert out["images"].shape == (2, 128, 128, 3)
    assert "list_landmarks_align_celeba.txt" in out["files"]


def test_not_an_aligned_image_is_rejected(tmp_path, release):
    name = release["test"][0]
    Image.new("RGB", (200, 200)).save(release["img_dir"] / name, format="JPEG")
    with pytest.raises(ValueError, match=f"{name}.*178x218"):
        celeba.load_images(_cfg(tmp_path, release, dir=str(release["src"]), download=False),
                           "test", 1, 64, progress=False)


def test_extraction_is_resumable_and_atomic(tmp_path, release):
    dest = tmp_path / "cache"
    # a killed earlier run: two members done, one temporary half-written file
    (dest / "img_align_celeba").mkdir(parents=True)
    first, second = sorted(release["images"])[:2]
    for n in (first, second):
        (dest / "img_align_celeba" / n).write_bytes((release["img_dir"] / n).read_bytes())
    (dest / "img_align_celeba" / ".000003.jpg.part").write_bytes(b"half")
    celeba.extract_archive(release["files"]["img_align_celeba.zip"], dest, progress=False)
    got = sorted(p.name for p in (dest / "img_align_celeba").iterdir())
    assert got == [".extracted.json"] + sorted(release["images"])
    assert not list(dest.rglob("*.part"))
    for n in release["images"]:
        assert (dest / "img_align_celeba" / n).read_bytes() == (release["img_dir"] / n).read_bytes()
    stamp = json.loads((dest / "img_align_celeba" / ".extracted.json").read_text())
    assert stamp["archive"] == "img_align_celeba.zip"
    # extract: true reads from the extracted folder
    cfg = _cfg(tmp_path, release, archive=str(release["files"]["img_align_celeba.zip"]),
               dir=str(release["src"]), download=False, extract=True)
    out = celeba.load_images(cfg, "test", 2, 64, progress=False)
    assert out["manifest"][0]["source"].startswith("img_align_celeba/")


def test_extraction_refuses_paths_outside_destination(tmp_path):
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("../escape.txt", b"x")
    with pytest.raises(ValueError, match="outside"):
        celeba.extract_archive(z, tmp_path / "out", progress=False)
    assert not (tmp_path / "escape.txt").exists()


# -- CelebA-HQ ---------------------------------------------------------------------------


def _hq_images(n, size, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    return [np.stack([(xx * (k + 1) + yy) % 256, (yy * 3) % 256, rng.integers(0, 256, (size, size))],
                     -1).astype(np.uint8) for k in range(n)]


def test_celebahq_box_resize_matches_block_mean_oracle(tmp_path):
    from skimage.transform import downscale_local_mean

    imgs = _hq_images(5, 256)
    folder = tmp_path / "hq"
    folder.mkdir()
    for k, im in enumerate(imgs):  # natural order: img2 before img10
        Image.fromarray(im).save(folder / f"imgHQ{[10, 2, 1, 30, 3][k]}.png")
    out = celebahq.build_celebahq({"dir": str(folder), "n_test": 3, "n_val": 1, "expect_size": 256},
                                  image_size=64, progress=False)
    assert out["test"]["ids"] == ["imgHQ1", "imgHQ2", "imgHQ3"] and out["val"]["ids"] == ["imgHQ10"]
    ref = np.rint(downscale_local_mean(imgs[2].astype(float), (4, 4, 1))).astype(np.uint8)
    assert np.array_equal(out["test"]["images"][0], ref)
    assert out["manifest"][0]["protocol"] == "celebahq_box"


def test_celebahq_zip_tar_and_npy_sources(tmp_path):
    imgs = _hq_images(2, 128)
    zpath, tpath = tmp_path / "hq.zip", tmp_path / "hq.tar.gz"
    with zipfile.ZipFile(zpath, "w") as z, tarfile.open(tpath, "w:gz") as t:
        for k, im in enumerate(imgs):
            buf = io.BytesIO()
            np.save(buf, im.transpose(2, 0, 1)[None])  # the torrent's (1, 3, H, W) layout
            z.writestr(f"celeba-hq/imgHQ{k:05d}.npy", buf.getvalue())
            info = tarfile.TarInfo(f"imgHQ{k:05d}.npy")
            info.size = len(buf.getvalue())
            t.addfile(info, io.BytesIO(buf.getvalue()))
    cfg = {"n_test": 2, "expect_size": 128, "resample": "lanczos"}
    a = celebahq.build_celebahq({**cfg, "archive": str(zpath)}, 64, progress=False)
    b = celebahq.build_celebahq({**cfg, "archive": str(tpath)}, 64, progress=False)
    assert np.array_equal(a["test"]["images"], b["test"]["images"])
    ref = np.asarray(Image.fromarray(imgs[1]).resize((64, 64), Image.LANCZOS))
    assert np.array_equal(a["test"]["images"][1], ref)


def test_celebahq_wrong_size_is_reported(tmp_path):
    folder = tmp_path / "hq"
    folder.mkdir()
    Image.fromarray(_hq_images(1, 96)[0]).save(folder / "a.png")
    with pytest.raises(ValueError, match="a.png: 96x96.*1024x1024"):
        celebahq.build_celebahq({"dir": str(folder), "n_test": 1}, 64, progress=False)


def test_manifest_csv_roundtrip(tmp_path, release):
    out = celeba.load_images(_cfg(tmp_path, release, dir=str(release["src"]), download=False),
                             "test", 2, 64, progress=False)
    p = tmp_path / "m.csv"
    write_manifest(p, out["manifest"])
    rows = list(csv.DictReader(open(p)))
    assert [r["id"] for r in rows] == out["ids"]
    assert rows[0]["source_sha256"] == __import__("hashlib").sha256(
        (release["img_dir"] / release["test"][0]).read_bytes()).hexdigest()
    assert md5(p.read_bytes())  # written


# -- the workflow's data rule on the synthetic release -------------------------------------


@pytest.mark.slow
def test_workflow_prepares_celeba_test_split_from_synthetic_release(tmp_path, release):
    """`prepare_celeba` (rules/data_celeba.smk) through Snakemake, downloading from the local
    Drive look-alike: 64x64 test images, the right count, ids in partition order, a manifest."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    from ganrestore.io import load_artifact, load_meta

    root = Path(__file__).resolve().parents[1]
    wd = tmp_path / "wf"
    wd.mkdir()
    for name in ["Snakefile", "rules", "scripts", "config", "envs"]:  # conda: env files are hashed
        src = root / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, wd / name)
    cfg = yaml.safe_load((root / "config/yeh2018.yaml").read_text())
    cfg["name"] = "synthetic"
    cfg["methods"] = ["input"]
    cfg["data"]["celeba"] = {"n_test": 5, "n_val": 2, "root": str(tmp_path / "cache"),
                             "md5": release["md5"], "retries": 1}
    with FakeServer() as server:
        _serve_drive(server, release, mode="cookie")
        cfg["data"]["celeba"]["gdrive_base"] = f"{server.base}/uc"
        (wd / "c.yaml").write_text(yaml.safe_dump(cfg))
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        out = "results/synthetic/data"
        r = subprocess.run([str(Path(sys.executable).with_name("snakemake")), "--cores", "1",
                            f"{out}/test.npz", f"{out}/manifest.csv", "--configfile", "c.yaml"],
                           cwd=wd, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    test = load_artifact(wd / out / "test.npz")
    assert test["images"].shape == (5, 64, 64, 3) and test["images"].dtype == np.uint8
    assert [str(i) for i in test["ids"]] == [n[:-4] for n in release["test"][:5]]
    assert np.array_equal(test["images"][0], _oracle(release, release["test"][0]))
    assert load_artifact(wd / out / "val.npz")["images"].shape == (2, 64, 64, 3)
    meta = load_meta(wd / out / "test.npz")
    assert meta["protocol"]["name"] == "dcgan64" and meta["source"] == "celeba"
    rows = list(csv.DictReader(open(wd / out / "manifest.csv")))
    assert len(rows) == 7 and {r["split"] for r in rows} == {"test", "val"}
    assert all(r["protocol"] == "dcgan64" and len(r["source_sha256"]) == 64 for r in rows)
    assert (tmp_path / "cache" / "img_align_celeba.zip").is_file()


# -- image reading (ganrestore.data.imageio.read_image, shared with the folder source) ----------


def _bomb_png(side=30000):
    """A PNG header claiming side x side RGB pixels, with almost no data."""
    import struct
    import zlib

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def test_celeba_16bit_grey_image_is_converted_and_a_bomb_refused_naming_it(tmp_path, release):
    import cv2

    name, other = release["test"][:2]
    grey = release["images"][name][..., 0]
    ok, png16 = cv2.imencode(".png", grey.astype(np.uint16) * 257)  # under the .jpg name: sniffed
    (release["img_dir"] / name).write_bytes(png16.tobytes())
    cfg = _cfg(tmp_path, release, dir=str(release["src"]), download=False)
    out = celeba.load_images(cfg, "test", 1, 64, progress=False)
    ref = celeba.apply_protocol(np.repeat(grey[..., None], 3, axis=2), celeba.get_protocol("dcgan64", 64))
    assert np.array_equal(out["images"][0], ref)
    (release["img_dir"] / other).write_bytes(_bomb_png())
    with pytest.raises(ValueError, match=rf"img_align_celeba/{other}: refused as a possible decompression"):
        celeba.load_images(cfg, "test", 2, 64, progress=False)


def test_celebahq_16bit_png_and_bomb(tmp_path):
    import cv2

    from skimage.transform import downscale_local_mean

    grey = _hq_images(1, 256)[0][..., 0]
    folder = tmp_path / "hq"
    folder.mkdir()
    cv2.imwrite(str(folder / "imgHQ0.png"), grey.astype(np.uint16) * 257)
    out = celebahq.build_celebahq({"dir": str(folder), "n_test": 1, "expect_size": 256}, 64, progress=False)
    ref = np.rint(downscale_local_mean(grey.astype(float), (4, 4))).astype(np.uint8)
    assert np.array_equal(out["test"]["images"][0], np.repeat(ref[..., None], 3, axis=2))
    (folder / "imgHQ1.png").write_bytes(_bomb_png())
    with pytest.raises(ValueError, match=r"imgHQ1\.png: refused as a possible decompression bomb"):
        celebahq.build_celebahq({"dir": str(folder), "n_test": 2, "expect_size": 256}, 64, progress=False)
