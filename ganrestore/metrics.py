"""Per-image image-quality metrics and their aggregation.

PSNR with ``data_range=1``; SSIM from scikit-image on colour images (mean over
channels), its window one of :data:`SSIM_WINDOWS` (config
``evaluation.ssim_window``): ``gaussian11``, Wang et al. 2004's 11 x 11 Gaussian,
sigma 1.5, population covariances (the default), or ``uniform7``,
scikit-image's own default 7 x 7 uniform window with sample covariances; Yeh et
al.'s slides name neither, and the choice moves their SSIM cells by up to about
0.02 (:func:`ganrestore.fidelity.sensitivity_rows`); MSE.  Aggregates report
mean, std and a 95% confidence interval, and PSNR both as the mean of
per-image PSNR (``psnr_mean``) and as the PSNR of the mean MSE
(``psnr_of_mean_mse``, the IAGAN convention); which one a table shows is the
table's choice (config ``evaluation.yeh_psnr``).
"""

from __future__ import annotations

import math

import numpy as np

# scikit-image's metrics (and SciPy's statistics) are imported where used: they
# cost ~1 s of start-up, which a job that never computes a metric should not pay.

SSIM_KW = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)
#: SSIM windows (scikit-image keyword sets): Wang et al.'s Gaussian (default), scikit-image's default
SSIM_WINDOWS = {"gaussian11": SSIM_KW,
                "uniform7": dict(gaussian_weights=False, win_size=7, use_sample_covariance=True, data_range=1.0)}
#: per-image PSNR averages a table may show (aggregate JSON keys)
PSNR_AVERAGES = {"mean": "psnr_mean", "mean_mse": "psnr_of_mean_mse"}


def _hwc(x) -> np.ndarray:
    a = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    return a.astype(np.float64).transpose(0, 2, 3, 1)


def mse(x_hat, x) -> np.ndarray:
    a, b = _hwc(x_hat), _hwc(x)
    return ((a - b) ** 2).reshape(len(a), -1).mean(1)


def psnr(x_hat, x) -> np.ndarray:
    """Per-image PSNR in dB of batches (B,3,H,W) in [0,1] (scikit-image)."""
    from skimage.metrics import peak_signal_noise_ratio

    a, b = _hwc(x_hat), _hwc(x)
    return np.array([peak_signal_noise_ratio(bi, ai, data_range=1.0) for ai, bi in zip(a, b)])


def ssim(x_hat, x, window: str = "gaussian11") -> np.ndarray:
    """Per-image SSIM (scikit-image, channel mean) with one of :data:`SSIM_WINDOWS`."""
    from skimage.metrics import structural_similarity

    if window not in SSIM_WINDOWS:
        raise ValueError(f"ssim window {window!r} is not one of {', '.join(SSIM_WINDOWS)}")
    kw = SSIM_WINDOWS[window]
    a, b = _hwc(x_hat), _hwc(x)
    return np.array([structural_similarity(bi, ai, channel_axis=-1, **kw) for ai, bi in zip(a, b)])


def psnr_of_mean_mse(mses) -> float:
    """PSNR of the mean MSE over images (IAGAN's footnote), data range 1."""
    m = float(np.mean(mses))
    return math.inf if m == 0 else 10.0 * math.log10(1.0 / m)


def summarize(values) -> dict:
    """mean, std (ddof=1), and the half-width of a 95% t confidence interval."""
    from scipy import stats

    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    n = len(v)
    if n == 0:
        return {"mean": math.nan, "std": math.nan, "ci95": math.nan, "n": 0}
    std = float(v.std(ddof=1)) if n > 1 else 0.0
    ci = float(stats.t.ppf(0.975, n - 1) * std / math.sqrt(n)) if n > 1 else math.nan
    return {"mean": float(v.mean()), "std": std, "ci95": ci, "n": n}


def lpips_metric(weights_path, device="cpu"):
    """Per-image LPIPS (AlexNet v0.1, :mod:`ganrestore.lpips`; lower = closer) as
    ``fn(x_hat, x) -> (B,) array``, from the converted safetensors weights."""
    from .lpips import load_lpips, lpips_distance

    model = load_lpips(weights_path, device)
    return lambda x_hat, x: lpips_distance(x_hat, x, model)
