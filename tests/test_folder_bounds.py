"""The folder data source (issue 30, class 7): a file is decoded from disk, not read
whole into memory first (a 256 MiB file named .jpg costs no 256 MiB), its
manifest hash still is the sha256 of its bytes, and what is left out (other
file types, looping or dangling symlinks) is logged, not dropped silently."""

from __future__ import annotations

import hashlib
import logging
import os
import tracemalloc

import numpy as np
import pytest
from PIL import Image

from ganrestore.data.folder import build_folder, list_images


def _png(path, seed=0, size=32):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)


def test_a_huge_file_is_not_read_into_memory(tmp_path):
    big = tmp_path / "big.jpg"
    with open(big, "wb") as f:
        f.truncate(256 << 20)                     # sparse: no disk, but 256 MiB if read whole
    _png(tmp_path / "ok.png")
    tracemalloc.start()
    try:
        out = build_folder({"dir": str(tmp_path), "align": False, "on_error": "skip"}, 16, progress=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out["skipped"] == ["big.jpg"] and out["test"]["ids"] == ["ok"]
    assert peak < 32 << 20, f"peak Python allocation {peak / 2**20:.0f} MiB"


def test_the_manifest_hash_is_the_sha256_of_the_files_bytes(tmp_path):
    _png(tmp_path / "a.png", 1)
    out = build_folder({"dir": str(tmp_path), "align": False}, 16, progress=False)
    assert out["manifest"][0]["source_sha256"] == hashlib.sha256((tmp_path / "a.png").read_bytes()).hexdigest()


def test_other_file_types_and_bad_symlinks_are_logged(tmp_path, caplog):
    _png(tmp_path / "a.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "anim.gif")
    Image.new("RGB", (8, 8)).save(tmp_path / "still.gif")
    (tmp_path / "notes.txt").write_text("x")
    os.symlink("loop_b.jpg", tmp_path / "loop_a.jpg")
    os.symlink("loop_a.jpg", tmp_path / "loop_b.jpg")
    os.symlink("nowhere.png", tmp_path / "dangling.png")
    (tmp_path / "sub").mkdir()
    os.symlink("..", tmp_path / "sub" / "up")          # a folder loop: not descended into
    with caplog.at_level(logging.WARNING, logger="ganrestore.data.folder"):
        files = list_images(tmp_path)
    assert [p.name for p in files] == ["a.png"]
    text = caplog.text
    assert "skipping 3 files that are not of a supported image type (.gif: 2, .txt: 1)" in text
    for name in ("loop_a.jpg", "loop_b.jpg", "dangling.png"):
        assert f"{tmp_path / name}: a symbolic link that loops or points nowhere" in text


def test_hidden_files_stay_silent(tmp_path, caplog):
    _png(tmp_path / "a.png")
    (tmp_path / ".DS_Store").write_bytes(b"\0")
    with caplog.at_level(logging.WARNING, logger="ganrestore.data.folder"):
        assert [p.name for p in list_images(tmp_path)] == ["a.png"]
    assert caplog.text == ""


@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_an_undecodable_huge_file_is_named_either_way(tmp_path, on_error):
    big = tmp_path / "big.jpg"
    with open(big, "wb") as f:
        f.truncate(64 << 20)
    _png(tmp_path / "ok.png")
    cfg = {"dir": str(tmp_path), "align": False, "on_error": on_error}
    if on_error == "raise":
        with pytest.raises(ValueError, match=rf"{big}: cannot decode image"):
            build_folder(cfg, 16, progress=False)
    else:
        assert build_folder(cfg, 16, progress=False)["skipped"] == ["big.jpg"]
