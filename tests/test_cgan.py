"""The conditional GAN of seed 004 (ganrestore.cgan, method cgan): architecture,
training, checkpoints, the method and the cross-corruption table."""

from __future__ import annotations

import copy
import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from ganrestore.cgan.checkpoint import load_cgan, save_cgan
from ganrestore.cgan.models import (CGANGenerator, FusedDiscriminator, condition_map, crop, generator_input,
                                    local_crop_boxes, receptive_field)
from ganrestore.cgan.train import (CGANTrainConfig, compose, d_loss, g_loss, make_batch, train_cgan,
                                   train_step)
from ganrestore.methods import run_method
from ganrestore.tasks import corrupt, make_task

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = ROOT / "ganrestore/cgan/checkpoints"
YEH_TASKS = ["inpaint_center32", "colorize", "sr4", "denoise_sigma0.1", "quantize5"]
TINY = dict(width=8, dilated_width=8, ndf=8, d_features=16)


# ----------------------------------------------------------------------------- architecture
def _hole_box(size=64, hole=32):
    a = (size - hole) // 2
    return a, a + hole


@pytest.mark.parametrize("arch", [dict(width=16, dilated_width=64), dict(width=64, dilated_width=1024)],
                         ids=["demo", "paper"])
def test_receptive_field_of_a_hole_pixel_covers_the_hole_and_its_context(arch):
    """Computed from the gradient of one output pixel w.r.t. the input: the centre
    pixel of the 32x32 hole (and its corner pixels) depend on every pixel of the
    hole *and* on the observed pixels around it (8 px of context on each side),
    so the generator can complete the hole from its surroundings."""
    torch.manual_seed(0)
    G = CGANGenerator(**arch)
    a, b = _hole_box()
    for pixel in [(32, 32), (a, a), (b - 1, b - 1), (a, b - 1)]:
        rf = receptive_field(G, 64, pixel=pixel)
        assert rf[a - 8:b + 8, a - 8:b + 8].all(), (pixel, rf.sum().item())
    assert receptive_field(G, 64).all()          # at 64 px: the whole image


def test_receptive_field_check_can_fail():
    """The same computation on three 3x3 convolutions finds a 7x7 field, far short of the hole."""
    net = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(4, 4, 3, padding=1),
                        nn.LeakyReLU(0.2), nn.Conv2d(4, 3, 3, padding=1))
    rf = receptive_field(net, 64)
    assert rf.sum().item() == 49
    a, b = _hole_box()
    assert not rf[a:b, a:b].all()


def test_generator_keeps_the_resolution_and_the_strides_read_as_three_halvings():
    G = CGANGenerator(width=8, dilated_width=16)
    shapes = {}
    for name in ("rb1", "rb2", "rb3", "rb4", "rb5", "rb6", "deconv"):
        getattr(G, name).register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, o.shape[-1]))
    assert G(torch.zeros(1, 4, 64, 64)).shape == (1, 3, 64, 64)
    assert shapes == {"rb1": 32, "rb2": 16, "rb3": 8, "rb4": 8, "rb5": 16, "rb6": 32, "deconv": 64}
    with pytest.raises(ValueError, match="multiples of 8"):
        G(torch.zeros(1, 4, 60, 60))


def test_condition_channel_and_generator_input():
    x = torch.rand(2, 3, 64, 64)
    inp_task = make_task("inpaint_center32", 64)
    y = corrupt(x, inp_task, ["a", "b"], 0)
    inp, c = generator_input(y, inp_task.op, 64)
    a, b = _hole_box()
    assert inp.shape == (2, 4, 64, 64)
    assert c[:, 0, a:b, a:b].eq(1).all() and c.sum() == 2 * 32 * 32        # 1 = pixel to complete
    assert inp[:, :3, a:b, a:b].eq(0).all()                                # hole blanked (GAN range 0)
    torch.testing.assert_close(inp[:, :3, :a], x[:, :, :a] * 2 - 1)
    for name in ("colorize", "sr4", "denoise_sigma0.1", "quantize5"):
        t = make_task(name, 64)
        assert condition_map(t.op, 2, 64).eq(0).all(), name                 # nothing missing: observed
        inp, _ = generator_input(corrupt(x, t, ["a", "b"], 0), t.op, 64)
        assert inp.shape == (2, 4, 64, 64)


def test_compose_keeps_exactly_observed_pixels_only():
    x = torch.rand(1, 3, 64, 64)
    out = torch.full_like(x, 0.5)
    t = make_task("inpaint_center32", 64)
    y = corrupt(x, t, ["a"], 0)
    xh = compose(out, y, t)
    a, b = _hole_box()
    assert torch.equal(xh[..., :a, :], x[..., :a, :]) and xh[..., a:b, a:b].eq(0.5).all()
    noisy = make_task("inpaint_center32_noise0.1", 64)
    assert torch.equal(compose(out, corrupt(x, noisy, ["a"], 0), noisy), out)
    den = make_task("denoise_sigma0.1", 64)
    assert torch.equal(compose(out, corrupt(x, den, ["a"], 0), den), out)


# ----------------------------------------------------------------------------- discriminators
@pytest.mark.parametrize("task, local", [("inpaint_center32", 48), ("inpaint_center32", 32),
                                         ("inpaint_center16", 48), ("inpaint_center40", 48)])
def test_local_discriminator_crop_contains_the_hole(task, local):
    t = make_task(task, 64)
    boxes = local_crop_boxes(t.op, 3, 64, local)
    hole = (t.op.pixel_mask() == 0).float()
    for r, q in boxes.tolist():
        assert 0 <= r <= 64 - local and 0 <= q <= 64 - local
        assert hole[r:r + local, q:q + local].sum() == hole.sum(), (r, q)   # every hole pixel inside
    c = condition_map(t.op, 3, 64)
    cropped = crop(c, boxes, local)                                        # what the local D sees
    assert cropped.shape == (3, 1, local, local) and torch.equal(cropped.sum((1, 2, 3)), c.sum((1, 2, 3)))
    if local > int(task.removeprefix("inpaint_center")):
        assert cropped[:, 0, 0, :].eq(0).all() and cropped[:, 0, :, 0].eq(0).all()   # context around it


def test_local_crop_refuses_a_hole_larger_than_the_crop_and_is_random_elsewhere():
    with pytest.raises(ValueError, match="does not fit"):
        local_crop_boxes(make_task("inpaint_center40", 64).op, 1, 64, 32)
    g = torch.Generator().manual_seed(0)
    boxes = local_crop_boxes(make_task("sr4", 64).op, 200, 64, 48, g)
    assert boxes.min() >= 0 and boxes.max() <= 16 and len(set(map(tuple, boxes.tolist()))) > 50


def test_fused_discriminator_is_one_logit_from_both_parts():
    torch.manual_seed(0)
    D = FusedDiscriminator(64, 48, ndf=8, features=16).eval()
    x, c = torch.rand(2, 3, 64, 64) * 2 - 1, torch.zeros(2, 1, 64, 64)
    boxes = torch.tensor([[8, 8], [0, 16]])
    out = D(x, c, boxes)
    assert out.shape == (2,)
    x2 = x.clone()
    x2[:, :, 0, 63] += 1.0          # outside both local crops: only the global part sees it
    assert not torch.equal(D(x2, c, boxes), out)
    x3 = x.clone()
    x3[0, :, 30, 30] += 1.0        # inside image 0's crop: changes image 0 only
    d3 = D(x3, c, boxes)
    assert d3[0] != out[0] and d3[1] == out[1]


# ----------------------------------------------------------------------------- training
def _setup(task="inpaint_center32", seed=0, **kw):
    cfg = CGANTrainConfig(task=task, batch_size=4, lr_g=1e-3, **TINY, **kw)
    t = make_task(task, 64)
    torch.manual_seed(seed)
    G, D = CGANGenerator(cfg.width, cfg.dilated_width), FusedDiscriminator(64, cfg.local, cfg.ndf, cfg.d_features)
    oG = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    oD = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    x = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    b = make_batch(x, t, cfg, 0, torch.Generator().manual_seed(2))
    return cfg, t, G, D, oG, oD, b


@pytest.mark.parametrize("task", ["inpaint_center32", "denoise_sigma0.1"])
def test_one_training_step_lowers_the_loss_on_a_fixed_batch(task):
    """Each phase of Algorithm 1 lowers its own loss on the batch it stepped on:
    G alone (reconstruction), D alone (BCE), and the joint step (G's reconstruction
    + adversarial loss under the discriminator it was trained against)."""
    cfg, t, G, D, oG, oD, b = _setup(task)
    before, _ = g_loss(G, D, b, t, cfg, adversarial=False)
    train_step(G, D, oG, oD, b, t, cfg, "g")
    after, _ = g_loss(G, D, b, t, cfg, adversarial=False)
    assert after.item() < before.item()

    with torch.no_grad():
        xh = (G(b.inp) + 1) / 2
    ld0 = d_loss(D, b, compose(xh, b.y, t))[0].item()
    train_step(G, D, oG, oD, b, t, cfg, "d")
    assert d_loss(D, b, compose(xh, b.y, t))[0].item() < ld0

    cfg.adv_weight = 0.1                # make the adversarial part of the joint loss count
    G_old = copy.deepcopy(G)
    train_step(G, D, oG, oD, b, t, cfg, "joint")            # D steps first, then G against the new D
    old, parts_old = g_loss(G_old, D, b, t, cfg, adversarial=True)
    new, parts_new = g_loss(G, D, b, t, cfg, adversarial=True)
    assert new.item() < old.item(), (parts_old, parts_new)


def test_a_step_on_the_wrong_sign_would_raise_the_loss():
    """The check above can fail: a step against the gradient raises the loss."""
    cfg, t, G, D, oG, oD, b = _setup()
    before, _ = g_loss(G, D, b, t, cfg, adversarial=False)
    oG.zero_grad()
    before.backward()
    with torch.no_grad():
        for p in G.parameters():
            p.add_(1e-3 * p.grad.sign())
    assert g_loss(G, D, b, t, cfg, adversarial=False)[0].item() > before.item()


def _train(tmp, steps, data, **kw):
    cfg = CGANTrainConfig(task="inpaint_center32", steps=steps, batch_size=4, pretrain_g_steps=2,
                          pretrain_d_steps=1, sample_every=2, checkpoint_every=2, log_every=1, val_images=0,
                          **TINY, **kw)
    return train_cgan(cfg, tmp, data=data, device="cpu", progress=False)


def _rows(path):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(open(path))]


def test_resumed_training_equals_an_uninterrupted_one(tmp_path):
    """3 steps, stop, resume to 6 (through every phase: G only, D only, joint)
    == 6 steps in one go: same weights bitwise, same resume state, same log."""
    data = torch.rand(12, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    _train(tmp_path / "r", 3, data)
    s = _train(tmp_path / "r", 6, data)
    assert s["steps"] == 6 and s["steps_this_run"] == 3
    _train(tmp_path / "f", 6, data)
    a = load_cgan(tmp_path / "r/cgan").G.state_dict()
    b = load_cgan(tmp_path / "f/cgan").G.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    sa = torch.load(tmp_path / "r/train_state.pt", weights_only=True)
    sb = torch.load(tmp_path / "f/train_state.pt", weights_only=True)
    assert all(torch.equal(sa["D"][k], sb["D"][k]) for k in sa["D"])
    assert _rows(tmp_path / "r/losses.csv") == _rows(tmp_path / "f/losses.csv")
    phases = [r["phase"] for r in _rows(tmp_path / "f/losses.csv")]
    assert phases == ["g", "g", "d", "joint", "joint", "joint"]
    meta = json.loads((tmp_path / "f/cgan.json").read_text())
    assert meta["task"] == "inpaint_center32" and meta["steps"] == 6
    assert "scripts/train_cgan.py" in meta["regenerate"] and "--steps 6" in meta["regenerate"]
    # a different run (another seed) is not equal: the comparison can fail
    _train(tmp_path / "o", 6, data, seed=1)
    c = load_cgan(tmp_path / "o/cgan").G.state_dict()
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_resume_refuses_a_changed_config(tmp_path):
    data = torch.rand(8, 3, 64, 64)
    _train(tmp_path, 2, data)
    with pytest.raises(ValueError, match="different config"):
        _train(tmp_path, 4, data, adv_weight=0.5)


def test_training_corrupts_with_the_tasks_own_operator_and_fresh_noise():
    cfg = CGANTrainConfig(task="denoise_sigma0.1", **TINY)
    t = make_task(cfg.task, 64)
    x = torch.rand(2, 3, 64, 64)
    b0 = make_batch(x, t, cfg, 0, torch.Generator())
    b1 = make_batch(x, t, cfg, 1, torch.Generator())
    assert 0.08 < (b0.y - x).std() < 0.12                       # sigma 0.1
    assert not torch.equal(b0.y, b1.y)                         # new noise every step
    assert torch.equal(make_batch(x, t, cfg, 0, torch.Generator()).y, b0.y)   # seeded


def test_schema_training_defaults_are_the_dataclass_defaults():
    schema = yaml.safe_load((ROOT / "config/schema.yaml").read_text())
    tr = schema["properties"]["cgan"]["properties"]["training"]["properties"]
    defaults = {k: v["default"] for k, v in tr.items()}
    assert CGANTrainConfig.from_dict(defaults) == CGANTrainConfig()
    assert set(tr) == {f for f in CGANTrainConfig().to_dict()} - {"task", "task_seed", "image_size"}


# ----------------------------------------------------------------------------- the method
def _tiny_checkpoint(tmp_path, task, seed=0):
    torch.manual_seed(seed)
    return save_cgan(tmp_path / f"c_{task}", CGANGenerator(8, 8), {"task": task, "training": {"image_size": 64}})


def test_method_uses_its_own_tasks_checkpoint_and_refuses_others(tmp_path):
    t = make_task("sr4", 64)
    y = corrupt(torch.rand(2, 3, 64, 64), t, ["a", "b"], 0)
    stem = _tiny_checkpoint(tmp_path, "sr4")
    res = run_method("cgan", y, t.op, None, {"checkpoint": str(stem)}, [1, 2], task=t)
    assert res.x_hat.shape == (2, 3, 64, 64) and torch.isfinite(res.x_hat).all()
    assert list(res.extras["trained_on"]) == ["sr4", "sr4"] and not res.diagnostics["diverged"].any()
    # the pattern form and the workflow's extra input name the same file
    pat = str(tmp_path / "c_{task}")
    same = run_method("cgan", y, t.op, None, {"checkpoint": pat}, [1, 2], task=t)
    assert torch.equal(same.x_hat, res.x_hat)
    wf = run_method("cgan", y, t.op, None, {"extra_inputs": {"cgan_checkpoint": f"{stem}.json"}}, [1, 2], task=t)
    assert torch.equal(wf.x_hat, res.x_hat)
    other = _tiny_checkpoint(tmp_path, "colorize")
    with pytest.raises(ValueError, match="trained for task 'colorize', not 'sr4'"):
        run_method("cgan", y, t.op, None, {"checkpoint": str(other)}, [1, 2], task=t)
    cross = run_method("cgan", y, t.op, None, {"checkpoint": str(other), "cross_task": True}, [1, 2], task=t)
    assert list(cross.extras["trained_on"]) == ["colorize"] * 2


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    t = make_task("sr8", 64)
    y = corrupt(torch.rand(1, 3, 64, 64), t, ["a"], 0)
    with pytest.raises(FileNotFoundError) as e:
        run_method("cgan", y, t.op, None, {"checkpoint": str(tmp_path / "none_{task}")}, [1], task=t)
    msg = str(e.value)
    assert "'sr8'" in msg and "none_sr8.json" in msg and "train_cgan" in msg and "method_tasks" in msg
    with pytest.raises(FileNotFoundError, match="demo_cgan_sr8"):             # no committed one either
        run_method("cgan", y, t.op, None, {}, [1], task=t)


def test_tampered_weights_are_refused(tmp_path):
    stem = _tiny_checkpoint(tmp_path, "sr4")
    w = Path(f"{stem}.safetensors")
    data = bytearray(w.read_bytes())
    data[-1] ^= 1
    w.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256"):
        load_cgan(stem)


# ----------------------------------------------------------------------------- committed demo checkpoints
def test_committed_demo_checkpoints_fit_the_budget_and_say_how_to_regenerate_them():
    files = [p for p in CHECKPOINTS.iterdir() if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= 10 * 1024 * 1024
    for task in YEH_TASKS:
        ck = load_cgan(CHECKPOINTS / f"demo_cgan_{task}")           # sha256 and shapes checked
        m = ck.meta
        assert m["task"] == task and m["data"]["kind"] == "teacher_pool"
        assert m["training"]["task"] == task and m["steps"] >= 1
        assert m["regenerate"].startswith("python scripts/train_cgan.py") and f"--task {task}" in m["regenerate"]
        assert f"--steps {m['steps']}" in m["regenerate"]
        assert (CHECKPOINTS / f"demo_cgan_{task}_losses.csv").is_file()
        assert (CHECKPOINTS / f"demo_cgan_{task}_samples.png").is_file()


@pytest.fixture(scope="module")
def held_out_faces():
    """Teacher faces from latents no training or demo split used."""
    from ganrestore.priors.train import teacher_faces

    return teacher_faces(8, seed=98765)


@pytest.mark.parametrize("task", YEH_TASKS)
def test_committed_cgan_beats_the_observation_on_its_own_task(task, held_out_faces):
    t = make_task(task, 64)
    ids = [f"held-out/{i}" for i in range(8)]
    y = corrupt(held_out_faces, t, ids, 0)
    res = run_method("cgan", y, t.op, None, {}, list(range(8)), task=t)

    def psnr(a):
        return (10 * torch.log10(1 / ((a - held_out_faces) ** 2).flatten(1).mean(1))).mean().item()

    assert psnr(res.x_hat) > psnr(t.op.A_input(y).clamp(0, 1)) + 1.0


# ----------------------------------------------------------------------------- cross-corruption table
def test_cross_table_marks_the_diagonal_and_missing_baselines(tmp_path):
    from ganrestore import io
    from ganrestore.cgan.cross import cross_restore, cross_table

    tasks = ["sr4", "denoise_sigma0.1"]
    x = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    ids = ["i0", "i1", "i2"]
    io.save_artifact(tmp_path / "test.npz", {"images": io.to_uint8(x), "ids": np.array(ids)}, {})
    xq, _ = io.load_split(tmp_path / "test.npz")
    corrupt_paths = {}
    for name in tasks:
        t = make_task(name, 64)
        corrupt_paths[name] = tmp_path / f"corrupt_{name}.npz"
        io.save_artifact(corrupt_paths[name], {"y": corrupt(xq, t, ids, 0).numpy(), "ids": np.array(ids)}, {})
    restored = {}
    for k, name in enumerate(tasks):
        stem = _tiny_checkpoint(tmp_path, name, seed=k)
        restored[name] = tmp_path / f"cross_{name}.npz"
        meta = cross_restore(corrupt_paths, stem, name, 64, 0, restored[name])
        assert meta["tasks"] == tasks
    # the diagonal is the method itself
    d = io.load_artifact(restored["sr4"])
    t = make_task("sr4", 64)
    own = run_method("cgan", torch.from_numpy(io.load_artifact(corrupt_paths["sr4"])["y"]), t.op, None,
                     {"checkpoint": str(tmp_path / "c_sr4")}, [0, 1, 2], task=t)
    assert np.array_equal(d["x_hat_0"], own.x_hat.numpy())
    agg = tmp_path / "yeh_sr4.json"
    agg.write_text(json.dumps({"psnr_mean": 21.5, "psnr_ci95": 0.3, "ssim_mean": 0.61, "ssim_ci95": 0.01,
                               "n": 3, "n_failed": 0}))
    out = {e: tmp_path / f"cgan_cross.{e}" for e in ("md", "csv", "html")}
    res = cross_table(tmp_path / "test.npz", restored, {"yeh|sr4": str(agg)}, tasks, ["yeh", "csgm"],
                      out["md"], out["csv"], out["html"], where="Test.")
    md = out["md"].read_text()
    assert "## PSNR (dB)" in md and "## SSIM" in md and "LPIPS not computed" in md
    psnr_rows = [line for line in md.split("## SSIM")[0].splitlines() if line.startswith("| cgan[")]
    assert re.search(r"^\| cgan\[sr4\] \| \*\*[\d.]+\*\* \| [\d.]+ \|", psnr_rows[0]), psnr_rows
    assert re.search(r"^\| cgan\[denoise_sigma0.1\] \| [\d.]+ \| \*\*[\d.]+\*\* \|", psnr_rows[1]), psnr_rows
    assert "| yeh (one prior, all tasks) | 21.50 | not run |" in md
    assert "| csgm (one prior, all tasks) | not run | not run |" in md
    assert "own cGAN − mean of the other cGANs" in md
    rows = list(csv.DictReader(open(out["csv"])))
    cg = [r for r in rows if r["model"] == "cgan" and r["metric"] == "psnr"]
    assert len(cg) == 4 and all(r["n"] == "3" for r in cg)
    diag = {(r["trained_on"], r["tested_on"]): float(r["mean"]) for r in cg}
    from ganrestore.metrics import psnr
    assert diag[("sr4", "sr4")] == pytest.approx(psnr(own.x_hat, xq).mean())
    assert "<b>" in out["html"].read_text()
    assert len(res["cross"]) == 8                       # 2 x 2 pairs x (psnr, ssim)
