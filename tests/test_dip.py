"""Deep Image Prior (``dip``): the network, the settings table, the fit, batching.

Oracles: the image itself (A = I, no noise: DIP must fit it), the noisy input
(a smoothing schedule must beat it), the hole's true content (inpainting must
beat the zeros of the input), the parameter counts of the official ``skip``
networks (counted from DmitryUlyanov/deep-image-prior ``models/skip.py`` at
commit 042e0d4, whose forward pass this module reproduced bitwise in train
mode when it was written), and the same image restored alone.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ganrestore.methods.dip as dip                  # registers "dip" (the registry also imports it by name)
from ganrestore.methods import get_method, run_method
from ganrestore.metrics import psnr
from ganrestore.operators import Identity
from ganrestore.tasks import corrupt, make_task

SEEDS = [11, 22, 33]
IDS = ["a", "b", "c"]
# 32 px images: 4 scales (the official 5 need >= 64 px), a narrow network: cheap on a CPU
SMALL = {"num_scales": 4, "skip_n33d": 16, "skip_n33u": 16}


pytestmark = pytest.mark.usefixtures("one_thread")


def photo(size: int) -> torch.Tensor:
    """The astronaut's face from scikit-image, (1, 3, size, size) in [0, 1]."""
    from skimage import data
    from skimage.transform import resize
    img = resize(data.astronaut()[0:256, 96:352], (size, size), anti_aliasing=True)
    return torch.from_numpy(img.transpose(2, 0, 1)).float()[None]


def smooth(size: int) -> torch.Tensor:
    """A smooth colour image: low-frequency sinusoids, (1, 3, size, size) in [0.1, 0.9]."""
    t = torch.linspace(0, 1, size)
    yy, xx = torch.meshgrid(t, t, indexing="ij")
    ch = [0.5 + 0.4 * torch.sin(2.1 * xx + 1.3 * yy + ph) * torch.cos(1.7 * yy - ph) for ph in (0.0, 1.0, 2.0)]
    return torch.stack(ch)[None]


def test_is_registered():
    info = get_method("dip")
    assert info.fn is dip.restore_dip and not info.needs_prior and info.gpu and info.upstream is None


# ----------------------------------------------------------------------------- network
def test_network_has_the_official_skip_layout():
    """Parameter counts of the official networks (models/skip.py, input depth 32):
    SR / denoising get_net(32, 'skip', skip_n33d=128, skip_n33u=128, skip_n11=4, num_scales=5)
    and inpainting.ipynb's kate net (128 skip channels)."""
    assert dip.SkipNet(32, [128] * 5, [128] * 5, [4] * 5).n_params() == 2_217_831
    assert dip.SkipNet(32, [128] * 5, [128] * 5, [128] * 5, "nearest").n_params() == 3_002_627
    assert dip.SkipNet(32, [16] * 5, [16] * 5, [128] * 5, "nearest").n_params() == 146_963
    net = dip.SkipNet(32, [16] * 5, [16] * 5, [4] * 5)
    names = [s[0] for s in net.specs]
    # skip()'s registration order: the skip branch, the way down, the deeper level, then the way up
    assert names[:6] == ["l0.skip.w", "l0.skip.b", "l0.skip_bn.g", "l0.skip_bn.h", "l0.down1.w", "l0.down1.b"]
    assert names.index("l1.skip.w") < names.index("l0.cat_bn.g") and names[-2:] == ["out.w", "out.b"]
    p = net.init_params([5], "cpu")
    z = dip.net_inputs([5], 32, 64, 64, 0.1)
    with torch.no_grad():
        out = net(p, z)
    assert out.shape == (1, 3, 64, 64) and 0 < out.min() and out.max() < 1           # the sigmoid
    assert 0 <= z.min() and z.max() < 0.1                                            # U[0, 1) x 1/10


def test_image_size_must_fit_the_depth():
    net = dip.SkipNet(32, [16] * 5, [16] * 5, [4] * 5)
    net.check_size(64, 64)
    with pytest.raises(ValueError, match="lower num_scales"):
        net.check_size(32, 32)                       # the deepest map would be 1 px
    with pytest.raises(ValueError, match="lower num_scales"):
        run_method("dip", torch.rand(1, 3, 32, 32), Identity(32), None, {"iterations": 1}, [1])
    check = get_method("dip").check
    check({"profile": "demo"}, make_task("sr4", 64), {"image_size": 64})
    with pytest.raises(ValueError, match="lower num_scales"):
        check({}, make_task("sr4", 32), {"image_size": 32})
    with pytest.raises(ValueError, match="unknown config keys"):
        check({"iteratoins": 5}, make_task("sr4", 64), {"image_size": 64})


# ----------------------------------------------------------------------------- settings table
@pytest.mark.parametrize("task_name, row, steps, reg, skip, up, ew, divided", [
    ("sr4", "sr_x4", 2000, 0.03, 4, "bilinear", 0.0, False),
    ("sr8", "sr_x8", 4000, 0.05, 4, "bilinear", 0.0, False),
    ("sr4_noise0.05", "sr_x4", 500, 0.03, 4, "bilinear", 0.0, True),       # IAGAN: / 4 when noisy
    ("sr8_noise0.05", "sr_x8", 1000, 0.05, 4, "bilinear", 0.0, True),
    ("inpaint_center32", "inpaint", 6001, 0.03, 128, "nearest", 0.0, False),
    ("denoise_sigma0.1", "denoise", 3000, 1 / 30, 4, "bilinear", 0.99, False),  # already the noisy notebook
    ("denoise_sigma0.2", "denoise", 3000, 1 / 20, 4, "bilinear", 0.99, False),
    ("quantize5", "denoise", 3000, 1 / 30, 4, "bilinear", 0.99, False),
    ("colorize", "default", 2000, 0.03, 4, "bilinear", 0.0, False),
])
def test_settings_rows(task_name, row, steps, reg, skip, up, ew, divided):
    p = dip.settings({}, make_task(task_name, 64))
    assert (p["row"], p["steps"], p["skip_n11"], p["upsample_mode"], p["noisy_divided"]) == (row, steps, skip, up, divided)
    assert p["reg_noise_std"] == pytest.approx(reg) and p["exp_weight"] == ew
    assert p["lr"] == 0.01 and p["input_depth"] == 32 and p["num_scales"] == 5
    assert (p["skip_n33d"], p["skip_n33u"]) == (128, 128)
    assert p["backtrack"] == (row == "denoise")


def test_config_overrides_profile_and_refusals():
    task = make_task("denoise_sigma0.1", 64)
    demo = dip.settings({"profile": "demo"}, task)
    assert (demo["steps"], demo["skip_n33d"], demo["exp_weight"]) == (100, 16, 0.9)
    assert dip.settings({"profile": "demo"}, make_task("sr4", 64))["exp_weight"] == 0.0   # only the denoise row
    p = dip.settings({"profile": "demo", "iterations": 8, "exp_weight": 0.5, "reg_noise_std": 0.0}, task)
    assert (p["steps"], p["exp_weight"], p["reg_noise_std"]) == (8, 0.5, 0.0)
    assert dip.settings({"iterations": 8}, make_task("sr4_noise0.1", 64))["steps"] == 2
    assert dip.settings({"iterations": 8, "noisy_iteration_divisor": 1}, make_task("sr4_noise0.1", 64))["steps"] == 8
    assert dip.settings({}, None)["row"] == "default"
    with pytest.raises(ValueError, match="unknown config keys"):
        dip.settings({"rows": {}}, task)                       # profile-only key
    with pytest.raises(ValueError, match="unknown profile"):
        dip.settings({"profile": "paper"}, task)
    with pytest.raises(ValueError, match="exp_weight"):
        dip.settings({"exp_weight": 1.0}, task)
    with pytest.raises(ValueError, match="upsample_mode"):
        dip.settings({"upsample_mode": "bicubic"}, task)
    with pytest.raises(ValueError, match="skip_n33d"):
        dip.build_net(dip.settings({"skip_n33d": [16, 16]}, task))


def test_schema_defaults_and_the_demo_config_agree_with_the_library():
    """config/schema.yaml's dip defaults are PAPER's; config/config.yaml's dip block
    resolves, task by task, to the library's 'demo' profile."""
    from pathlib import Path

    import yaml

    from ganrestore.pipeline import method_config

    root = Path(__file__).resolve().parents[1]
    schema = yaml.safe_load((root / "config" / "schema.yaml").read_text())
    props = schema["properties"]["method_params"]["properties"]["dip"]["properties"]
    defaults = {k: v["default"] for k, v in props.items() if k != "per_task"}
    assert defaults == dip.PAPER
    config = yaml.safe_load((root / "config" / "config.yaml").read_text())
    assert "dip" in config["methods"]
    # the tasks dip runs on (method_tasks restricts it; the official tasks are not among them)
    for t in (config.get("method_tasks") or {}).get("dip", config["tasks"]):
        task = make_task(t, config["image_size"])
        cfg = {**defaults, **method_config(config["method_params"], "dip", t)}
        want = dip.settings({"profile": "demo"}, task)
        want.pop("profile")
        assert dip.settings(cfg, task) == want, t


# ----------------------------------------------------------------------------- the fit
def test_fits_an_image_through_the_identity():
    """A = I, no noise: DIP (Adam lr 0.01, no input perturbation) fits a 32x32
    photograph to >= 30 dB - the optimiser and the network work."""
    x = photo(32)
    cfg = {"num_scales": 4, "skip_n33d": 32, "skip_n33u": 32, "iterations": 250, "reg_noise_std": 0.0}
    res = run_method("dip", x, Identity(32), None, cfg, [5])
    p = psnr(res.x_hat, x).item()
    assert p >= 30, p
    d = res.diagnostics
    assert d["iterations"][0] == 250 and not d["diverged"][0] and d["failure"][0] == ""
    assert d["objective"][0] < 1e-2 * d["start_objective"][0]
    np.testing.assert_allclose(d["objective"][0], ((res.x_hat - x) ** 2).sum().item(), rtol=1e-4)
    tr = res.extras["trace"][0]
    assert res.extras["trace_step"][0].tolist() == list(range(0, 251, 10))
    assert tr[-1] == pytest.approx(d["objective"][0]) and tr[-1] < tr[0]


def test_denoising_schedule_beats_the_noisy_input():
    """sigma = 0.1 on a smooth 64 px image: the image kept by the configured
    schedule (the demo profile: 100 steps of the denoising row, averaged outputs
    with exp_weight 0.9, backtracking) has a higher PSNR than the noisy input."""
    x = smooth(64)
    task = make_task("denoise_sigma0.1", 64)
    y = corrupt(x, task, ["s"], global_seed=0)
    res = run_method("dip", y, task.op, None, {"profile": "demo"}, [3], task=task)
    p_in, p_out = psnr(y.clamp(0, 1), x).item(), psnr(res.x_hat, x).item()
    assert p_out > p_in + 3, (p_in, p_out)
    assert res.diagnostics["iterations"][0] == 100 and not res.diagnostics["noisy_divided"][0]
    # the averaged output is not the network's last iterate: it is smoother than y, not fitted to it
    assert res.diagnostics["objective"][0] > 0.5 * task.sigma ** 2 * x.numel()


def test_inpainting_fills_the_hole():
    """Centre hole through the mask operator: the hole's mean absolute error is
    below the input's (zeros there), and the observed pixels are fitted."""
    x = photo(32)
    task = make_task("inpaint_center12", 32)
    y = corrupt(x, task, ["p"], global_seed=0)
    res = run_method("dip", y, task.op, None, {**SMALL, "iterations": 150}, [9], task=task)
    hole = task.op.mask == 0
    err_in = (task.op.A_input(y) - x).abs()[..., hole].mean().item()
    err_out = (res.x_hat - x).abs()[..., hole].mean().item()
    assert err_out < 0.5 * err_in, (err_in, err_out)
    assert psnr(task.op.A(res.x_hat), y).item() > 25
    assert dip.settings({}, task)["row"] == "inpaint"


@pytest.mark.parametrize("task_name", ["inpaint_center32", "colorize", "sr4", "sr4_noise0.1", "denoise_sigma0.1",
                                       "quantize5"])
def test_runs_on_every_task_family(task_name):
    task = make_task(task_name, 64)
    x = smooth(64)
    y = corrupt(x, task, ["s"], global_seed=0)
    res = run_method("dip", y, task.op, None, {"skip_n33d": 8, "skip_n33u": 8, "skip_n11": 2, "iterations": 8},
                     [4], task=task)
    assert res.x_hat.shape == (1, 3, 64, 64) and torch.isfinite(res.x_hat).all()
    assert 0 <= res.x_hat.min() and res.x_hat.max() <= 1
    assert res.diagnostics["iterations"][0] == (2 if task_name == "sr4_noise0.1" else 8)
    assert res.diagnostics["noisy_divided"][0] == (task_name == "sr4_noise0.1")
    assert np.isfinite(res.diagnostics["objective"][0])


def test_a_non_finite_observation_is_flagged_not_returned():
    task = make_task("sr4", 32)
    y = corrupt(smooth(32).repeat(2, 1, 1, 1), task, ["u", "v"], global_seed=0)
    y[1, 0, 0, 0] = float("nan")
    res = run_method("dip", y, task.op, None, {**SMALL, "iterations": 3}, [1, 2], task=task)
    assert res.diagnostics["diverged"].tolist() == [False, True]
    assert torch.isfinite(res.x_hat[0]).all() and torch.isnan(res.x_hat[1]).all()


def test_backtracking_restores_the_checkpoint():
    """denoising.ipynb's fall-back: at a step i with i % 100 != 0 whose output
    lost > 5 dB against the observation since the last checkpoint, the image's
    weights go back to that checkpoint (Adam then steps with the gradient
    already computed, as in the notebook)."""
    class Toy:                       # x = sigmoid(a); at the listed calls image 1's output jumps by 0.4
        def __init__(self, spikes):
            self.calls, self.spikes = 0, spikes

        def __call__(self, params, z):
            x = torch.sigmoid(params["a"]).view(-1, 1, 1, 1).expand(-1, 3, 4, 4)
            if self.calls in self.spikes:
                x = x + torch.tensor([0.0, 0.4]).view(-1, 1, 1, 1)
            self.calls += 1
            return x

    y = torch.full((2, 3, 4, 4), 0.5)

    def run(backtrack, spikes):
        params = {"a": torch.tensor([0.3, 0.3], requires_grad=True)}
        r = dip.fit(Toy(spikes), params, torch.zeros(2, 1, 4, 4), y, Identity(4), steps=4, lr=0.01,
                    reg_noise_std=0.0, exp_weight=0.0, backtrack=backtrack, noise_gens=[None, None])
        return r, params["a"].detach()

    r, a = run(True, {2})
    assert r["backtracks"].tolist() == [0, 1]
    r_off, a_off = run(False, {2})
    assert r_off["backtracks"].tolist() == [0, 0]
    assert a[0] == a_off[0] and a[1] != a_off[1]                  # only the image that lost > 5 dB
    assert run(True, {0})[0]["backtracks"].tolist() == [0, 0]     # step 0 (i % 100 == 0) is not checked


# ----------------------------------------------------------------------------- seeding and batching
def test_seeding_follows_the_image_seed_not_the_position():
    net = dip.SkipNet(32, [8] * 4, [8] * 4, [2] * 4)
    both = net.init_params([7, 8], "cpu")
    alone = net.init_params([8], "cpu")
    for k in both:
        assert torch.equal(both[k][1], alone[k][0])
    assert not torch.equal(both["l0.down1.w"][0], both["l0.down1.w"][1])
    assert torch.equal(dip.net_inputs([7, 8], 32, 32, 32, 0.1)[1], dip.net_inputs([8], 32, 32, 32, 0.1)[0])
    task = make_task("sr4", 32)
    y = corrupt(smooth(32), task, ["s"], global_seed=0)
    cfg = {**SMALL, "iterations": 5}
    r1, r2, r3 = (run_method("dip", y, task.op, None, cfg, [s], task=task) for s in (1, 1, 2))
    assert torch.equal(r1.x_hat, r2.x_hat) and not torch.equal(r1.x_hat, r3.x_hat)


@pytest.fixture(scope="module")
def three():
    torch.manual_seed(0)
    x = torch.cat([photo(32), smooth(32), photo(32).flip(-1)])
    task = make_task("denoise_sigma0.1", 32)
    return task, corrupt(x, task, IDS, global_seed=0)


def test_run_method_one_image_per_call_equals_alone_bitwise(three):
    """The one-image path (microbatch = 1): bitwise the image alone."""
    task, y = three
    cfg = {**SMALL, "iterations": 12}
    full = run_method("dip", y, task.op, None, cfg, SEEDS, task=task, microbatch=1)
    for i in range(3):
        alone = run_method("dip", y[i:i + 1].clone(), task.op, None, cfg, SEEDS[i:i + 1], task=task,
                           microbatch=1)
        assert torch.equal(full.x_hat[i], alone.x_hat[0])
        for k, v in full.diagnostics.items():
            if not k.endswith("seconds"):
                np.testing.assert_array_equal(v[i], alone.diagnostics[k][0], err_msg=k)
        for k, v in full.extras.items():
            np.testing.assert_array_equal(v[i], alone.extras[k][0], err_msg=k)


def test_batched_path_matches_per_image_where_floats_allow(three):
    """The batched path (B networks as grouped convolutions, microbatch > 1).

    * The network at its initial weights, its loss and every gradient that is
      not rounding noise agree with the per-image path within 1e-4 (relative
      to the gradient's size); zero steps give the same image within 1e-4.
    * A row does not see its batch-mates: changing another image's data and
      seed leaves it bitwise unchanged.
    * After Adam steps the two paths differ by far more than 1e-4, and this is
      not a defect of the batching: at the random start many weights have a
      gradient that is exactly zero in real arithmetic (conv biases before a
      batch norm; batch-norm scales whose channel a later batch norm
      renormalises through the positively homogeneous LeakyReLU) and in floats
      is rounding noise of 1e-10..1e-8, and Adam's first step lr g / (|g| + eps)
      is then up to 0.4 lr with the sign of that noise.  The grouped kernels
      round differently from the single-image ones, so the first steps differ
      and the trajectories part (0.04 after one step, 0.2 after 60 measured
      on 32 px images) - as the official code's runs do between cuDNN kernels.
      Hence the workflow fixes the block shape and each image's position in it
      (index-aligned blocks, tests/test_batch_invariance.py) instead of relying
      on the batched and per-image paths to agree.
    """
    task, y = three
    cfg0 = {**SMALL, "iterations": 0}
    batched = run_method("dip", y, task.op, None, cfg0, SEEDS, task=task, microbatch=3)
    single = run_method("dip", y, task.op, None, cfg0, SEEDS, task=task, microbatch=1)
    torch.testing.assert_close(batched.x_hat, single.x_hat, rtol=0, atol=1e-4)

    net = dip.build_net(dip.settings(SMALL, task))
    pb = net.init_params(SEEDS, "cpu")
    z = dip.net_inputs(SEEDS, 32, 32, 32, 0.1)
    loss_b = ((net(pb, z) - y) ** 2).flatten(1).mean(1)
    grads_b = torch.autograd.grad(loss_b.sum(), list(pb.values()))
    for i, s in enumerate(SEEDS):
        p1 = net.init_params([s], "cpu")
        loss_1 = ((net(p1, z[i:i + 1]) - y[i:i + 1]) ** 2).mean()
        torch.testing.assert_close(loss_b[i], loss_1, rtol=1e-4, atol=0)
        grads_1 = torch.autograd.grad(loss_1, list(p1.values()))
        for name, gb, g1 in zip(pb, grads_b, grads_1):
            scale = g1.abs().max().item()
            if scale > 1e-6:                                  # not rounding noise
                torch.testing.assert_close(gb[i], g1[0], rtol=0, atol=1e-4 * scale, msg=name)

    cfg = {**SMALL, "iterations": 10}
    a = run_method("dip", y, task.op, None, cfg, SEEDS, task=task, microbatch=3)
    y2 = y.clone()
    y2[1] = torch.rand_like(y2[1])
    b = run_method("dip", y2, task.op, None, cfg, [SEEDS[0], 99, SEEDS[2]], task=task, microbatch=3)
    assert torch.equal(a.x_hat[0], b.x_hat[0]) and torch.equal(a.x_hat[2], b.x_hat[2])
    assert not torch.equal(a.x_hat[1], b.x_hat[1])
