"""Image kinds (real photos vs faces in the generator's range) through the evaluate
stage: a split with known z, per-image kind column, per-kind aggregates against
an independent computation (scikit-image PSNR)."""

from __future__ import annotations

import csv
import doctest
import json
import math

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio

from ganrestore import imagekinds
from ganrestore import io as gio
from ganrestore.pipeline import run_evaluate


def _split(tmp_path, z, n=None):
    """A split of ``n`` (default ``len(z)``) random images; ``z`` None: no latents stored."""
    n = len(z) if n is None else n
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
    ids = [f"img-{i}" for i in range(n)]
    arrays = {"images": images, "ids": np.asarray(ids)}
    if z is not None:
        arrays["z"] = np.asarray(z, np.float32)
    path = tmp_path / "test.npz"
    gio.save_artifact(path, arrays, {})
    return path, images, ids


def _shard(tmp_path, images, ids, noise=0.05, diverged=()):
    """A restoration: the clean images plus fixed noise; ``diverged`` rows flagged."""
    rng = np.random.default_rng(1)
    x = gio.from_uint8(images).numpy()
    x_hat = np.clip(x + rng.normal(0, noise, x.shape), 0, 1).astype(np.float32)
    div = np.zeros(len(ids), bool)
    div[list(diverged)] = True
    x_hat[div] = np.nan
    path = tmp_path / "shard.npz"
    gio.save_artifact(path, {"x_hat": x_hat, "ids": np.asarray(ids), "diag_diverged": div,
                             "diag_seconds": np.arange(len(ids), dtype=float)}, {})
    return path, x, x_hat


def test_image_kinds_from_the_stored_latents():
    nan = [np.nan] * 3
    assert imagekinds.image_kinds({"ids": ["a", "b", "c"], "z": [nan, [0.1, 0.2, 0.3], [1, np.nan, 2]]}) == \
        ["real", "in_range", "real"]                     # a partly finite latent is no latent
    assert imagekinds.image_kinds({"ids": ["a", "b"]}) == ["real", "real"]
    with pytest.raises(ValueError, match="'z' has 1 rows for 2 images"):
        imagekinds.image_kinds({"ids": ["a", "b"], "z": [[0.0]]})
    assert doctest.testmod(imagekinds).failed == 0


def test_run_evaluate_writes_the_kind_and_per_kind_aggregates(tmp_path):
    nan = [np.nan] * 4
    z = [nan, [0.1, 0.2, 0.3, 0.4], nan, [1.0, 2.0, 3.0, 4.0], nan]        # images 1 and 3 are in range
    split, images, ids = _split(tmp_path, z)
    shard, x, x_hat = _shard(tmp_path, images, ids, diverged=(2,))
    agg = run_evaluate(split, [shard], "denoise_sigma0.1", "m", tmp_path / "m.csv", tmp_path / "m.json")
    rows = list(csv.DictReader(open(tmp_path / "m.csv")))
    assert [r["kind"] for r in rows] == ["real", "in_range", "real", "in_range", "real"]
    assert json.loads((tmp_path / "m.json").read_text())["by_kind"] == json.loads(json.dumps(agg["by_kind"]))
    real, inr = agg["by_kind"]["real"], agg["by_kind"]["in_range"]
    assert (real["n"], real["n_failed"], inr["n"], inr["n_failed"]) == (3, 1, 2, 0)
    assert (agg["n"], agg["n_failed"]) == (5, 1)

    def psnr(i):
        return peak_signal_noise_ratio(x[i], x_hat[i], data_range=1.0)

    # oracle: scikit-image's PSNR per image, averaged per kind (the failed image left out)
    assert inr["psnr_mean"] == pytest.approx(np.mean([psnr(1), psnr(3)]), abs=1e-4)
    assert real["psnr_mean"] == pytest.approx(np.mean([psnr(0), psnr(4)]), abs=1e-4)
    mse = [float(np.mean((x[i] - x_hat[i]) ** 2)) for i in (1, 3)]
    assert inr["psnr_of_mean_mse"] == pytest.approx(10 * math.log10(1 / np.mean(mse)), abs=1e-4)
    assert inr["seconds_per_image"] == pytest.approx(2.0)           # diag seconds 1 and 3
    # the pooled keys are those of all images together, as before
    assert agg["psnr_mean"] == pytest.approx(np.mean([psnr(i) for i in (0, 1, 3, 4)]), abs=1e-4)
    assert set(real) == set(inr) == {k for k in agg if k not in ("task", "method", "by_kind", "evaluate_seconds",
                                                               "ssim_window")}


def test_a_split_without_z_is_all_real(tmp_path):
    split, images, ids = _split(tmp_path, None, n=3)
    shard, *_ = _shard(tmp_path, images, ids)
    agg = run_evaluate(split, [shard], "denoise_sigma0.1", "m", tmp_path / "m.csv", tmp_path / "m.json")
    assert list(agg["by_kind"]) == ["real"] and agg["by_kind"]["real"]["n"] == 3
    assert agg["by_kind"]["real"]["psnr_mean"] == pytest.approx(agg["psnr_mean"])
    assert {r["kind"] for r in csv.DictReader(open(tmp_path / "m.csv"))} == {"real"}
