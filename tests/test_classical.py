"""Classical baselines (TV, low-rank, sparse) against independent oracles.

* TV and nuclear-norm solvers against cvxpy (CLARABEL) on the same convex
  problem, 16x16x3, every task operator: objective within 1e-3 relative, image
  within 1e-2 RMS (the issue's bar), and tighter where the solvers get there
  easily (nuclear norm: 1e-4 / 1e-3), so that a slightly wrong threshold or
  step is caught.  (Colourisation with TV: the minimiser is not unique --
  constant chroma offsets with ``w . c = 0`` change neither the data term nor
  the TV -- so there the measurement ``A x``, which is unique, is compared.)
* OMP against scikit-learn's ``orthogonal_mp``; K-SVD's dictionary update never
  raises the representation error.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ganrestore.methods import get_method
from ganrestore.solvers import lowrank as lr
from ganrestore.solvers import sparse as sp
from ganrestore.solvers import tv
from ganrestore.solvers.common import NormalSolver, initial_estimate
from ganrestore.solvers.reference import operator_matrix, solve_reference
from ganrestore.tasks import corrupt, make_task

cvxpy = pytest.importorskip("cvxpy")

TASKS16 = ["inpaint_center8", "colorize", "sr4", "denoise_sigma0.1", "quantize5"]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small problems: one thread is faster, and robust on a shared machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def face16():
    """A real face (scikit-image's astronaut), cropped and resized to 16x16."""
    from skimage import data
    from skimage.transform import resize

    img = data.astronaut()[30:230, 150:350] / 255.0
    img = resize(img, (16, 16), anti_aliasing=True)
    return torch.from_numpy(img.transpose(2, 0, 1)[None].copy()).float()


@pytest.fixture(scope="module")
def faces32():
    from skimage import data
    from skimage.transform import resize

    img = data.astronaut() / 255.0
    crops = [img[30:230, 150:350], img[0:256, 0:256], img[256:512, 256:512], img[100:300, 100:300]]
    arr = np.stack([resize(c, (32, 32), anti_aliasing=True) for c in crops])
    return torch.from_numpy(arr.transpose(0, 3, 1, 2).copy()).float()


def _observe(x, name):
    task = make_task(name, x.shape[-1])
    return task, corrupt(x, task, ["t0"], 0)


def _rms(a, b):
    return float((a - b).pow(2).mean().sqrt())


# ------------------------------------------------------------ building blocks

def test_grad_adjoint_exact():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 7, 5, generator=g, dtype=torch.float64)
    q = torch.randn(2, 2, 3, 7, 5, generator=g, dtype=torch.float64)
    lhs = (tv.grad(x) * q).sum()
    rhs = (x * tv.grad_adjoint(q)).sum()
    assert abs(float(lhs - rhs)) < 1e-10


def test_svt_matches_numpy():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 9, 9, generator=g, dtype=torch.float64)
    ours = lr.svt(x, 0.7)
    U, s, Vt = np.linalg.svd(x.numpy(), full_matrices=False)
    ref = (U * np.maximum(s - 0.7, 0)[..., None, :]) @ Vt
    assert np.abs(ours.numpy() - ref).max() < 1e-8


@pytest.mark.parametrize("name", TASKS16)
def test_normal_solver_closed_form(name):
    """The closed-form (A^T A + rho I)^{-1} agrees with conjugate gradients."""
    task = make_task(name, 16)
    b = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    fast = NormalSolver(task.op)
    x = fast(b.float(), 0.3).double()
    res = task.op.A_adjoint(task.op.A(x.float())).double() + 0.3 * x - b
    assert float(res.norm() / b.norm()) < 1e-5


def test_initial_estimate_is_data_consistent(face16):
    for name in ["inpaint_center8", "colorize"]:
        task, y = _observe(face16, name)
        x0 = initial_estimate(task.op, y)
        assert _rms(task.op.A(x0), y) < 1e-6


# ------------------------------------------------------------ TV vs cvxpy

@pytest.mark.parametrize("name", TASKS16)
def test_tv_matches_cvxpy(face16, name):
    task, y = _observe(face16, name)
    lam = 0.05
    xr, obj_ref, _ = solve_reference(task.op, y[0], lam, "tv", mode="vectorial")
    r = tv.solve_tv(task.op, y, lam, mode="vectorial", max_iter=5000, tol=1e-6)
    obj = float(r.objective[0])
    assert abs(obj - obj_ref) / abs(obj_ref) < 1e-3, (obj, obj_ref)
    if task.family == "colorize":   # non-unique minimiser: compare the (unique) measurement
        assert _rms(task.op.A(r.x), task.op.A(xr[None])) < 1e-2
    else:
        assert _rms(r.x[0], xr) < 1e-2
    assert r.x.min() >= 0 and r.x.max() <= 1
    assert not r.diverged.any() and r.iterations[0] > 0


def test_tv_channel_mode_matches_cvxpy(face16):
    task, y = _observe(face16, "sr4")
    xr, obj_ref, _ = solve_reference(task.op, y[0], 0.03, "tv", mode="channel")
    r = tv.solve_tv(task.op, y, 0.03, mode="channel", max_iter=5000, tol=1e-6)
    assert abs(float(r.objective[0]) - obj_ref) / obj_ref < 1e-3
    assert _rms(r.x[0], xr) < 1e-2


@pytest.mark.parametrize("name", ["inpaint_center8", "sr4"])
def test_tv_constrained_matches_cvxpy(face16, name):
    task, y = _observe(face16, name)
    xr, obj_ref, _ = solve_reference(task.op, y[0], 0.0, "tv", constrained=True)
    r = tv.solve_tv(task.op, y, 0.0, constrained=True, max_iter=5000, tol=1e-6)
    assert abs(float(r.objective[0]) - obj_ref) / obj_ref < 1e-3
    assert _rms(r.x[0], xr) < 1e-2
    assert r.extra["constraint_residual"][0] < 1e-3


def test_tv_duality_gap_certifies(face16):
    task, y = _observe(face16, "denoise_sigma0.1")
    r = tv.solve_tv(task.op, y, 0.05, max_iter=3000, tol=1e-7)
    assert 0 <= r.extra["gap"][0] < 1e-3


# ------------------------------------------------------- nuclear norm vs cvxpy

@pytest.mark.parametrize("name", TASKS16)
def test_nuclear_matches_cvxpy(face16, name):
    task, y = _observe(face16, name)
    lam = 0.1
    xr, obj_ref, _ = solve_reference(task.op, y[0], lam, "nuclear", box=False)
    r = lr.solve_lowrank(task.op, y, lam, rank=0, max_iter=1000, tol=1e-6)
    obj = float(r.objective[0])
    assert abs(obj - obj_ref) / abs(obj_ref) < 1e-4, (obj, obj_ref)
    assert _rms(r.x[0], xr) < 1e-3


def test_nuclear_constrained_matches_cvxpy(face16):
    task, y = _observe(face16, "inpaint_center8")
    xr, obj_ref, _ = solve_reference(task.op, y[0], 0.0, "nuclear", constrained=True, box=False)
    r = lr.solve_lowrank(task.op, y, 0.0, constrained=True, max_iter=3000, tol=1e-6)
    assert abs(float(r.objective[0]) - obj_ref) / obj_ref < 1e-4
    assert _rms(r.x[0], xr) < 1e-3


def _svt_numpy(x, t):
    U, s, Vt = np.linalg.svd(x.numpy(), full_matrices=False)
    return (U * np.maximum(s - t, 0)[..., None, :]) @ Vt


def test_warm_svt_converges_to_the_full_svt():
    """The warm-started subspace thresholding (one Rayleigh-Ritz step from the
    last call's subspace) is close to the full one (numpy's SVD) along a slowly
    changing sequence of 48x48 low-rank-plus-noise matrices, and exact at a
    fixed point (the same matrix again), which is where a solver ends."""
    g = torch.Generator().manual_seed(3)
    L = torch.randn(2, 3, 48, 5, generator=g, dtype=torch.float64) @ \
        torch.randn(2, 3, 5, 48, generator=g, dtype=torch.float64)
    N = 0.1 * torch.randn(2, 3, 48, 48, generator=g, dtype=torch.float64)
    warm = lr.WarmSVT()
    for i in range(5):
        x = L * (1 + 0.01 * i) + N
        assert np.abs(warm(x, 2.0).numpy() - _svt_numpy(x, 2.0)).max() < 1e-4
    errs = [np.abs(warm(x, 2.0).numpy() - _svt_numpy(x, 2.0)).max() for _ in range(3)]
    assert errs[-1] < 1e-10 and errs[-1] <= errs[0]
    assert warm.full_calls == 1 and warm.subspace_calls == 7


def test_warm_svt_falls_back_when_the_subspace_is_too_small():
    """A jump to a higher rank (every Ritz value above the threshold) is not
    trusted: the full decomposition is used and the result is still exact."""
    g = torch.Generator().manual_seed(4)
    warm = lr.WarmSVT(oversample=2)
    low = torch.randn(1, 1, 32, 2, generator=g, dtype=torch.float64) @ \
        torch.randn(1, 1, 2, 32, generator=g, dtype=torch.float64)
    warm(low, 0.5)
    high = 3 * torch.randn(1, 1, 32, 32, generator=g, dtype=torch.float64)
    out = warm(high, 0.5)
    assert np.abs(out.numpy() - _svt_numpy(high, 0.5)).max() < 1e-8
    assert warm.full_calls == 2


@pytest.mark.parametrize("name", ["inpaint_center12", "sr4"])
def test_nuclear_with_subspace_svt_matches_cvxpy_at_24(faces32, name, monkeypatch):
    """At 24x24 with a low-rank solution the solvers threshold through the
    warm-started subspace (checked), and still meet cvxpy's solution."""
    x24 = torch.nn.functional.interpolate(faces32[:1], size=24, mode="area")
    task, y = _observe(x24, name)
    lam = 1.0
    calls = []
    orig = lr.WarmSVT.__call__

    def spy(self, *a, **k):
        out = orig(self, *a, **k)
        calls.append(self.subspace_calls)
        return out

    monkeypatch.setattr(lr.WarmSVT, "__call__", spy)
    r = lr.solve_lowrank(task.op, y, lam, max_iter=2000, tol=1e-6)
    assert calls and calls[-1] > 0
    xr, obj_ref, _ = solve_reference(task.op, y[0], lam, "nuclear", box=False)
    assert abs(float(r.objective[0]) - obj_ref) / abs(obj_ref) < 1e-4
    assert _rms(r.x[0], xr) < 1e-3


def test_luma_nuclear_closed_form_equals_the_iterative_solution(faces32):
    """Colourisation with the per-channel nuclear norm has a closed form (all
    of the picture in the green channel); the ADMM and APGL iterations, which
    know nothing of it, converge to the same image and objective."""
    task, y = _observe(faces32[:2], "colorize")
    lam = 0.3
    exact = lr.solve_lowrank(task.op, y, lam)
    assert exact.extra["closed_form"].all()
    assert float(exact.x[:, [0, 2]].abs().max()) == 0.0 and float(exact.x[:, 1].abs().max()) > 0.1
    for solver in ("admm", "apgl"):
        it = lr.solve_lowrank(task.op, y, lam, closed_form=False, penalised_solver=solver,
                              max_iter=5000, tol=1e-7)
        assert "closed_form" not in it.extra
        assert np.all(np.abs(it.objective - exact.objective) / exact.objective < 1e-5)
        assert np.all(exact.objective <= it.objective * (1 + 1e-6))
        assert _rms(it.x, exact.x) < 2e-3


def test_tnnr_beats_nuclear_on_its_own_objective(face16):
    """Hu et al.'s two-step scheme lowers the truncated objective below what the
    plain nuclear-norm solution achieves on it."""
    task, y = _observe(face16, "inpaint_center8")
    lam, r = 0.1, 2
    nn = lr.solve_lowrank(task.op, y, lam, rank=0, max_iter=1000, tol=1e-6)
    tn = lr.solve_lowrank(task.op, y, lam, rank=r, outer_iter=4, max_iter=1000, tol=1e-6)
    f_nn = float(lr.lowrank_objective(task.op, nn.x, y, lam, r)[0])
    f_tn = float(tn.objective[0])
    assert f_tn < f_nn


def test_operator_matrix_matches_operator(face16):
    task, y = _observe(face16, "sr4")
    A = operator_matrix(task.op, (3, 16, 16))
    assert np.abs(A @ face16.double().numpy().ravel() - task.op.A(face16).double().numpy().ravel()).max() < 1e-5


# ------------------------------------------------------------------ OMP / K-SVD

def _random_problem(P=48, K=96, N=150, s=4, noise=0.05, seed=0):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((P, K))
    D /= np.linalg.norm(D, axis=0)
    C = np.zeros((K, N))
    for n in range(N):
        idx = rng.choice(K, s, replace=False)
        C[idx, n] = rng.standard_normal(s)
    return D, D @ C + noise * rng.standard_normal((P, N)), rng


@pytest.mark.parametrize("seed", [0, 1])
def test_omp_matches_sklearn_sparsity(seed):
    from sklearn.linear_model import orthogonal_mp

    D, X, _ = _random_problem(seed=seed)
    ref = orthogonal_mp(D, X, n_nonzero_coefs=6)
    ours = sp.omp(torch.from_numpy(X.T), torch.from_numpy(D), n_nonzero=6).numpy().T
    assert np.abs(ref - ours).max() < 1e-8
    assert (np.count_nonzero(ref, axis=0) == np.count_nonzero(ours, axis=0)).all()


def test_omp_matches_sklearn_tolerance():
    from sklearn.linear_model import orthogonal_mp

    D, X, _ = _random_problem(seed=3)
    tol = 1.1 * 0.05 ** 2 * D.shape[0]
    ref = orthogonal_mp(D, X, tol=tol)
    ours = sp.omp(torch.from_numpy(X.T), torch.from_numpy(D), tol=tol).numpy().T
    assert np.abs(ref - ours).max() < 1e-8


def test_masked_omp_matches_sklearn_on_observed_rows():
    from sklearn.linear_model import orthogonal_mp

    D, X, rng = _random_problem(seed=4)
    M = (rng.random((X.shape[1], X.shape[0])) > 0.4).astype(float)
    ours = sp.omp(torch.from_numpy(X.T), torch.from_numpy(D), n_nonzero=4,
                  mask=torch.from_numpy(M)).numpy().T
    for n in range(X.shape[1]):
        m = M[n] > 0
        nr = np.linalg.norm(D[m], axis=0)
        ref = orthogonal_mp(D[m] / nr, X[m, n], n_nonzero_coefs=4) / nr
        assert np.abs(ref - ours[:, n]).max() < 1e-8


def test_ksvd_update_lowers_error_every_iteration(faces32):
    X = sp.training_patches(faces32, 5, 1000, seed=0).double()
    D, hist = sp.ksvd(X, 32, 3, n_iter=4, seed=0)
    for h in hist:
        assert h["error_after_update"] < h["error_after_coding"]
    assert hist[-1]["error_after_update"] < hist[0]["error_after_coding"]
    assert torch.allclose(D.norm(dim=0), torch.ones(D.shape[1], dtype=D.dtype), atol=1e-10)


def test_ksvd_atom_update_is_the_rank_one_svd():
    """With many power steps the atom update equals the exact rank-one SVD of
    the residual restricted to the atom's users."""
    D, X, _ = _random_problem(P=20, K=10, N=60, s=2, noise=0.1, seed=5)
    Xt, Dt = torch.from_numpy(X.T), torch.from_numpy(D)
    coef = sp.omp(Xt, Dt, n_nonzero=2)
    k = 0   # the first atom of the sweep sees the residual of the original dictionary
    users = coef[:, k].nonzero().squeeze(1)
    assert users.numel() >= 3
    E = (Xt - coef @ Dt.T + coef[:, k:k + 1] * Dt[:, k][None])[users].numpy()
    s1 = np.linalg.svd(E, compute_uv=False)[0]
    D2, c2 = sp.ksvd_dictionary_update(Xt, Dt, coef, n_power=200)
    # the rank-one approximation of E captures s1^2 of its energy
    approx = c2[users, k][:, None].numpy() * D2[:, k][None].numpy()
    assert abs(np.linalg.norm(approx) - s1) < 1e-6 * s1


def test_patches_roundtrip(faces32):
    P = sp.extract_patches(faces32, 5, 3)
    z, cnt = sp.aggregate_patches(P, faces32.shape, 5, 3)
    assert (cnt > 0).all()
    assert torch.allclose(z, faces32, atol=1e-6)


# ------------------------------------------------------------------ methods

@pytest.fixture(scope="module")
def dictionary(tmp_path_factory, faces32):
    X = sp.training_patches(faces32, 4, 1000, seed=0)
    D, _ = sp.ksvd(X, 48, 4, n_iter=2, seed=0)
    path = tmp_path_factory.mktemp("dict") / "dictionary.npz"
    sp.save_dictionary(path, D, 4)
    return path


@pytest.mark.parametrize("method", ["tv", "lowrank", "sparse"])
@pytest.mark.parametrize("name", ["inpaint_center16", "colorize", "sr4", "denoise_sigma0.1", "quantize5"])
def test_methods_run_on_every_task(faces32, dictionary, method, name):
    info = get_method(method)
    task = make_task(name, 32)
    x = faces32[:2]
    y = corrupt(x, task, ["a", "b"], 0)
    cfg = {"extra_inputs": {"dictionary": str(dictionary)}, "max_iter": 60}
    res = info.fn(y, task.op, None, cfg, [0, 1], task=task)
    assert res.x_hat.shape == x.shape
    assert torch.isfinite(res.x_hat).all() and res.x_hat.min() >= 0 and res.x_hat.max() <= 1
    for k in ("objective", "iterations", "seconds", "diverged"):
        assert res.diagnostics[k].shape == (2,)
    assert not res.diagnostics["diverged"].any()
    assert (res.diagnostics["iterations"] > 0).all()
    # every baseline beats (or equals) the raw observation on the noisy tasks
    if task.family in ("denoise",):
        from ganrestore.metrics import psnr
        assert psnr(res.x_hat, x).mean() > psnr(task.op.A_input(y).clamp(0, 1), x).mean()


def test_colorize_gray_mode_returns_grey_images(faces32):
    task = make_task("colorize", 32)
    y = corrupt(faces32[:1], task, ["a"], 0)
    for method in ("tv", "lowrank"):
        res = get_method(method).fn(y, task.op, None, {"colorize": "gray", "lam": 0.01}, [0], task=task)
        assert torch.allclose(res.x_hat[:, 0], res.x_hat[:, 1]) and torch.allclose(res.x_hat[:, 1], res.x_hat[:, 2])
        gen = get_method(method).fn(y, task.op, None, {"colorize": "generic", "lam": 0.01}, [0], task=task)
        assert not torch.allclose(gen.x_hat[:, 0], gen.x_hat[:, 1], atol=1e-3)


def test_constrained_rejected_on_noisy_task(faces32):
    task = make_task("denoise_sigma0.1", 32)
    y = corrupt(faces32[:1], task, ["a"], 0)
    with pytest.raises(ValueError, match="constrained"):
        get_method("tv").fn(y, task.op, None, {"constrained": True}, [0], task=task)


def test_nan_observation_is_flagged_not_returned(faces32):
    task = make_task("denoise_sigma0.1", 32)
    y = corrupt(faces32[:2], task, ["a", "b"], 0)
    y[1, 0, 3, 3] = float("nan")
    for method in ("tv", "lowrank"):
        res = get_method(method).fn(y, task.op, None, {"max_iter": 30}, [0, 1], task=task)
        assert res.diagnostics["diverged"].tolist() == [False, True]
        assert torch.isnan(res.x_hat[1]).all() and torch.isfinite(res.x_hat[0]).all()


def test_grid_search_prefers_regularisation(faces32):
    from ganrestore.tuning import grid_search

    best, rows = grid_search("tv", "denoise_sigma0.1", faces32[:2], ["a", "b"],
                             {"lam": [0.0, 0.05]}, {"max_iter": 100})
    assert best["lam"] == 0.05 and len(rows) == 2
    assert rows[1]["psnr"] > rows[0]["psnr"] + 1.0
    assert math.isfinite(rows[0]["psnr"])


@pytest.mark.parametrize("solver", ["tv", "lowrank"])
def test_solvers_stop_on_relative_change(face16, solver):
    task, y = _observe(face16, "sr4")
    run = (lambda **k: tv.solve_tv(task.op, y, 0.05, **k)) if solver == "tv" else \
        (lambda **k: lr.solve_lowrank(task.op, y, 0.1, **k))
    loose = run(max_iter=500, tol=1e-3)
    assert loose.converged[0] and 0 < loose.iterations[0] < 500
    capped = run(max_iter=7, tol=0.0)
    assert not capped.converged[0] and capped.iterations[0] == 7
    assert np.isfinite(loose.objective[0]) and np.isfinite(capped.objective[0])
