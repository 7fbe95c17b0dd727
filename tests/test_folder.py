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
