"""Folder datasets: any directory of photographs -> aligned crops, bad files, ordering, manifest."""

import logging

import numpy as np
import pytest
from PIL import Image
from skimage import data

from ganrestore.data import folder


def _fake_aligner(img):
    """Stands in for align_faces: one 'face' per photo unless it is flat grey (no face)."""
    if img.std() == 0:
        return []
    return [np.full((64, 64, 3), int(img.mean()) % 256, np.uint8)]


def _photos(tmp_path):
    d = tmp_path / "photos"
    (d / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ["b10.jpg", "b2.png", "a.jpg", "sub/c.jpg"]:
        Image.fromarray(rng.integers(0, 256, (80, 60, 3), dtype=np.uint8)).save(d / name)
    Image.fromarray(np.full((50, 50, 3), 128, np.uint8)).save(d / "flat.png")
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (d / "notes.txt").write_text("not an image")
    (d / ".hidden.jpg").write_bytes(b"ignored")
    return d


def test_order_is_deterministic_and_natural(tmp_path):
    d = _photos(tmp_path)
    names = [p.relative_to(d).as_posix() for p in folder.list_images(d)]
    assert names == ["a.jpg", "b2.png", "b10.jpg", "broken.jpg", "flat.png", "sub/c.jpg"]
    assert [p.name for p in folder.list_images(d, recursive=False)] == names[:-1]


def test_corrupt_file_raises_naming_it(tmp_path):
    d = _photos(tmp_path)
    with pytest.raises(ValueError, match=r"broken\.jpg.*on_error: skip"):
        folder.build_folder({"dir": str(d), "n_test": 4}, 64, progress=False, aligner=_fake_aligner)


def test_skip_logs_each_bad_file_and_keeps_the_rest(tmp_path, caplog):
    d = _photos(tmp_path)
    with caplog.at_level(logging.WARNING, logger="ganrestore.data.folder"):
        out = folder.build_folder({"dir": str(d), "on_error": "skip", "n_test": 3, "n_val": 1}, 64,
                                  progress=False, aligner=_fake_aligner)
    assert out["test"]["ids"] == ["a", "b2", "b10"] and out["val"]["ids"] == ["sub__c"]
    assert out["test"]["images"].shape == (3, 64, 64, 3)
    assert out["skipped"] == ["broken.jpg", "flat.png"]
    text = caplog.text
    assert "broken.jpg" in text and "flat.png" in text and "no face" in text
    assert [r["source"] for r in out["manifest"]] == ["a.jpg", "b2.png", "b10.jpg", "sub/c.jpg"]
    assert all(len(r["source_sha256"]) == 64 for r in out["manifest"])


def test_too_few_faces_is_an_error(tmp_path):
    d = _photos(tmp_path)
    with pytest.raises(ValueError, match="4 faces found"):
        folder.build_folder({"dir": str(d), "on_error": "skip", "n_test": 5}, 64, progress=False,
                            aligner=_fake_aligner)


def test_unaligned_mode_center_crops(tmp_path):
    d = tmp_path / "p"
    d.mkdir()
    img = np.zeros((100, 80, 3), np.uint8)
    img[10:90, :] = 255  # the central 80x80 square is white
    Image.fromarray(img).save(d / "x.png")
    out = folder.build_folder({"dir": str(d), "align": False, "n_test": 1}, 64, progress=False)
    assert out["test"]["images"].shape == (1, 64, 64, 3) and out["test"]["images"].min() == 255


def test_real_face_detection_and_alignment(tmp_path):
    d = tmp_path / "p"
    d.mkdir()
    Image.fromarray(data.astronaut()).save(d / "astronaut.png")
    Image.fromarray(np.full((120, 120, 3), 90, np.uint8)).save(d / "wall.png")
    out = folder.build_folder({"dir": str(d), "n_test": 1, "faces": "all"}, 64, progress=False)
    assert out["test"]["ids"] == ["astronaut_f0"]
    face = out["test"]["images"][0]
    assert face.shape == (64, 64, 3) and face.std() > 20
    with pytest.raises(ValueError, match="wall.png: no face"):
        folder.build_folder({"dir": str(d), "n_test": 2, "on_no_face": "raise"}, 64, progress=False)


def test_bad_option_is_rejected():
    with pytest.raises(ValueError, match="on_error"):
        folder.with_defaults({"on_error": "ignore"})


# ----------------------------------------------------------------------------- reading images
# One reader (ganrestore.data.imageio.read_image) serves the folder, CelebA and CelebA-HQ sources.

def _gray8():
    return data.camera()[::4, ::4]  # 128x128 uint8, full range


def _png_header(width, height, bitdepth=8, colortype=2):
    """A PNG that claims width x height pixels and holds almost nothing (a decompression bomb's header)."""
    import struct
    import zlib

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, bitdepth, colortype, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1024))
            + chunk(b"IEND", b""))


def _read(tmp_path, name, write):
    """Write one file with ``write(path)``, prepare it unaligned at its own size, return the image."""
    d = tmp_path / f"one_{name}"
    d.mkdir()
    write(d / name)
    img = folder.read_photo(d / name)
    out = folder.build_folder({"dir": str(d), "align": False, "n_test": 1}, min(img.shape[:2]),
                              progress=False)
    assert np.array_equal(out["test"]["images"][0], folder.center_crop_resize(img, min(img.shape[:2])))
    return img


def test_16bit_grayscale_png_keeps_its_tones(tmp_path):
    """Oracle: an 8-bit picture stored as 16 bits (v * 257, cv2's writer) reads back exactly."""
    import cv2

    g = _gray8()
    img = _read(tmp_path, "g16.png", lambda p: cv2.imwrite(str(p), g.astype(np.uint16) * 257))
    assert img.dtype == np.uint8 and img.shape == g.shape + (3,)
    assert np.array_equal(img, np.repeat(g[..., None], 3, axis=2))
    assert (img == 255).mean() < 0.01  # was 89 %: Pillow's convert clips I;16 at 255
    # any 16-bit value: round(v / 257), the nearest 8-bit level
    ramp = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    img = _read(tmp_path, "ramp.png", lambda p: cv2.imwrite(str(p), ramp))
    assert np.array_equal(img[..., 0], np.rint(ramp / 257.0).astype(np.uint8))


@pytest.mark.parametrize("kind", ["rgb16", "bgra16", "pgm16", "tiff16"])
def test_16bit_colour_alpha_pgm_and_tiff(tmp_path, kind):
    import cv2

    rgb = data.astronaut()[::4, ::4]
    g = _gray8()
    if kind == "rgb16":
        img = _read(tmp_path, "c.png", lambda p: cv2.imwrite(str(p), rgb[..., ::-1].astype(np.uint16) * 257))
        assert np.array_equal(img, rgb)
    elif kind == "bgra16":  # opaque 16-bit RGBA
        bgra = np.dstack([rgb[..., ::-1], np.full(g.shape, 255, np.uint8)]).astype(np.uint16) * 257
        img = _read(tmp_path, "a.png", lambda p: cv2.imwrite(str(p), bgra))
        assert np.array_equal(img, rgb)
    elif kind == "pgm16":  # Pillow opens it as mode "I"
        body = f"P5 {g.shape[1]} {g.shape[0]} 65535\n".encode() + (g.astype(">u2") * 257).tobytes()
        img = _read(tmp_path, "g.pgm", lambda p: p.write_bytes(body))
        assert np.array_equal(img[..., 1], g)
    else:
        img = _read(tmp_path, "g.tif", lambda p: Image.fromarray(g.astype(np.uint16) * 257).save(p))
        assert np.array_equal(img[..., 2], g)


def test_alpha_palette_bilevel_cmyk_and_exif_orientation(tmp_path):
    # palette with a transparent index: transparent pixels composite onto white
    pal = Image.new("P", (8, 8), 0)
    pal.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    pal.paste(1, (0, 0, 4, 8))
    img = _read(tmp_path, "p.png", lambda p: pal.save(p, transparency=0))
    assert (img[:, :4] == [200, 100, 50]).all() and (img[:, 4:] == 255).all()
    # partial alpha: c a / 255 + 255 (1 - a / 255), rounded (scikit-image's rgba2rgb on white)
    from skimage.color import rgba2rgb

    rgba = np.random.default_rng(1).integers(0, 256, (16, 16, 4), dtype=np.uint8)
    img = _read(tmp_path, "rgba.png", lambda p: Image.fromarray(rgba).save(p))
    assert np.abs(img.astype(int) - np.rint(rgba2rgb(rgba) * 255)).max() <= 1
    la = Image.fromarray(rgba[..., [0, 3]], "LA")
    img = _read(tmp_path, "la.png", lambda p: la.save(p))
    assert np.abs(img.astype(int) - np.rint(rgba2rgb(rgba[..., [0, 0, 0, 3]]) * 255)).max() <= 1
    bits = np.zeros((8, 8), bool)
    bits[:, 4:] = True
    img = _read(tmp_path, "b.png", lambda p: Image.fromarray(bits).save(p))
    assert (img[:, :4] == 0).all() and (img[:, 4:] == 255).all()
    img = _read(tmp_path, "k.jpg", lambda p: Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(p))
    assert np.abs(img.astype(int) - [255, 0, 0]).max() <= 2  # no magenta, no yellow: red
    # EXIF orientation 6 (rotate 90 degrees clockwise to display)
    tall = np.zeros((40, 30, 3), np.uint8)
    tall[:10] = 255  # white band on top

    def save_rotated(p):
        exif = Image.Exif()
        exif[0x0112] = 6
        Image.fromarray(tall).save(p, exif=exif)
    img = _read(tmp_path, "rot.png", save_rotated)
    assert img.shape == (30, 40, 3) and (img[:, -10:] == 255).all() and (img[:, :-10] == 0).all()


@pytest.mark.parametrize("name,write,match", [
    ("f.tif", lambda p: Image.fromarray(np.full((8, 8), 0.5, np.float32)).save(p), "pixel mode 'F'"),
    ("i.tif", lambda p: Image.fromarray(np.full((8, 8), 70000, np.int32)).save(p), "pixel mode 'I'"),
    ("cut.png", lambda p: (Image.fromarray(data.astronaut()).save(p),
                           p.write_bytes(p.read_bytes()[:40000])), "cannot decode"),
    ("crc.png", lambda p: (Image.fromarray(data.astronaut()).save(p),
                           p.write_bytes(p.read_bytes()[:40] + b"\0" * 8 + p.read_bytes()[48:])),
     "cannot decode"),
])
def test_unreadable_images_are_refused_naming_the_file(tmp_path, name, write, match):
    d = tmp_path / "bad"
    d.mkdir()
    write(d / name)
    with pytest.raises(ValueError, match=rf"{name}: .*{match}"):
        folder.read_photo(d / name)


@pytest.mark.parametrize("side,limit", [
    (30000, None),        # 900 Mpx: Pillow's DecompressionBombError (over twice its 89.5 Mpx limit)
    (10000, 10**10),      # 100 Mpx, our limit lifted: Pillow's DecompressionBombWarning is refused too
    (10000, None),        # 100 Mpx: over ganrestore's MAX_PIXELS
    (40, 1000),           # any image over an explicit limit
])
def test_decompression_bomb_is_refused_or_skipped_naming_the_file(tmp_path, monkeypatch, caplog, side, limit):
    from ganrestore.data import imageio

    if limit is not None:
        monkeypatch.setattr(imageio, "MAX_PIXELS", limit)
    d = tmp_path / "b"
    d.mkdir()
    Image.fromarray(data.astronaut()[:20, :20]).save(d / "b_ok.png")
    (d / "a_bomb.png").write_bytes(_png_header(side, side))
    if side == 40:
        Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(d / "a_bomb.png")
    with pytest.raises(ValueError, match=r"a_bomb\.png: refused as a possible decompression bomb.*on_error"):
        folder.build_folder({"dir": str(d), "align": False, "n_test": 2}, 32, progress=False)
    with caplog.at_level(logging.WARNING, logger="ganrestore.data.folder"):
        out = folder.build_folder({"dir": str(d), "align": False, "on_error": "skip", "n_test": 1}, 32,
                                  progress=False)
    assert out["test"]["ids"] == ["b_ok"] and out["skipped"] == ["a_bomb.png"]
    assert "a_bomb.png" in caplog.text and "decompression bomb" in caplog.text


def test_unaligned_16bit_photo_is_not_washed_out_in_the_test_set(tmp_path):
    """The reported case: align: false, a 16-bit grey PNG went into the test split 89 % white."""
    import cv2

    d = tmp_path / "p"
    d.mkdir()
    g = data.camera()  # 512x512
    cv2.imwrite(str(d / "g.png"), g.astype(np.uint16) * 257)
    out = folder.build_folder({"dir": str(d), "align": False, "n_test": 1}, 64, progress=False)
    ref = folder.center_crop_resize(np.repeat(g[..., None], 3, axis=2), 64)
    assert np.array_equal(out["test"]["images"][0], ref)
