"""GAN-prior methods: yeh, yeh_blend, csgm, csgm_bp, iagan, iagan_bp.

Oracles: images in the generator's range (the answer is known), the
constraint ``A x = y`` (back-projection), scikit-image's HSV conversion and
scipy's ``convolve2d`` (blends), a least-squares solve of the variational
Poisson problem, and the methods themselves run on a single image (batch
independence).  In-range tests use a small DCGAN (ngf=16) with random weights
whose batch-norm statistics are calibrated and whose last layer is scaled to
span the full tanh range: cheap on a CPU, and its images use the whole [0, 1]
range.  The out-of-range test uses the pretrained teacher generator on real
photographs from scikit-image.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from scipy.signal import convolve2d

from ganrestore import blending
from ganrestore.methods import Restoration, get_method, run_method
from ganrestore.methods.gan_core import BestKeeper, initial_latents
from ganrestore.methods.gan_iagan import BatchedGenerator
from ganrestore.metrics import psnr
from ganrestore.priors import Discriminator, Generator, Prior, load_teacher_generator, to_unit
from ganrestore.tasks import corrupt, make_task

SEEDS = [101, 202, 303]


def calibrated_generator(ngf=16, seed=0):
    """Random DCGAN generator: BN running statistics from 512 samples, last layer
    scaled so the pre-tanh activations have unit standard deviation."""
    torch.manual_seed(seed)
    G = Generator(ngf=ngf)
    for m in G.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None                       # cumulative average
    G.train()
    with torch.no_grad():
        G(torch.randn(512, 100))
        G.eval()
        pre = G.main[:-1](torch.randn(256, 100)[:, :, None, None])
        G.main[-2].weight.mul_(1.0 / pre.std())
    return G.eval()


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def small_prior():
    torch.manual_seed(1)
    D = Discriminator(ndf=8).eval()
    return Prior(G=calibrated_generator(), D=D)


@pytest.fixture(scope="module")
def in_range(small_prior):
    torch.manual_seed(7)
    with torch.no_grad():
        return to_unit(small_prior.G(torch.randn(3, 100)))


def run(name, y, task, prior, cfg, seeds=SEEDS, upstream=None):
    return get_method(name).fn(y, task.op, prior, dict(cfg), list(seeds), upstream=upstream, task=task)


def observe(x, task_name):
    task = make_task(task_name, 64)
    return task, corrupt(x, task, [str(i) for i in range(len(x))], global_seed=0)


def slice_restoration(r: Restoration, i: int) -> Restoration:
    return Restoration(r.x_hat[i:i + 1], {k: v[i:i + 1] for k, v in r.diagnostics.items()},
                       {k: np.asarray(v)[i:i + 1] for k, v in r.extras.items()})


# ----------------------------------------------------------------------------- CSGM on in-range images
@pytest.mark.parametrize("task_name", ["denoise_sigma0.1", "inpaint_center32"])
def test_csgm_recovers_in_range_images(small_prior, in_range, task_name):
    """x = G(z*): CSGM (Adam lr 0.1, 2 restarts x 100 iterations) reaches >= 35 dB.
    For denoising at sigma = 0.1 the projection onto the 100-dim range leaves
    MSE ~ sigma^2 k / n (~41 dB), so 35 dB needs the global minimum."""
    task, y = observe(in_range, task_name)
    res = run("csgm", y, task, small_prior, {"iterations": 100, "restarts": 2})
    p = psnr(res.x_hat, in_range)
    assert (p >= 35).all(), p
    # the optimisation does the work: the initial latents are far off
    start = run("csgm", y, task, small_prior, {"iterations": 0, "restarts": 2})
    assert (psnr(start.x_hat, in_range) < 25).all()
    # diagnostics and extras have the promised shapes
    assert res.extras["z"].shape == (3, 100) and res.extras["z"].dtype == np.float32
    assert res.extras["trace"].shape == (3, 11)                        # iterations 0, 10, ..., 100
    assert np.all(np.diff(res.extras["trace_step"][0]) == 10)
    assert (res.diagnostics["iterations"] == 100).all()
    assert (res.diagnostics["restarts_used"] == 2).all() and not res.diagnostics["diverged"].any()
    # the kept objective is the minimum of the recorded trace (BestKeeper along the iterations)
    assert np.all(res.diagnostics["objective"] <= np.nanmin(res.extras["trace"], 1) + 1e-4)


# ----------------------------------------------------------------------------- back-projection
@pytest.mark.parametrize("task_name", ["inpaint_center32", "colorize", "sr4"])
def test_back_projection_satisfies_the_measurements(small_prior, in_range, task_name):
    """IAGAN eq. (9): ||A x_bp - y|| <= 1e-4 ||y|| on noiseless tasks (clip off, so
    x_bp is the exact projection; inpainting stays in [0, 1] and is also checked clipped)."""
    x = in_range.flip(-1)                       # not in the range: BP has work to do
    task, y = observe(x, task_name)
    up = run("csgm", y, task, small_prior, {"iterations": 5, "restarts": 1})
    assert (up.diagnostics["measurement"] > 1e-2).all()
    for name in ("csgm_bp", "iagan_bp"):
        upstream = up if name == "csgm_bp" else run("iagan", y, task, small_prior, {"iterations": 3}, upstream=up)
        res = run(name, y, task, small_prior, {"clip": False}, upstream=upstream)
        resid = (task.op.A(res.x_hat) - y).flatten(1).norm(dim=1)
        assert (resid <= 1e-4 * y.flatten(1).norm(dim=1)).all(), (name, resid)
        assert (res.diagnostics["bp_residual"] <= 1e-4).all()
        # BP changes only the row space of A: the null-space part of x_hat is kept
        d = res.x_hat - upstream.x_hat
        assert torch.allclose(task.op.A_dagger(task.op.A(d)), d, atol=1e-4)
        np.testing.assert_array_equal(res.extras["z"], upstream.extras["z"])
    if task_name == "inpaint_center32":
        clipped = run("csgm_bp", y, task, small_prior, {}, upstream=up)
        assert torch.allclose(task.op.A(clipped.x_hat), y, atol=1e-6)


# ----------------------------------------------------------------------------- IAGAN
def real_faces():
    from skimage import data
    from skimage.transform import resize

    astro = data.astronaut()[20:200, 140:320]
    cat = data.chelsea()[20:260, 80:320]
    imgs = [astro, astro[:, ::-1], cat]
    out = np.stack([resize(im, (64, 64), anti_aliasing=True) for im in imgs])
    return torch.from_numpy(out.transpose(0, 3, 1, 2).copy()).float()


def test_iagan_fits_out_of_range_faces_better_than_csgm():
    """Real photographs are outside the teacher generator's range; the image-adaptive
    stage (paper lr 1e-4 for z and theta) lowers the measurement loss of every image."""
    G = load_teacher_generator()
    prior = Prior(G=G, D=None)
    x = real_faces()
    task, y = observe(x, "sr4")
    cs = run("csgm", y, task, prior, {"iterations": 20, "restarts": 1})
    ia = run("iagan", y, task, prior, {"iterations": 5}, upstream=cs)
    assert (ia.diagnostics["measurement"] < 0.9 * cs.diagnostics["measurement"]).all(), (
        ia.diagnostics["measurement"], cs.diagnostics["measurement"])
    # the first IA iterate is CSGM's image (same weights, same z)
    np.testing.assert_allclose(ia.extras["trace"][:, 0], cs.diagnostics["measurement"], rtol=1e-3)
    assert (ia.diagnostics["seconds"] > ia.diagnostics["stage_seconds"]).all()   # includes csgm's time
    # the pretrained weights are untouched (per-image copies were tuned)
    assert torch.equal(G.state_dict()["main.0.weight"], load_teacher_generator().state_dict()["main.0.weight"])


def test_batched_generator_equals_per_image_generators(small_prior):
    """Oracle: G with image b's weights loaded, one image at a time (values and gradients)."""
    G = small_prior.G
    torch.manual_seed(3)
    P = {n: torch.stack([p.detach() * (1 + 0.1 * torch.randn_like(p)) for _ in range(3)])
         for n, p in G.named_parameters()}                       # 3 different weight sets, G's layout
    z = torch.randn(3, 100)
    for mode in ("bmm", "vmap"):
        bg = BatchedGenerator(G, mode)
        own = bg.stacked_params(3)
        assert all(torch.equal(v[1], p) for v, p in zip(bg.module_layout(own).values(), G.parameters()))
        # the same weights in the batched generator's own layout
        Pm = {}
        for n, v in P.items():
            t = v.reshape(3, v.shape[1], -1).transpose(1, 2) if own[n].dim() == 3 and v.dim() == 5 else v
            Pm[n] = t.detach().clone().contiguous().requires_grad_(True)
        assert {n: t.shape for n, t in Pm.items()} == {n: t.shape for n, t in own.items()}
        x = bg(Pm, z)
        (x.square().sum(dim=(1, 2, 3)) * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
        grads = bg.module_layout({n: t.grad for n, t in Pm.items()})
        for b in range(3):
            Gb = copy.deepcopy(G)
            Gb.load_state_dict({**G.state_dict(), **{k: v[b] for k, v in P.items()}})
            xb = Gb(z[b:b + 1])
            torch.testing.assert_close(x[b], xb[0], atol=1e-5, rtol=1e-4)
            ((b + 1.0) * xb.square().sum()).backward()
            for k, prm in Gb.named_parameters():
                rel = (grads[k][b] - prm.grad).norm() / prm.grad.norm()
                assert rel < 1e-4, (mode, k, b, rel)


def test_iagan_halves_iterations_when_noisy(small_prior, in_range):
    task, y = observe(in_range, "denoise_sigma0.1")
    cs = run("csgm", y, task, small_prior, {"iterations": 3, "restarts": 1})
    ia = run("iagan", y, task, small_prior, {"iterations": 8}, upstream=cs)
    assert (ia.diagnostics["iterations"] == 4).all()
    ia = run("iagan", y, task, small_prior, {"iterations": 8, "halve_if_noisy": False}, upstream=cs)
    assert (ia.diagnostics["iterations"] == 8).all()


# ----------------------------------------------------------------------------- batch independence
# (every method, bitwise, at 1 and 2 threads: tests/test_batch_invariance.py)


def test_best_keeper_keeps_best_iterate_and_restart():
    """2 images x 3 restarts; row 4 dies (NaN) after having the best value of image 1."""
    keep = BestKeeper(6, "cpu")
    z = torch.arange(6.0)[:, None].repeat(1, 2)
    x = torch.zeros(6, 1, 1, 1)
    steps = [[5, 4, 6, 9, 1, 3], [2, 7, 1, 8, 0, 2], [3, 3, 3, 7, math.nan, 4]]
    for t, obj in enumerate(steps):
        o = torch.tensor(obj, dtype=torch.float32)
        keep.report(o, o, z + 10 * t, x + t)
    rows, used, diverged = keep.select(2, 3)
    assert rows.tolist() == [2, 5]                 # image 0: restart 2 (1 at t=1); image 1: row 4 is dead
    assert used.tolist() == [3, 2] and diverged.tolist() == [False, False]
    assert keep.obj[rows].tolist() == [1.0, 2.0]
    assert keep.z[2].tolist() == [12.0, 12.0] and keep.x[5].item() == 1.0   # the iterate, not the last
    keep.kill(torch.tensor([False, False, False, True, False, True]))
    assert keep.select(2, 3)[2].tolist() == [False, True]


def test_restart_latents_depend_on_the_image_seed_only():
    a = initial_latents([5, 6], 3, 100)
    b = initial_latents([6], 3, 100)
    torch.testing.assert_close(a[3:], b)
    assert not torch.allclose(a[:3], b)


# ----------------------------------------------------------------------------- NaN handling
class PoisonedG(torch.nn.Module):
    """Wraps G; on given calls, sets given rows of the output to NaN."""

    def __init__(self, G, poison: dict[int, list[int]]):
        super().__init__()
        self.G, self.poison, self.calls = G, poison, 0
        self.nz = G.nz

    def forward(self, z):
        out = self.G(z)
        rows = self.poison.get(self.calls, [])
        self.calls += 1
        if rows:
            out = out.clone()
            out[rows] = float("nan")
        return out


def test_nan_restart_is_dropped_and_all_dead_image_is_flagged(small_prior, in_range):
    task, y = observe(in_range, "inpaint_center32")
    cfg = {"iterations": 12, "restarts": 2}
    clean = run("csgm", y, task, small_prior, cfg)
    one_restart = run("csgm", y, task, small_prior, {**cfg, "restarts": 1})
    # rows are image-major: image 0 -> rows 0, 1; image 1 -> rows 2, 3; image 2 -> rows 4, 5
    bad = Prior(G=PoisonedG(small_prior.G, {5: [1], 3: [2, 3]}), D=None)
    res = run("csgm", y, task, bad, cfg)
    assert res.diagnostics["restarts_used"].tolist() == [1, 0, 2]
    assert res.diagnostics["diverged"].tolist() == [False, True, False]
    assert torch.isfinite(res.x_hat[[0, 2]]).all() and torch.isnan(res.x_hat[1]).all()
    assert np.isnan(res.extras["z"][1]).all()
    # image 0 = its surviving restart 0 alone; image 2 untouched by its batch-mates' NaNs
    torch.testing.assert_close(res.x_hat[0], one_restart.x_hat[0], atol=1e-4, rtol=0)
    torch.testing.assert_close(res.x_hat[2], clean.x_hat[2], atol=1e-4, rtol=0)
    # downstream methods keep the flag instead of producing a result
    bp = run("csgm_bp", y, task, small_prior, {}, upstream=res)
    assert bp.diagnostics["diverged"].tolist() == [False, True, False]
    ia = run("iagan", y, task, small_prior, {"iterations": 2}, upstream=res)
    assert ia.diagnostics["diverged"].tolist() == [False, True, False]
    assert torch.isfinite(ia.x_hat[[0, 2]]).all()


# ----------------------------------------------------------------------------- Yeh et al.
@pytest.mark.parametrize("task_name", ["inpaint_center32", "colorize", "sr4", "denoise_sigma0.1", "quantize5"])
def test_yeh_and_blend_on_every_task(small_prior, in_range, task_name):
    task, y = observe(in_range, task_name)
    yeh = run("yeh", y, task, small_prior, {"iterations": 6, "restarts": 2})
    assert yeh.diagnostics["d_prior_used"].all() and torch.isfinite(yeh.x_hat).all()
    bl = run("yeh_blend", y, task, small_prior, {}, upstream=yeh)
    assert bl.x_hat.shape == yeh.x_hat.shape and torch.isfinite(bl.x_hat).all()
    if task_name == "inpaint_center32":
        m = task.op.mask.bool()
        assert torch.allclose(bl.x_hat[..., m], y[..., m], atol=1e-6)     # observed pixels kept
        assert not torch.allclose(bl.x_hat, yeh.x_hat)
        assert bl.diagnostics["blended"].all()
    elif task_name == "colorize":
        v = bl.x_hat.amax(1, keepdim=True)                                 # HSV value = grey input
        assert torch.allclose(v, y.clamp(0, 1), atol=1e-5)
        assert bl.diagnostics["blended"].all()
    else:
        assert torch.equal(bl.x_hat, yeh.x_hat) and not bl.diagnostics["blended"].any()


def test_yeh_objective_decreases_and_options(small_prior, in_range):
    task, y = observe(in_range, "inpaint_center32")
    cfg = {"restarts": 1, "weighted_mask": False, "lr": 0.1}
    r0 = run("yeh", y, task, small_prior, {**cfg, "iterations": 0})
    r1 = run("yeh", y, task, small_prior, {**cfg, "iterations": 40})
    assert (r1.diagnostics["objective"] < 0.5 * r0.diagnostics["objective"]).all()
    # the official code's optimiser: Nesterov momentum with z clipped to [-1, 1]
    r2 = run("yeh", y, task, small_prior, {"iterations": 10, "restarts": 1, "optimizer": "momentum",
                                            "lr": 1e-3, "z_clip": 1.0, "d_prior": "code"})
    assert np.abs(r2.extras["z"]).max() <= 1.0 + 1e-6
    # no discriminator: the D term is dropped, the method still runs
    r3 = run("yeh", y, task, Prior(G=small_prior.G, D=None), {"iterations": 3, "restarts": 1})
    assert not r3.diagnostics["d_prior_used"].any() and torch.isfinite(r3.x_hat).all()


# ----------------------------------------------------------------------------- blends against oracles
def test_hsv_blend_matches_scikit_image():
    from skimage.color import hsv2rgb, rgb2hsv

    rng = np.random.default_rng(0)
    g = rng.random((2, 3, 16, 16)).astype(np.float32)
    g[0, :, 0, 0] = 0.0                                       # black pixel: hue/saturation undefined
    v = rng.random((2, 1, 16, 16)).astype(np.float32)
    out = blending.hsv_blend(torch.from_numpy(v), torch.from_numpy(g)).numpy()
    for b in range(2):
        hsv = rgb2hsv(g[b].transpose(1, 2, 0))
        hsv[..., 2] = v[b, 0]
        ref = hsv2rgb(hsv).transpose(2, 0, 1)
        np.testing.assert_allclose(out[b], ref, atol=1e-5)


def test_weighted_mask_matches_official_convolution():
    mask = np.ones((64, 64))
    mask[16:48, 16:48] = 0
    mask[:3, :5] = 0                                          # a hole touching the border
    ker = np.ones((15, 15)) / 225.0
    ref = mask * convolve2d(1 - mask, ker, mode="same", boundary="symm")
    out = blending.weighted_mask(torch.from_numpy(mask).float(), 15).numpy()
    np.testing.assert_allclose(out, ref, atol=1e-6)


def poisson_lstsq(y, g, mask):
    """Oracle: minimise sum over 4-neighbour edges touching the hole of
    ((f_p - f_q) - (g_p - g_q))^2 with f = y outside the hole (dense least squares)."""
    H, W = mask.shape
    hole = np.argwhere(mask == 0)
    idx = {tuple(p): k for k, p in enumerate(hole)}
    out = y.copy()
    for c in range(y.shape[0]):
        rows, rhs = [], []
        for (i, j), k in idx.items():
            for di, dj in ((0, 1), (1, 0), (0, -1), (-1, 0)):
                q = (i + di, j + dj)
                if not (0 <= q[0] < H and 0 <= q[1] < W):
                    continue
                if q in idx and (di, dj) in ((0, -1), (-1, 0)):
                    continue                                   # each interior edge once
                row = np.zeros(len(idx))
                row[k] = 1.0
                b = g[c, i, j] - g[c, q[0], q[1]]
                if q in idx:
                    row[idx[q]] = -1.0
                else:
                    b += y[c, q[0], q[1]]
                rows.append(row)
                rhs.append(b)
        sol = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)[0]
        out[c, hole[:, 0], hole[:, 1]] = sol
    return out


def test_poisson_blend_matches_least_squares_oracle():
    rng = np.random.default_rng(1)
    mask = np.ones((12, 12))
    mask[3:8, 4:10] = 0
    mask[0:2, 0:3] = 0                                        # a second hole on the image border
    y = rng.random((3, 12, 12)) * 0.5 + 0.25
    g = rng.random((3, 12, 12)) * 0.5 + 0.25
    ref = poisson_lstsq(y, g, mask)
    out = blending.poisson_blend(torch.from_numpy(y * mask)[None].float(), torch.from_numpy(g)[None].float(),
                                 torch.from_numpy(mask).float(), clip=False)[0].numpy()
    np.testing.assert_allclose(out, ref, atol=1e-5)


def test_poisson_blend_properties():
    rng = np.random.default_rng(2)
    m = torch.ones(32, 32)
    m[8:24, 8:24] = 0
    x = torch.from_numpy(rng.random((2, 3, 32, 32))).float() * 0.6 + 0.2
    # g = x reproduces x; a constant colour shift of g is removed (gradients only)
    assert torch.allclose(blending.poisson_blend(x * m, x, m), x, atol=1e-5)
    assert torch.allclose(blending.poisson_blend(x * m, x + 0.1, m), x, atol=1e-5)


def test_yeh_lambda0_is_yeh_without_the_prior_term_from_yehs_start():
    """The ablation row: yeh_lambda0 = yeh with lambda = 0, bitwise, and it takes
    yeh's per-image seeds in the workflow (so the paired difference is the prior
    term's effect, not another initialisation); a nonzero lambda is refused."""
    from ganrestore.methods import get_method

    torch.manual_seed(3)
    prior = Prior(G=calibrated_generator(), D=Discriminator(ndf=8).eval())
    task = make_task("sr4", 64)
    with torch.no_grad():
        x = to_unit(prior.G(torch.randn(2, 100))).flip(-1)
    y = corrupt(x, task, ["a", "b"], 0)
    cfg = {"iterations": 8, "restarts": 1}
    ab = run_method("yeh_lambda0", y, task.op, prior, cfg, [5, 6], task=task)
    ref = run_method("yeh", y, task.op, prior, dict(cfg, **{"lambda": 0.0}), [5, 6], task=task)
    full = run_method("yeh", y, task.op, prior, cfg, [5, 6], task=task)
    assert torch.equal(ab.x_hat, ref.x_hat)
    assert not torch.equal(ab.x_hat, full.x_hat)          # the prior term does move the search
    assert not ab.diagnostics["d_prior_used"].any() and full.diagnostics["d_prior_used"].all()
    assert get_method("yeh_lambda0").seed_name == "yeh"
    with pytest.raises(ValueError, match="lambda = 0"):
        run_method("yeh_lambda0", y, task.op, prior, dict(cfg, **{"lambda": 0.1}), [5, 6], task=task)
