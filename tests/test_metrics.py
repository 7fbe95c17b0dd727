"""Metrics against independent oracles: scikit-image called directly on HWC arrays,
a NumPy/SciPy re-implementation of Wang et al.'s SSIM, hand computations of the
IAGAN "PSNR of the mean MSE", and SciPy's t interval for the 95% CI."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage, stats
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from ganrestore import metrics


def _pairs(b=5, h=32, w=24, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((b, 3, h, w))
    noise = rng.normal(0, 1, x.shape) * np.linspace(0.02, 0.3, b)[:, None, None, None]
    x_hat = np.clip(x + noise, 0, 1)
    return torch.from_numpy(x_hat).float(), torch.from_numpy(x).float()


def _hwc(t):
    return t.numpy().astype(np.float64).transpose(0, 2, 3, 1)


def _ssim_wang(a, b, sigma=1.5, data_range=1.0, k1=0.01, k2=0.03):
    """SSIM of two HxWxC images, Wang et al. 2004 with an 11x11 Gaussian window
    (sigma 1.5, population covariances), mean over the valid region and channels."""
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    pad = (2 * int(3.5 * sigma + 0.5) + 1 - 1) // 2  # 11x11 window -> 5
    vals = []
    for c in range(a.shape[-1]):
        x, y = a[..., c], b[..., c]
        f = lambda z: ndimage.gaussian_filter(z, sigma, mode="reflect", truncate=3.5)  # noqa: E731
        mx, my = f(x), f(y)
        sxx, syy, sxy = f(x * x) - mx * mx, f(y * y) - my * my, f(x * y) - mx * my
        s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (sxx + syy + c2))
        vals.append(s[pad:-pad, pad:-pad].mean())
    return float(np.mean(vals))


def test_psnr_equals_scikit_image_and_formula():
    x_hat, x = _pairs()
    ours = metrics.psnr(x_hat, x)
    a, b = _hwc(x_hat), _hwc(x)
    sk = np.array([peak_signal_noise_ratio(bi, ai, data_range=1.0) for ai, bi in zip(a, b)])
    hand = np.array([10 * np.log10(1.0 / np.mean((ai - bi) ** 2)) for ai, bi in zip(a, b)])
    assert ours.shape == (5,)
    np.testing.assert_allclose(ours, sk, rtol=0, atol=1e-10)
    np.testing.assert_allclose(ours, hand, rtol=0, atol=1e-10)
    assert np.all(np.diff(ours) < 0)  # noise grows along the batch


def test_psnr_is_symmetric_and_infinite_on_identity():
    x_hat, x = _pairs(b=2)
    np.testing.assert_allclose(metrics.psnr(x_hat, x), metrics.psnr(x, x_hat))
    with np.errstate(divide="ignore"):
        assert np.all(np.isinf(metrics.psnr(x, x)))


def test_mse_equals_scikit_image():
    x_hat, x = _pairs()
    sk = np.array([mean_squared_error(bi, ai) for ai, bi in zip(_hwc(x_hat), _hwc(x))])
    np.testing.assert_allclose(metrics.mse(x_hat, x), sk, rtol=1e-12)


def test_ssim_equals_scikit_image_with_wang_settings():
    x_hat, x = _pairs()
    ours = metrics.ssim(x_hat, x)
    a, b = _hwc(x_hat), _hwc(x)
    sk = np.array([structural_similarity(bi, ai, channel_axis=-1, data_range=1.0, gaussian_weights=True,
                                         sigma=1.5, use_sample_covariance=False) for ai, bi in zip(a, b)])
    np.testing.assert_allclose(ours, sk, rtol=0, atol=1e-10)
    # the settings matter: scikit-image's defaults (7x7 uniform window, sample covariance) differ
    default = np.array([structural_similarity(bi, ai, channel_axis=-1, data_range=1.0) for ai, bi in zip(a, b)])
    assert np.max(np.abs(default - ours)) > 1e-3


def test_ssim_equals_independent_wang_implementation():
    x_hat, x = _pairs(b=3, h=40, w=40, seed=3)
    ours = metrics.ssim(x_hat, x)
    wang = np.array([_ssim_wang(b, a) for a, b in zip(_hwc(x_hat), _hwc(x))])
    np.testing.assert_allclose(ours, wang, rtol=0, atol=1e-8)
    assert np.allclose(metrics.ssim(x, x), 1.0)


def test_metrics_accept_numpy_arrays():
    x_hat, x = _pairs(b=2)
    np.testing.assert_allclose(metrics.psnr(x_hat.numpy(), x.numpy()), metrics.psnr(x_hat, x))
    np.testing.assert_allclose(metrics.ssim(x_hat.numpy(), x.numpy()), metrics.ssim(x_hat, x))


def test_psnr_of_mean_mse_by_hand():
    mses = [0.01, 0.0001]  # per-image PSNR 20 dB and 40 dB
    # mean MSE = 0.00505 -> 10 log10(1 / 0.00505) = 22.967 dB, far below the mean PSNR of 30 dB
    assert metrics.psnr_of_mean_mse(mses) == pytest.approx(10 * math.log10(1 / 0.00505), abs=1e-12)
    assert metrics.psnr_of_mean_mse(mses) == pytest.approx(22.9671, abs=1e-4)
    assert metrics.psnr_of_mean_mse([0.0, 0.0]) == math.inf
    # IAGAN's footnote on the 0..255 scale: 10 log10(255^2 / mean MSE_255) is the same number
    x_hat, x = _pairs(b=4)
    x8, xh8 = np.rint(x.double().numpy() * 255), np.rint(x_hat.double().numpy() * 255)
    mse255 = ((x8 - xh8) ** 2).reshape(4, -1).mean(1)
    iagan = 10 * np.log10(255.0 ** 2 / mse255.mean())
    ours = metrics.psnr_of_mean_mse(metrics.mse(torch.from_numpy(xh8 / 255), torch.from_numpy(x8 / 255)))
    assert ours == pytest.approx(iagan, abs=1e-9)
    # Jensen: PSNR of the mean MSE never exceeds the mean PSNR
    per = metrics.psnr(x_hat, x)
    assert metrics.psnr_of_mean_mse(metrics.mse(x_hat, x)) <= per.mean() + 1e-12


def test_summarize_against_scipy():
    rng = np.random.default_rng(7)
    v = rng.normal(25, 3, size=17)
    s = metrics.summarize(v)
    lo, hi = stats.t.interval(0.95, len(v) - 1, loc=v.mean(), scale=stats.sem(v))
    assert s["n"] == 17
    assert s["mean"] == pytest.approx(np.mean(v), abs=1e-12)
    assert s["std"] == pytest.approx(np.std(v, ddof=1), abs=1e-12)
    assert s["ci95"] == pytest.approx((hi - lo) / 2, abs=1e-12)


def test_summarize_drops_non_finite_and_small_samples():
    v = np.array([1.0, 2.0, np.nan, 4.0, np.inf])
    s = metrics.summarize(v)
    ref = metrics.summarize([1.0, 2.0, 4.0])
    assert s == ref and s["n"] == 3
    one = metrics.summarize([3.0])
    assert one["mean"] == 3.0 and one["std"] == 0.0 and math.isnan(one["ci95"]) and one["n"] == 1
    none = metrics.summarize([np.nan])
    assert none["n"] == 0 and math.isnan(none["mean"])
