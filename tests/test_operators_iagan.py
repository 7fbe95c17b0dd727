"""IAGAN's operators (issue 15): Gaussian and subsampled-Fourier compressed
sensing, 9x9 uniform deblurring, the generic noise suffix, misaligned SR.

Oracles: the inner-product identity <A x, y> = <x, A^T y> (adjointness), the
Moore-Penrose conditions, scipy.ndimage.uniform_filter (the blur in the
interior), the IAGAN paper/code's reported kept fractions of its Fourier masks,
the N(0, 1/m) law, and images inside a generator's range (CSGM recovery).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import uniform_filter

from ganrestore import operators as ops
from ganrestore.methods import run_method
from ganrestore.priors import Prior, to_unit
from ganrestore.tasks import corrupt, make_task

from test_gan_methods import calibrated_generator

OPS = {
    "gaussian64": lambda: ops.GaussianCS(64, 0.1, seed=3),
    "gaussian128": lambda: ops.GaussianCS(128, 0.02, seed=3),
    "fourier64": lambda: ops.FourierCS(64, 0.3, seed=3),
    "fourier128": lambda: ops.FourierCS(128, 0.5, seed=3),
    "blur64": lambda: ops.UniformBlur(64, 9),
    "blur128": lambda: ops.UniformBlur(128, 9),
    "blur64_zero": lambda: ops.UniformBlur(64, 9, "zero"),
    "blur64_reflect": lambda: ops.UniformBlur(64, 9, "reflect"),
    "blur32_reflect_even": lambda: ops.UniformBlur(32, 4, "reflect"),
}


@pytest.mark.parametrize("key", sorted(OPS))
def test_adjoint_and_pseudo_inverse(key):
    op = OPS[key]()
    g = torch.Generator().manual_seed(0)
    x = torch.rand((2,) + op.image_shape, generator=g, dtype=torch.float64)
    y = op.A(x)
    v = torch.randn(y.shape, generator=g, dtype=torch.float64)
    lhs, rhs = (op.A(x) * v).sum(), (x * op.A_adjoint(v)).sum()
    assert abs(float(lhs - rhs)) <= 1e-4 * float(lhs.abs() + rhs.abs()), (float(lhs), float(rhs))
    # A A^+ y = y for y in the range; for any v, A^+ v solves the normal equations
    # and lies in the range of A^T (the least-norm solution)
    tol = 1e-4 if "gaussian" in key else 1e-9
    assert float((op.A(op.A_dagger(y)) - y).abs().max()) <= tol * float(y.abs().max())
    xd = op.A_dagger(v)
    assert float(op.A_adjoint(op.A(xd) - v).abs().max()) <= tol * 10 * float(v.abs().max())
    # least norm: no component in the null space of A (where A has one)
    null = x - op.A_dagger(op.A(x))
    if float(null.norm()) > 1e-6 * float(x.norm()):
        assert abs(float((xd * null).sum())) <= 1e-3 * float(xd.norm() * null.norm())


def test_gaussian_matrix_law_and_seed():
    op = ops.GaussianCS(32, 0.25, seed=11)
    M = op.matrix.double()
    assert M.shape == (op.m, op.n) and op.m == round(0.25 * 3 * 32 * 32)
    assert abs(float(M.mean())) < 3 / (M.numel() ** 0.5 * op.m ** 0.5)
    assert abs(float(M.var()) * op.m - 1.0) < 0.01
    assert torch.equal(op.matrix, ops.GaussianCS(32, 0.25, seed=11).matrix)
    assert not torch.equal(op.matrix, ops.GaussianCS(32, 0.25, seed=12).matrix)
    # the task derives the seed from (experiment seed, task): same task, same matrix
    a, b = make_task("cs_gaussian_0.25", 32, seed=5), make_task("cs_gaussian_0.25_noise0.01", 32, seed=5)
    assert torch.equal(a.op.matrix, b.op.matrix)
    assert not torch.equal(a.op.matrix, make_task("cs_gaussian_0.25", 32, seed=6).op.matrix)


def test_gaussian_refuses_a_matrix_over_the_budget():
    with pytest.raises(ValueError, match="GiB"):
        make_task("cs_gaussian_0.61", 128)


@pytest.mark.parametrize("ratio, kept", [(0.3, 0.354), (0.5, 0.538)])
def test_fourier_mask_follows_the_official_law(ratio, kept):
    """IAGAN's rand_mask at 128 px keeps about 0.354 (nominal 0.3) and 0.538 (0.5)
    of the frequencies; its quadrants mirror the top-left one; low frequencies
    (the unshifted FFT's corners) are denser than high ones."""
    fr = [ops.FourierCS(128, ratio, seed=s).kept_fraction for s in range(4)]
    assert abs(np.mean(fr) - kept) < 0.01, fr
    m = ops.iagan_fourier_mask(128, ratio, seed=0)
    q = m[:64, :64]
    assert torch.equal(m[:64, 64:], q.flip(1)) and torch.equal(m[64:, :64], q.flip(0))
    assert torch.equal(m[64:, 64:], q.flip(0).flip(1))
    assert float(q[:16, :16].mean()) > float(q[48:, 48:].mean())
    assert not torch.equal(m, ops.iagan_fourier_mask(128, ratio, seed=1))
    t = make_task(f"cs_fourier_{ratio}", 128)
    assert t.extra["kept_fraction"] == t.op.kept_fraction and t.op.spec()["kept_fraction"] == t.op.kept_fraction


def test_fourier_measurements_are_the_kept_fft_coefficients_of_each_channel():
    op = ops.FourierCS(32, 0.4, seed=2)
    x = torch.rand(1, 3, 32, 32, dtype=torch.float64)
    y = op.A(x)
    F = np.fft.fft2(x.numpy(), norm="ortho")
    keep = op.mask.numpy() > 0
    for c in range(3):
        np.testing.assert_allclose(y[0, c, 0].numpy(), F[0, c][keep].real, atol=1e-10)
        np.testing.assert_allclose(y[0, c, 1].numpy(), F[0, c][keep].imag, atol=1e-10)


def test_uniform_blur_equals_scipy_in_the_interior():
    op = ops.UniformBlur(64, 9)
    x = torch.rand(1, 3, 64, 64, dtype=torch.float64)
    ours = op.A(x)[0].numpy()
    ref = np.stack([uniform_filter(x[0, c].numpy(), size=9, mode="wrap") for c in range(3)])
    np.testing.assert_allclose(ours, ref, atol=1e-12)                 # circular everywhere
    ref_reflect = np.stack([uniform_filter(x[0, c].numpy(), size=9) for c in range(3)])
    np.testing.assert_allclose(ours[:, 4:-4, 4:-4], ref_reflect[:, 4:-4, 4:-4], atol=1e-12)
    assert torch.equal(op.A_input(op.A(x)), op.A(x))                  # the "blurred" baseline


@pytest.mark.parametrize("boundary, mode", sorted(ops.BLUR_BOUNDARIES.items()))
@pytest.mark.parametrize("k", [9, 4])
def test_uniform_blur_boundaries_equal_scipy_everywhere(boundary, mode, k):
    """task_options.blur_boundary: each equals scipy.ndimage.uniform_filter with
    its mode on every pixel (even sizes too); (A^T A + rho)^-1 is the inverse of
    the normal operator."""
    op = ops.UniformBlur(32, k, boundary)
    x = torch.rand(2, 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(k))
    ref = uniform_filter(x.numpy(), size=(1, 1, k, k), mode=mode)
    np.testing.assert_allclose(op.A(x).numpy(), ref, atol=1e-12)
    b = op.normal_solve(x, 0.3)
    np.testing.assert_allclose((op.A_adjoint(op.A(b)) + 0.3 * b).numpy(), x.numpy(), atol=1e-9)
    assert abs(op.norm_sq() - float(torch.linalg.matrix_norm(
        torch.stack([op.A(e.view(1, 1, 32, 32).expand(1, 3, 32, 32))[0, 0].flatten()
                     for e in torch.eye(32 * 32, dtype=torch.float64)], 1), ord=2)) ** 2) < 1e-8
    if boundary != "circular":
        assert not torch.allclose(op.A(x), ops.UniformBlur(32, k).A(x))   # the border differs


def test_generic_noise_suffix_and_misaligned_sr():
    for name, sigma in [("cs_fourier_0.3_noise0.0392", 0.0392), ("deblur_uniform9_noise0.0392", 0.0392),
                        ("inpaint_center32_noise0.05", 0.05), ("sr8_noise0.0392", 0.0392), ("colorize", 0.0)]:
        assert make_task(name, 64).sigma == sigma
    with pytest.raises(ValueError, match="own noise"):
        make_task("denoise_sigma0.1_noise0.1", 64)
    with pytest.raises(ValueError, match="ratio"):
        make_task("cs_fourier_1.5", 64)
    t = make_task("sr4_misaligned", 64)
    x = torch.rand(2, 3, 64, 64)
    xs = t.clean(x)
    assert t.extra["shift"] == 4 and torch.equal(xs[..., 4:, :], x[..., :-4, :])
    assert torch.equal(xs[..., :4, :], x[..., :1, :].expand(-1, -1, 4, -1))
    y = corrupt(x, t, ["a", "b"], 0)
    torch.testing.assert_close(y, t.op.A(xs))
    assert torch.equal(make_task("sr4", 64).clean(x), x)


def test_csgm_recovers_in_range_images_from_gaussian_measurements():
    """x = G(z*), m/n = 0.3: CSGM reaches >= 30 dB (the range is 100-dim, m = 3686)."""
    torch.manual_seed(1)
    prior = Prior(G=calibrated_generator(), D=None)
    torch.manual_seed(7)
    with torch.no_grad():
        x = to_unit(prior.G(torch.randn(2, 100)))
    task = make_task("cs_gaussian_0.3", 64, seed=0)
    y = corrupt(x, task, ["a", "b"], 0)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        res = run_method("csgm", y, task.op, prior, {"iterations": 120, "restarts": 2}, [1, 2], task=task)
    finally:
        torch.set_num_threads(n)
    mse = ((res.x_hat - x) ** 2).flatten(1).mean(1)
    psnr = -10 * torch.log10(mse)
    assert (psnr >= 30).all(), psnr


@pytest.mark.parametrize("task_name", ["cs_fourier_0.5", "deblur_uniform9_noise0.0392", "cs_gaussian_0.2"])
@pytest.mark.parametrize("method", ["tv", "lowrank"])
def test_classical_solvers_run_on_the_new_operators_unchanged(task_name, method):
    """No edit in solvers/: the operator's closed forms or the generic defaults serve."""
    g = torch.Generator().manual_seed(0)
    if method == "tv":       # piecewise constant: 4 x 4 blocks of 8 px
        x = torch.rand(2, 3, 4, 4, generator=g).repeat_interleave(8, 2).repeat_interleave(8, 3)
    else:                    # rank 2 per channel
        u, v = torch.rand(2, 3, 32, 2, generator=g), torch.rand(2, 3, 2, 32, generator=g)
        x = (u @ v) / 2
    task = make_task(task_name, 32, seed=0)
    y = corrupt(x, task, ["a", "b"], 0)
    res = run_method(method, y, task.op, None, {"lam": 0.02, "max_iter": 60}, [1, 2], task=task)
    assert not res.diagnostics["diverged"].any(), res.diagnostics["failure"]
    err_in = ((task.op.A_input(y).clamp(0, 1) - x) ** 2).mean()
    err = ((res.x_hat - x) ** 2).mean()
    assert err < err_in, (float(err), float(err_in))


@pytest.mark.parametrize("task_name", ["cs_fourier_0.3_noise0.0392", "deblur_uniform9_noise0.0392",
                                       "cs_gaussian_0.05"])
def test_gan_methods_run_through_any_operator(task_name):
    """Yeh's weighted mask and blend use an operator's pixel mask only: a Fourier
    operator's frequency mask is not one (it once crashed yeh on cs_fourier)."""
    from ganrestore.priors import Discriminator

    torch.manual_seed(1)
    prior = Prior(G=calibrated_generator(), D=Discriminator(ndf=8).eval())
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    task = make_task(task_name, 64, seed=0)
    y = corrupt(x, task, ["a"], 0)
    yeh = run_method("yeh", y, task.op, prior, {"iterations": 3, "restarts": 1}, [1], task=task)
    blend = run_method("yeh_blend", y, task.op, prior, {}, [1], upstream=yeh, task=task)
    assert torch.equal(blend.x_hat, yeh.x_hat) and not blend.diagnostics["blended"].any()
    cs = run_method("csgm", y, task.op, prior, {"iterations": 3, "restarts": 1}, [1], task=task)
    ia = run_method("iagan", y, task.op, prior, {"iterations": 2}, [1], upstream=cs, task=task)
    for r in (yeh, cs, ia):
        assert torch.isfinite(r.x_hat).all()
