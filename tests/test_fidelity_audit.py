"""The fidelity audit (issue 25): settings read against the official codes.

Oracles: objectives computed directly as the official code writes them (csgm's
``src/celebA_estimators.py``), the official scripts' argparse defaults
(moodoki/semantic_image_inpainting), independent re-implementations of the
operators' alternatives (scipy.ndimage for the blur boundaries, numpy FFTs for
the Fourier readings).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganrestore.methods.gan import csgm_z_prior_weight, measurements_per_image
from ganrestore.priors import to_unit
from ganrestore.tasks import make_task


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# -- item 6: csgm's "+Reg" weight -------------------------------------------------------

@pytest.mark.parametrize("task_name", ["cs_gaussian_0.1", "sr4", "inpaint_center32"])
def test_csgm_z_prior_conversion_matches_csgm_objective(task_name):
    """csgm's objective, written as its code does (mean over the m measurements of
    the squared residual of [-1, 1] images, + w ||z||^2), is (4/m) times ours with
    the converted weight w m / 4, for any z and image: the same minimisers."""
    from test_gan_methods import calibrated_generator

    G = calibrated_generator(ngf=8)
    task = make_task(task_name, 64, seed=3)
    op = task.op
    g = torch.Generator().manual_seed(0)
    x_true = torch.rand(2, 3, 64, 64, generator=g)
    y = op.A(x_true)
    z = torch.randn(2, 100, generator=g)
    w = 0.001
    with torch.no_grad():
        x_gan = G(z)                                            # [-1, 1]
        # csgm: A acts on [-1, 1] images, y too (y' = A(2 x - 1)); measurements only
        y_pm = op.A(2 * x_true - 1)
        r_pm = op.A(x_gan) - y_pm
        mask = None if op.is_identity else op.pixel_mask()
        if mask is not None:
            r_pm = r_pm[:, :, mask > 0]                          # the observed pixels are the measurements
        r_pm = r_pm.flatten(1)
        m = r_pm.shape[1]
        csgm = (r_pm ** 2).mean(1) + w * (z ** 2).sum(1)
        # ours: sum in [0, 1] units + the converted weight
        assert measurements_per_image(op, y) == m
        w_ours = csgm_z_prior_weight(w, "csgm", measurements_per_image(op, y))
        ours = (op.A(to_unit(x_gan)) - y).flatten(1).pow(2).sum(1) + w_ours * (z ** 2).sum(1)
    np.testing.assert_allclose((4.0 / m) * ours.numpy(), csgm.numpy(), rtol=1e-4)
    assert abs(w_ours - w * m / 4) < 1e-12
    assert csgm_z_prior_weight(w, "ours", m) == w
    with pytest.raises(ValueError, match="z_prior_units"):
        csgm_z_prior_weight(w, "mean", m)


# -- item 4: Yeh's two official inpainting profiles -------------------------------------

#: the argparse defaults of moodoki/semantic_image_inpainting (commit 83bcb87), as printed
#: by ``grep add_argument`` on each script: (lr, lambda_p, nIter); runall.sh passes
#: --nIter 1000 to the four scripts it runs and runs no inpainting.
OFFICIAL_SCRIPTS = {
    "src/inpaint_test.py": (0.01, 0.1, 1000),
    "src/inpaint.py": (0.0003, 0.2, 3000),
    "src/colorize.py": (0.01, 0.1, 1000),
    "src/superres.py": (0.0001, 0.01, 1000),
    "src/denoising.py": (0.0001, 0.03, 1000),
    "src/quantize.py": (0.0001, 0.001, 1000),
}


@pytest.mark.parametrize("profile", ["official", "official_inpaint_py"])
def test_yeh_profiles_cite_the_script_whose_defaults_they_use(profile):
    from ganrestore.official import YEH_PROFILES

    table, sources = YEH_PROFILES[profile]
    assert set(table) == set(sources) == {"inpaint", "colorize", "sr", "denoise", "quantize"}
    for fam, src in sources.items():
        lr, lam_p, n = OFFICIAL_SCRIPTS[src]
        s = table[fam]
        assert s["lr"] == pytest.approx(lr) and s["lambda"] == pytest.approx(lam_p / 64), (fam, src)
        assert s["iterations"] == n and s["optimizer"] == "momentum" and s["momentum"] == 0.9
    assert sources["inpaint"] == {"official": "src/inpaint_test.py", "official_inpaint_py": "src/inpaint.py"}[profile]


def test_yeh_profile_of_names_what_ran():
    from ganrestore.configcheck import expand_profiles
    from ganrestore.official import yeh_profile_of
    from ganrestore.pipeline import method_config

    cfg = {"tasks": ["inpaint_center32_official", "sr4_official", "sr4"],
           "method_params": {"yeh": {"iterations": 150, "per_task": {
               "inpaint_center32_official": {"profile": "official_inpaint_py", "iterations": 100},
               "sr4_official": {"profile": "official"}}}}}
    expand_profiles(cfg)
    mp = cfg["method_params"]
    inp = method_config(mp, "yeh", "inpaint_center32_official")
    assert inp["lr"] == pytest.approx(3e-4) and inp["lambda"] == pytest.approx(0.2 / 64)
    got = yeh_profile_of(inp, "inpaint")
    assert got == {"profile": "official_inpaint_py", "source": "src/inpaint.py", "differs": {"iterations": [3000, 100]}}
    assert yeh_profile_of(method_config(mp, "yeh", "sr4_official"), "sr")["source"] == "src/superres.py"
    assert yeh_profile_of(method_config(mp, "yeh", "sr4"), "sr") is None          # the slides' Adam defaults
    off = dict(inp, lr=0.01, **{"lambda": 0.1 / 64})
    assert yeh_profile_of(off, "inpaint")["profile"] == "official"


# -- item 5: unstated choices as options ------------------------------------------------

def test_task_options_default_to_todays_tasks_and_are_recorded():
    from ganrestore.tasks import TASK_OPTIONS

    assert TASK_OPTIONS == {"blur_boundary": "circular", "misaligned_shift": None}
    for name in ("deblur_uniform9_noise0.0392", "sr4_misaligned", "cs_fourier_0.3", "sr4"):
        assert make_task(name, 64, 1).spec() == make_task(name, 64, 1, {}).spec() == \
            make_task(name, 64, 1, dict(TASK_OPTIONS)).spec()
    assert make_task("sr4_misaligned", 128).extra["shift"] == 8 and make_task("sr4_misaligned", 64).extra["shift"] == 4
    t = make_task("sr4_misaligned", 64, options={"misaligned_shift": 2})
    assert t.spec()["shift"] == 2
    x = torch.rand(1, 3, 64, 64)
    assert torch.equal(t.clean(x)[..., 2:, :], x[..., :-2, :])
    b = make_task("deblur_uniform9", 64, options={"blur_boundary": "zero"})
    assert b.spec()["operator"]["boundary"] == "zero"
    # tasks that do not read an option ignore it
    assert make_task("sr4", 64, options={"blur_boundary": "reflect"}).spec() == make_task("sr4", 64).spec()
    with pytest.raises(ValueError, match="task_options.blur_boundary"):
        make_task("deblur_uniform9", 64, options={"blur_boundary": "mirror"})
    with pytest.raises(ValueError, match="task_options.misaligned_shift"):
        make_task("sr4_misaligned", 64, options={"misaligned_shift": 64})
    with pytest.raises(ValueError, match="task_options.shift"):
        make_task("sr4", 64, options={"shift": 3})


def test_stages_build_the_task_with_the_options(tmp_path):
    """corrupt -> restore (input) -> evaluate with a misaligned shift and a blur boundary:
    the artifacts record them, the observation is the option's, and evaluation
    compares with the option's ground truth (the 'input' of a deblur task scores
    the PSNR of the blurred image computed here directly)."""
    from scipy.ndimage import uniform_filter

    from ganrestore import io, pipeline
    from ganrestore.metrics import psnr

    g = np.random.default_rng(0)
    imgs = (g.random((2, 64, 64, 3)) * 255).astype(np.uint8)
    split = tmp_path / "test.npz"
    pipeline.write_split(split, imgs, ["a", "b"], {})
    opts = {"blur_boundary": "reflect", "misaligned_shift": 3}
    for task in ("deblur_uniform9", "sr4_misaligned"):
        c, r = tmp_path / f"{task}_c.npz", tmp_path / f"{task}_r.npz"
        pipeline.run_corrupt(split, task, 64, 0, c, task_options=opts)
        meta = io.load_artifact(c)
        pipeline.run_restore(c, task, "input", {}, 64, 0, 0, 2, r, task_options=opts)
        agg = pipeline.run_evaluate(split, [r], task, "input", tmp_path / f"{task}.csv", tmp_path / f"{task}.json",
                                    task_options=opts, ssim_window="uniform7")
        x = torch.from_numpy(imgs).permute(0, 3, 1, 2).double() / 255
        if task.startswith("deblur"):
            blurred = torch.from_numpy(uniform_filter(x.numpy(), size=(1, 1, 9, 9), mode="reflect"))
            np.testing.assert_allclose(meta["y"], blurred.numpy(), atol=1e-5)
            want = psnr(blurred.clamp(0, 1), x)
        else:
            truth = torch.cat([x[..., :1, :].expand(-1, -1, 3, -1), x[..., :-3, :]], dim=-2)
            want = psnr(make_task(task, 64).op.A_input(torch.from_numpy(meta["y"])).clamp(0, 1).double(), truth)
        assert agg["psnr_mean"] == pytest.approx(float(np.mean(want)), abs=1e-3)
        assert agg["ssim_window"] == "uniform7"


def test_ssim_windows():
    from skimage.metrics import structural_similarity

    from ganrestore.metrics import SSIM_WINDOWS, ssim

    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 32, 32, generator=g)
    xh = (x + 0.1 * torch.randn(2, 3, 32, 32, generator=g)).clamp(0, 1)
    a, b = xh.numpy().transpose(0, 2, 3, 1).astype(np.float64), x.numpy().transpose(0, 2, 3, 1).astype(np.float64)
    default = [structural_similarity(bi, ai, channel_axis=-1, data_range=1.0) for ai, bi in zip(a, b)]
    np.testing.assert_allclose(ssim(xh, x, window="uniform7"), default, rtol=1e-12)       # scikit-image's default
    wang = [structural_similarity(bi, ai, channel_axis=-1, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                  use_sample_covariance=False) for ai, bi in zip(a, b)]
    np.testing.assert_allclose(ssim(xh, x), wang, rtol=1e-12)
    assert set(SSIM_WINDOWS) == {"gaussian11", "uniform7"}
    with pytest.raises(ValueError, match="ssim window"):
        ssim(xh, x, window="box8")
