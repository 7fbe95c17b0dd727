"""train_gan's objectives (ns, WGAN-GP, RSGAN), D-only training against the frozen teacher,
the teacher-referenced checkpoint format and the discriminator separation check."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import torch
import yaml
from torch.nn import functional as F

from ganrestore.priors import Discriminator, Generator, fold_batchnorm, load_prior, load_teacher_generator, save_prior
from ganrestore.priors.checkpoint import (FORMAT, FORMAT_G_REF, TEACHER_SPEC, json_path, sidecar_facts,
                                          weights_path)
from ganrestore.priors.dcgan import teacher_weights_path
from ganrestore.priors.objectives import gan_step, gradient_penalty
from ganrestore.priors.separation import auc_summary, discriminator_separation, real_photos
from ganrestore.priors.train import TrainConfig, build_pair, dcgan_init_, train_gan

from workflow_helpers import ROOT, SNAKEMAKE, copy_workflow, env

LOSSES = ("ns", "wgan_gp", "rsgan")
COMMITTED = ROOT / "ganrestore/priors/checkpoints/demo_teacher_d64"


def _nets(loss, seed=0):
    cfg = TrainConfig(ngf=8, ndf=8, loss=loss)
    torch.manual_seed(seed)
    G = Generator(ngf=8)
    D = Discriminator(ndf=8, norm=cfg.d_norm_resolved, output={"ns": "logit", "wgan_gp": "critic",
                                                              "rsgan": "relativistic"}[loss])
    G.apply(dcgan_init_)
    D.apply(dcgan_init_)
    return G.train(), D.train()


# Independent statements of each objective (the papers' formulas, written with softplus:
# -log s(a) = softplus(-a), -log(1 - s(a)) = softplus(a)); the penalty by a per-image loop.
def _gp_loop(D, real, fake, eps, lam):
    vals = []
    for i in range(real.shape[0]):
        xh = (eps[i] * real[i:i + 1] + (1 - eps[i]) * fake[i:i + 1]).detach().requires_grad_(True)
        (g,) = torch.autograd.grad(D(xh).sum(), xh, create_graph=True)
        vals.append((g.flatten().norm() - 1) ** 2)
    return lam * torch.stack(vals).mean()


def _loss_D(loss, D, real, fake, eps=None, lam=10.0):
    lr_, lf_ = D(real), D(fake.detach())
    if loss == "ns":
        return F.softplus(-lr_).mean() + F.softplus(lf_).mean()
    if loss == "rsgan":
        return F.softplus(-(lr_ - lf_)).mean()
    return lf_.mean() - lr_.mean() + _gp_loop(D, real, fake.detach(), eps, lam)


def _loss_G(loss, D, fake, real):
    lg = D(fake)
    if loss == "ns":
        return F.softplus(-lg).mean()
    if loss == "rsgan":
        return F.softplus(-(lg - D(real).detach())).mean()
    return -lg.mean()


def _batch(seed=3, B=8):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(B, 3, 64, 64, generator=g) * 2 - 1, torch.randn(B, 100, generator=g)


@pytest.mark.parametrize("loss", LOSSES)
def test_one_discriminator_step_lowers_its_loss_on_the_batch(loss):
    G, D = _nets(loss)
    real, z = _batch()
    with torch.no_grad():
        fake = G(z)
    eps = torch.rand(real.shape[0], 1, 1, 1, generator=torch.Generator().manual_seed(11))
    before = _loss_D(loss, D, real, fake, eps).item()
    opt_D = torch.optim.Adam(D.parameters(), lr=1e-4, betas=(0.5, 0.999))
    G.requires_grad_(False)
    out = gan_step(G, D, None, opt_D, [(real, z)], loss, eps_generator=torch.Generator().manual_seed(11),
                   train_g=False)
    assert out["loss_D"] == pytest.approx(before, rel=1e-4)     # the step's loss is the paper's formula
    after = _loss_D(loss, D, real, fake, eps).item()
    assert after < before, (loss, before, after)


@pytest.mark.parametrize("loss", LOSSES)
def test_one_generator_step_lowers_its_loss_on_the_batch(loss):
    G, D = _nets(loss)
    real, z = _batch()
    opt_G = torch.optim.Adam(G.parameters(), lr=1e-4, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), lr=1e-4, betas=(0.5, 0.999))
    G0 = copy.deepcopy(G)
    gan_step(G, D, opt_G, opt_D, [(real, z)], loss, eps_generator=torch.Generator().manual_seed(5))
    # G's step is taken against the D after its own step: compare G before / after against that D
    D.requires_grad_(False)
    before = _loss_G(loss, D, G0(z), real).item()
    after = _loss_G(loss, D, G(z), real).item()
    assert after < before, (loss, before, after)


def test_gradient_penalty_matches_a_quadratic_critics_analytic_gradient():
    """C(x) = <w, x> + c ||x||^2 has grad w + 2 c x: the penalty in closed form."""
    g = torch.Generator().manual_seed(0)
    w, c = torch.randn(3, 8, 8, generator=g, dtype=torch.float64) * 0.05, 0.3

    def C(x):
        return (x * w).flatten(1).sum(1) + c * x.pow(2).flatten(1).sum(1)
    real = torch.randn(5, 3, 8, 8, generator=g, dtype=torch.float64)
    fake = torch.randn(5, 3, 8, 8, generator=g, dtype=torch.float64)
    eps = torch.rand(5, 1, 1, 1, generator=g, dtype=torch.float64)
    xh = eps * real + (1 - eps) * fake
    want = ((w + 2 * c * xh).flatten(1).norm(dim=1) - 1).pow(2).mean()
    assert gradient_penalty(C, real, fake, eps).item() == pytest.approx(want.item(), rel=1e-12)


def test_gradient_penalty_matches_finite_differences_on_a_layer_normed_critic():
    torch.manual_seed(0)
    D = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, 2, 1), torch.nn.GroupNorm(1, 4), torch.nn.LeakyReLU(0.2),
                            torch.nn.Conv2d(4, 1, 4, 1, 0), torch.nn.Flatten(0)).double()
    real, fake = torch.rand(3, 3, 8, 8, dtype=torch.float64), torch.rand(3, 3, 8, 8, dtype=torch.float64)
    eps = torch.rand(3, 1, 1, 1, dtype=torch.float64)
    xh = eps * real + (1 - eps) * fake
    h, norms = 1e-6, []
    with torch.no_grad():
        for i in range(3):
            basis = torch.eye(3 * 8 * 8, dtype=torch.float64).view(-1, 3, 8, 8)
            up, dn = D(xh[i] + h * basis), D(xh[i] - h * basis)
            norms.append(((up - dn) / (2 * h)).norm().item())
    want = np.mean([(n - 1) ** 2 for n in norms])
    assert gradient_penalty(D, real, fake, eps).item() == pytest.approx(want, rel=1e-6)


def test_gradient_penalty_reaches_the_critic_weights():
    _, D = _nets("wgan_gp")
    real, fake = _batch()[0], _batch(seed=4)[0]
    gp = gradient_penalty(D, real, fake, torch.full((8, 1, 1, 1), 0.5))
    grads = torch.autograd.grad(gp, [p for p in D.parameters()])
    assert all(torch.isfinite(g).all() for g in grads) and sum(g.abs().sum() for g in grads) > 0


@pytest.mark.parametrize("overrides,key", [
    ({"loss": "wgan_gp", "d_norm": "batch"}, "d_norm"),
    ({"loss": "hinge"}, "loss"),
    ({"freeze_g": True}, "freeze_g"),
    ({"init_g": "teacher"}, "ngf"),                                   # ngf 32 is not the teacher's 64
    ({"init_g": "teacher", "ngf": 64, "freeze_g": True}, "quantise_fake"),   # 8-bit pool vs float G(z)
    ({"init_g": "teacher", "ngf": 64, "freeze_g": True, "data": "x.npz", "teacher_pool": 0,
      "teacher_u8": False}, "teacher_u8"),
    ({"quantise_fake": True}, "quantise_fake"),
    ({"teacher_u8": False}, "teacher_u8"),                            # a pool is stored 8-bit
    ({"arch": "began", "image_size": 64, "loss": "rsgan"}, "loss"),
    ({"n_critic": 0}, "n_critic"),
])
def test_contradictory_settings_are_refused_naming_the_key(overrides, key):
    with pytest.raises(ValueError, match=f"training setting '{key}'"):
        TrainConfig(**overrides)


def test_accepted_frozen_teacher_settings():
    TrainConfig(init_g="teacher", ngf=64, freeze_g=True, teacher_pool=0, teacher_u8=False)
    TrainConfig(init_g="teacher", ngf=64, freeze_g=True, quantise_fake=True)          # both 8-bit
    TrainConfig(init_g="teacher", ngf=64)                                            # fine-tuning G


@pytest.mark.parametrize("loss,kind,norm", [("wgan_gp", "critic", "layer"), ("rsgan", "relativistic", "batch"),
                                            ("ns", "logit", "batch")])
def test_checkpoint_records_what_the_discriminator_outputs(tmp_path, loss, kind, norm):
    cfg = TrainConfig(steps=2, batch_size=4, ngf=8, ndf=8, loss=loss, n_critic=2, sample_every=0,
                      checkpoint_every=0, log_every=1)
    train_gan(cfg, tmp_path / "r", data=torch.rand(8, 3, 64, 64), device="cpu", progress=False)
    meta = json.loads(json_path(tmp_path / "r/prior").read_text())
    assert meta["d_kind"] == kind and meta["d_norm"] == norm and sidecar_facts(meta) == (64, kind)
    P = load_prior(tmp_path / "r/prior", device="cpu")
    assert P.d_kind == kind
    norms = {type(m) for m in P.D.modules()}
    assert (torch.nn.BatchNorm2d in norms) == (norm == "batch") and (torch.nn.GroupNorm in norms) == (norm == "layer")
    P.check_discriminator("yeh")                                      # accepted by Yeh et al.'s method
    x = torch.rand(3, 3, 64, 64) * 2 - 1
    with torch.no_grad():                                             # the search's folded copy: same function
        assert torch.allclose(fold_batchnorm(P.D)(x.contiguous(memory_format=torch.channels_last)), P.D(x),
                              atol=1e-5)
    header = (tmp_path / "r/losses.csv").read_text().splitlines()[0].split(",")
    assert header[2:] == {"ns": ["loss_D", "loss_G", "D_real", "D_fake"],
                          "rsgan": ["loss_D", "loss_G", "C_real", "C_fake", "P_real_more_real"],
                          "wgan_gp": ["loss_D", "loss_G", "C_real", "C_fake", "W", "gp"]}[loss]


def test_wgan_gp_makes_n_critic_discriminator_updates_per_step(tmp_path):
    """n_critic D updates per step: Adam's step counter of D is n_critic x steps, G's is steps."""
    cfg = TrainConfig(steps=2, batch_size=2, ngf=8, ndf=8, loss="wgan_gp", n_critic=3, sample_every=0,
                      checkpoint_every=0)
    train_gan(cfg, tmp_path / "r", data=torch.rand(8, 3, 64, 64), device="cpu", progress=False)
    st = torch.load(tmp_path / "r/train_state.pt", weights_only=True)
    assert {int(s["step"]) for s in st["opt_D"]["state"].values()} == {6}
    assert {int(s["step"]) for s in st["opt_G"]["state"].values()} == {2}


# ----------------------------------------------------------------------------- D against the frozen teacher
FROZEN = dict(init_g="teacher", ngf=64, ndf=8, freeze_g=True, teacher_pool=0, teacher_u8=False, batch_size=2,
              sample_every=0, checkpoint_every=0, log_every=1)


def test_d_trained_against_the_frozen_teacher_stores_only_d(tmp_path):
    train_gan(TrainConfig(steps=2, **FROZEN), tmp_path / "r", device="cpu", progress=False)
    stem = tmp_path / "r/prior"
    from safetensors import safe_open
    with safe_open(str(weights_path(stem)), framework="pt") as f:
        keys = list(f.keys())
    assert keys and all(k.startswith("D.") for k in keys)
    meta = json.loads(json_path(stem).read_text())
    assert meta["format"] == FORMAT_G_REF and meta["G"]["source"] == TEACHER_SPEC
    import hashlib
    assert meta["G"]["sha256"] == hashlib.sha256(teacher_weights_path().read_bytes()).hexdigest()
    P = load_prior(stem, device="cpu")
    T = load_teacher_generator()
    for k, v in T.state_dict().items():
        assert torch.equal(P.G.state_dict()[k], v), k               # G is bitwise the teacher
    cfg = TrainConfig(steps=2, **FROZEN)
    torch.manual_seed(cfg.seed)
    _, D0 = build_pair(cfg)                                          # D's initialisation: it was trained
    assert not torch.equal(P.D.main[0].weight, D0.main[0].weight)
    assert "--freeze-g True" in meta["regenerate"] and "--init-g teacher" in meta["regenerate"]
    st = torch.load(tmp_path / "r/train_state.pt", weights_only=True)
    assert st["G"] is None and st["opt_G"] is None                 # the teacher is not copied there either


def test_frozen_teacher_training_resumes_exactly(tmp_path):
    train_gan(TrainConfig(steps=1, **FROZEN), tmp_path / "a", device="cpu", progress=False)
    train_gan(TrainConfig(steps=2, **FROZEN), tmp_path / "a", device="cpu", progress=False)
    train_gan(TrainConfig(steps=2, **FROZEN), tmp_path / "b", device="cpu", progress=False)
    a, b = (load_prior(tmp_path / f"{r}/prior", device="cpu").D.state_dict() for r in "ab")
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _teacher_ref_checkpoint(tmp_path):
    torch.manual_seed(0)
    D = Discriminator(ndf=8).eval()
    return save_prior(tmp_path / "t", load_teacher_generator(), D, {"steps": 0}, g_source=TEACHER_SPEC)


def test_teacher_reference_refuses_a_changed_generator(tmp_path):
    G = load_teacher_generator()
    with torch.no_grad():
        G.main[3].weight[0] += 1e-7
    with pytest.raises(ValueError, match="differs from the teacher.*main.3.weight"):
        save_prior(tmp_path / "x", G, Discriminator(ndf=8), {}, g_source=TEACHER_SPEC)
    with pytest.raises(ValueError, match="no D"):
        save_prior(tmp_path / "x", load_teacher_generator(), None, {}, g_source=TEACHER_SPEC)


def _edit(stem, fn):
    jp = json_path(stem)
    meta = json.loads(jp.read_text())
    fn(meta)
    jp.write_text(json.dumps(meta))


@pytest.mark.parametrize("edit,match", [
    (lambda m: m["G"].update(sha256="0" * 64), "sha256 mismatch.*trained against the teacher file"),
    (lambda m: m["G"].update(source="teacher:stylegan"), "not known"),
    (lambda m: m["G"]["arch"].update(ngf=32), "not the teacher's"),
    (lambda m: m["G"]["tensors"].update({"main.0.weight": [1, 2]}), "tensor table differs.*main.0.weight"),
    (lambda m: m.update(format=FORMAT), "G names a source"),
    (lambda m: m["G"].pop("source"), "names no 'source'"),
    (lambda m: m["D"]["arch"].update(ndf=16), "D does not match"),
    (lambda m: m.update(D=None), "no D is recorded"),
])
def test_teacher_reference_checks(tmp_path, edit, match):
    stem = _teacher_ref_checkpoint(tmp_path)
    load_prior(stem, device="cpu")                                    # intact: loads
    _edit(stem, edit)
    with pytest.raises(ValueError, match=match):
        load_prior(stem, device="cpu")


def test_teacher_reference_with_generator_tensors_in_the_file_is_refused(tmp_path):
    from ganrestore.io import sha256_file
    # a format-1 file that holds G's tensors, relabelled as a reference to the teacher
    stem = save_prior(tmp_path / "g", load_teacher_generator(), Discriminator(ndf=8).eval(), {})
    ref = json.loads(json_path(_teacher_ref_checkpoint(tmp_path)).read_text())

    def relabel(m):
        m.update(format=FORMAT_G_REF, G=ref["G"], sha256=sha256_file(weights_path(stem)))
    _edit(stem, relabel)
    with pytest.raises(ValueError, match="holds generator tensors"):
        load_prior(stem, device="cpu")


def test_tampered_d_weights_of_a_teacher_reference_are_refused(tmp_path):
    stem = _teacher_ref_checkpoint(tmp_path)
    wp = weights_path(stem)
    b = bytearray(wp.read_bytes())
    b[-3] ^= 0xFF
    wp.write_bytes(bytes(b))
    with pytest.raises(ValueError, match="sha256 mismatch"):
        load_prior(stem, device="cpu")


# ----------------------------------------------------------------------------- separation
def test_auc_equals_the_mann_whitney_statistic_with_ties():
    from scipy.stats import mannwhitneyu
    rng = np.random.default_rng(0)
    pos, neg = rng.integers(0, 6, 40).astype(float), rng.integers(0, 5, 70).astype(float)
    s = auc_summary(pos, neg, seed=1, n_boot=200)
    u = mannwhitneyu(pos, neg).statistic
    assert s["auc"] == pytest.approx(u / (40 * 70), rel=1e-12)
    assert s["auc_ci95"][0] <= s["auc"] <= s["auc_ci95"][1]
    assert s["n_pos"] == 40 and s["mean_score_neg"] == pytest.approx(neg.mean())
    # the interval against a plain resampling loop with sklearn (Monte Carlo: agree to a few hundredths)
    from sklearn.metrics import roc_auc_score
    y = np.r_[np.ones(40), np.zeros(70)]
    boots = [roc_auc_score(y, np.r_[rng.choice(pos, 40), rng.choice(neg, 70)]) for _ in range(600)]
    s = auc_summary(pos, neg, seed=1, n_boot=4000)
    assert np.allclose(s["auc_ci95"], np.percentile(boots, [2.5, 97.5]), atol=0.03)


class _MeanD(torch.nn.Module):
    """A 'discriminator' scoring images by their mean brightness (an oracle for the check)."""

    d_kind = "logit"

    def __init__(self):
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return x.flatten(1).mean(1) + self.p


class _QuantD(_MeanD):
    """Scores 8-bit-ness: minus the distance of each pixel to the nearest multiple of 1/255."""

    def forward(self, x):
        u = (x + 1) / 2 * 255
        return -(u - u.round()).abs().flatten(1).mean(1) + self.p


def test_separation_finds_what_a_known_discriminator_separates():
    G = load_teacher_generator()
    torch.manual_seed(0)
    bright = torch.full((6, 3, 64, 64), 250, dtype=torch.uint8)
    dark = torch.full((5, 3, 64, 64), 3, dtype=torch.uint8)
    sep = discriminator_separation(_MeanD(), G, teacher_u8=dark, photos_u8=bright, n_fake=16, seed=1)
    assert sep["photos"]["auc"] == 1.0 and sep["teacher"]["auc"] == 0.0
    assert sep["photos"]["n_pos"] == 6 and sep["teacher"]["n_pos"] == 5 and sep["photos"]["n_neg"] == 16
    assert sep["quantisation"]["auc"] == pytest.approx(0.5, abs=0.2)          # rounding barely moves the mean
    q = discriminator_separation(_QuantD(), G, teacher_u8=None, photos_u8=None, n_fake=16, seed=1)
    assert q["quantisation"]["auc"] == 1.0 and q["teacher"]["auc"] is None


def test_real_photos_follow_the_manifest(tmp_path):
    imgs = np.arange(4 * 8 * 8 * 3, dtype=np.uint8).reshape(4, 8, 8, 3)
    np.savez(tmp_path / "test.npz", images=imgs[:3], ids=np.array(["real-a", "gen-0", "real-b"]))
    np.savez(tmp_path / "val.npz", images=imgs[3:], ids=np.array(["gen-1"]))
    (tmp_path / "m.csv").write_text("id,kind\nreal-a,real\ngen-0,generated\nreal-b,real\ngen-1,generated\n")
    x, ids, note = real_photos(tmp_path / "m.csv", {"test": tmp_path / "test.npz", "val": tmp_path / "val.npz"})
    assert ids == ["real-a", "real-b"] and x.shape == (2, 3, 8, 8)
    assert torch.equal(x[1], torch.from_numpy(imgs[2]).permute(2, 0, 1)) and "2 from test" in note
    (tmp_path / "m.csv").write_text("id,source\nreal-a,x\ngen-0,x\nreal-b,x\ngen-1,x\n")
    x, ids, _ = real_photos(tmp_path / "m.csv", {"test": tmp_path / "test.npz", "val": tmp_path / "val.npz"})
    assert len(ids) == 4                                                   # no kind column: all photographs


# ----------------------------------------------------------------------------- the committed prior
@pytest.mark.skipif(not json_path(COMMITTED).exists(), reason="demo_teacher_d64 not committed yet")
def test_committed_teacher_d_prior():
    P = load_prior(COMMITTED, device="cpu")
    meta = P.provenance
    for k, v in load_teacher_generator().state_dict().items():
        assert torch.equal(P.G.state_dict()[k], v), k
    assert meta["format"] == FORMAT_G_REF and P.D.arch() == {"name": "dcgan64_discriminator", "ndf": 64, "nc": 3}
    tr = meta["training"]
    assert (tr["init_g"], tr["freeze_g"], tr["teacher_u8"], tr["teacher_pool"], tr["loss"]) == \
        ("teacher", True, False, 0, "ns")
    assert meta["regenerate"].startswith("python scripts/train_gan.py")
    committed = [p for p in COMMITTED.parent.glob(COMMITTED.name + "*")]
    assert sum(p.stat().st_size for p in committed) <= 25e6


# ----------------------------------------------------------------------------- through the workflow
TRAIN_CONFIGS = {"train_wgan_gp": "critic", "train_rsgan": "relativistic", "train_teacher_d": "logit"}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TRAIN_CONFIGS))
def test_dot_test_training_configs_train_each_objective(tmp_path, name):
    wd = copy_workflow(tmp_path / "wf")
    shutil.copytree(ROOT / ".test", wd / ".test")
    rel = f".test/config/{name}.yaml"
    cfg = yaml.safe_load((ROOT / rel).read_text())
    res, prior = f"results/{cfg['name']}", cfg["prior"]["checkpoint"]
    check = f"{res}/priors/{prior}_discriminator.json"
    e = env()
    r = subprocess.run([SNAKEMAKE, check, "--cores", "1", "--configfile", rel], cwd=wd, capture_output=True,
                       text=True, timeout=600, env=e)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    meta = json.loads((wd / res / "priors" / f"{prior}.json").read_text())
    tr = cfg["prior"]["training"]
    assert meta["steps"] == tr["steps"] and meta["training"]["loss"] == tr["loss"]
    assert meta["d_kind"] == TRAIN_CONFIGS[name]
    rows = (wd / res / "priors" / f"train_{prior}" / "losses.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + tr["steps"]
    out = json.loads((wd / check).read_text())
    sep = out["separation"]
    import pandas as pd
    man = pd.read_csv(wd / res / "data" / "manifest.csv")
    n_real = int(((man.kind == "real") & man.split.isin(["test", "val"])).sum())
    assert n_real >= 1 and sep["photos"]["n_pos"] == n_real and sep["teacher"]["n_pos"] == 256
    assert 0 <= sep["photos"]["auc"] <= 1 and 0 <= sep["teacher"]["auc"] <= 1
    if tr.get("freeze_g"):
        assert meta["G"]["source"] == TEACHER_SPEC and out["G_source"] == TEACHER_SPEC
    assert os.path.getsize(wd / res / "priors" / f"{prior}.safetensors") > 0


def test_workflow_refuses_contradictory_training_settings_before_any_job(tmp_path):
    from workflow_helpers import dry_run_many, tiny_config
    wd = copy_workflow(tmp_path / "wf")
    train = {"train": True, "checkpoint": "x"}
    cases = {
        "bn_critic": tiny_config(prior=dict(train, training={"loss": "wgan_gp", "d_norm": "batch"})),
        "quantised_real": tiny_config(prior=dict(train, training={"init_g": "teacher", "ngf": 64,
                                                                  "freeze_g": True})),
        "ok_critic": tiny_config(methods=["input", "yeh"],
                                 prior=dict(train, training={"loss": "wgan_gp", "ngf": 8, "ndf": 8})),
    }
    out = dry_run_many(wd, cases)
    assert not out["bn_critic"]["ok"] and "prior.training: training setting 'd_norm'" in out["bn_critic"]["error"]
    assert not out["quantised_real"]["ok"] and "'quantise_fake'" in out["quantised_real"]["error"]
    assert out["ok_critic"]["ok"], out["ok_critic"]["error"]


def test_paired_difference_against_numpy():
    from ganrestore.priors.separation import paired_difference
    d = np.random.default_rng(2).normal(0.3, 1.0, 200)
    out = paired_difference(d, seed=0, n_boot=4000)
    se = d.std(ddof=1) / np.sqrt(d.size)                       # normal-theory interval as the oracle
    assert out["paired_mean_diff"] == pytest.approx(d.mean())
    assert np.allclose(out["paired_diff_ci95"], [d.mean() - 1.96 * se, d.mean() + 1.96 * se], atol=0.25 * se)
    assert out["frac_pairs_pos_higher"] == pytest.approx((d > 0).mean())
