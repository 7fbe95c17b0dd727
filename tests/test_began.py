"""BEGAN priors (Berthelot et al. 2017, carpedm20/BEGAN-tensorflow): architecture, training
step, training run, latents, checkpoints, what yeh does with its auto-encoder D, and
every method at 128 px on the CPU.

Oracles: the parameter count of the paper's architecture computed by hand; the
BEGAN losses and the k_t update recomputed from the networks' outputs before the
step; the reconstruction loss falling on a fixed data set; per-image
functional_call for IAGAN's batched weight copies; the methods' own output shapes,
finiteness and failure flags at 128 px.
"""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch

from ganrestore.methods import get_method, run_method
from ganrestore.methods.gan_core import initial_latents
from ganrestore.priors import Prior, latents, load_prior, save_prior
from ganrestore.priors.began import BEGANDiscriminator, BEGANGenerator, began_init_
from ganrestore.priors.train import TrainConfig, began_step, discriminator_means, train_gan
from ganrestore.seeding import derive_seed, randn_per_image
from ganrestore.tasks import corrupt, make_task


pytestmark = pytest.mark.usefixtures("one_thread")


def _pair(n=8, nz=16, size=32, seed=0):
    torch.manual_seed(seed)
    G, D = BEGANGenerator(nz=nz, n=n, image_size=size), BEGANDiscriminator(n=n, nz=nz, image_size=size)
    G.apply(began_init_)
    D.apply(began_init_)
    return G, D


def _smooth_images(N=32, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(N, 3, 4, 4, generator=g)
    return torch.nn.functional.interpolate(low, size=size, mode="bilinear", align_corners=False).clamp(0, 1)


# ----------------------------------------------------------------------------- architecture
@pytest.mark.parametrize("size", [8, 32, 128])
def test_shapes_and_the_papers_parameter_count(size):
    n, nz = 4, 64
    G, D = BEGANGenerator(nz=nz, n=n, image_size=size), BEGANDiscriminator(n=n, nz=nz, image_size=size)
    z = torch.rand(2, nz) * 2 - 1
    assert G(z).shape == (2, 3, size, size) and G(z[:, :, None, None]).shape == (2, 3, size, size)
    x = torch.rand(2, 3, size, size)
    assert D(x).shape == x.shape and D.energy(x).shape == (2,)
    assert torch.allclose(D.energy(x), (D(x) - x).abs().flatten(1).mean(1))
    # the paper's Fig. 1 by hand: r = log2(size) - 2 blocks
    r = int(math.log2(size)) - 2
    conv = lambda i, o: 9 * i * o + o  # noqa: E731
    dec = (nz * 64 * n + 64 * n) + r * 2 * conv(n, n) + conv(n, 3)
    enc = conv(3, n)
    for i in range(r):
        c, prev = n * (i + 1), (n * i if i else n)
        enc += conv(prev, c) + conv(c, c) + (conv(c, c) if i < r - 1 else 0)
    enc += 64 * n * r * nz + nz
    assert sum(p.numel() for p in G.parameters()) == dec
    assert sum(p.numel() for p in D.parameters()) == enc + dec


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="power of two >= 8"):
        BEGANGenerator(image_size=96)
    with pytest.raises(ValueError, match="power of two"):
        TrainConfig(arch="began", image_size=100)
    with pytest.raises(ValueError, match="64x64"):
        TrainConfig(arch="dcgan", image_size=128)


# ----------------------------------------------------------------------------- training
def test_began_step_matches_the_papers_losses_and_k_update():
    G, D = _pair(seed=1)
    real = _smooth_images(4) * 2 - 1
    z = torch.rand(4, 16) * 2 - 1
    with torch.no_grad():
        fake = G(z)
        l_real = float((D(real) - real).abs().mean())
        l_fake = float((D(fake) - fake).abs().mean())
    G0 = {k: v.clone() for k, v in G.state_dict().items()}
    oG = torch.optim.Adam(G.parameters(), 1e-3, betas=(0.5, 0.999))
    oD = torch.optim.Adam(D.parameters(), 1e-3, betas=(0.5, 0.999))
    k, gamma, lam = 0.3, 0.5, 0.01
    out = began_step(G, D, oG, oD, real, z, k, gamma, lam)
    assert out["L_real"] == pytest.approx(l_real, rel=1e-5)
    assert out["L_fake"] == pytest.approx(l_fake, rel=1e-5) and out["loss_G"] == out["L_fake"]
    assert out["loss_D"] == pytest.approx(l_real - k * l_fake, rel=1e-5)
    balance = gamma * l_real - l_fake
    assert out["k_t"] == pytest.approx(min(max(k + lam * balance, 0), 1), rel=1e-5)
    assert out["M"] == pytest.approx(l_real + abs(balance), rel=1e-5)
    assert not all(torch.equal(G0[k_], v) for k_, v in G.state_dict().items())


def test_began_trains_on_cpu_with_decreasing_reconstruction_loss(tmp_path):
    data = _smooth_images(48)
    cfg = TrainConfig(arch="began", image_size=32, nz=16, ngf=8, ndf=8, steps=60, batch_size=8, lr=1e-3,
                      sample_every=30, checkpoint_every=30, log_every=1)
    s = train_gan(cfg, tmp_path / "run", data=data, device="cpu", progress=False)
    assert s["steps"] == 60
    rows = list(csv.DictReader(open(tmp_path / "run/losses.csv")))
    assert list(rows[0]) == ["step", "seconds", "loss_D", "loss_G", "L_real", "L_fake", "k_t", "M"]
    L = np.array([float(r["L_real"]) for r in rows])
    assert np.isfinite(L).all() and L[-10:].mean() < 0.9 * L[:10].mean()
    k = np.array([float(r["k_t"]) for r in rows])
    assert ((0 <= k) & (k <= 1)).all() and k[-1] > 0
    for f in ("samples/step_000030.png", "samples.png", "loss.png", "summary.json"):
        assert (tmp_path / "run" / f).is_file(), f
    P = load_prior(tmp_path / "run/prior", device="cpu")
    assert P.z_dist == "uniform" and P.d_kind == "autoencoder"
    assert P.provenance["kind"] == "began" and P.provenance["k_t"] == pytest.approx(k[-1], abs=1e-5)
    assert "--arch began" in P.provenance["regenerate"]


def test_began_resume_equals_uninterrupted(tmp_path):
    data = _smooth_images(16, 16)
    base = dict(arch="began", image_size=16, nz=8, ngf=4, ndf=4, batch_size=4, lr=1e-3, lambda_k=0.05,
                sample_every=0, checkpoint_every=0)
    train_gan(TrainConfig(steps=3, **base), tmp_path / "r", data=data, device="cpu", progress=False)
    train_gan(TrainConfig(steps=6, **base), tmp_path / "r", data=data, device="cpu", progress=False)
    train_gan(TrainConfig(steps=6, **base), tmp_path / "f", data=data, device="cpu", progress=False)
    a, b = load_prior(tmp_path / "r/prior", device="cpu"), load_prior(tmp_path / "f/prior", device="cpu")
    for k, v in a.G.state_dict().items():
        assert torch.equal(v, b.G.state_dict()[k]), k
    assert a.provenance["k_t"] == b.provenance["k_t"] > 0


def test_learning_rate_halving():
    """lr_halve_every: lr * 0.5^(step // N), not below lr_min (BEGAN code)."""
    from ganrestore.priors import train as tr

    cfg = TrainConfig(arch="began", image_size=8, nz=4, ngf=2, ndf=2, steps=7, batch_size=2, lr=1e-3,
                      lr_halve_every=2, lr_min=3e-4, sample_every=0, checkpoint_every=0)
    seen = []
    orig = tr.began_step

    def spy(G, D, oG, oD, *a, **k):
        seen.append(oG.param_groups[0]["lr"])
        return orig(G, D, oG, oD, *a, **k)

    tr.began_step = spy
    try:
        import tempfile
        train_gan(cfg, tempfile.mkdtemp(), data=torch.rand(4, 3, 8, 8), device="cpu", progress=False)
    finally:
        tr.began_step = orig
    assert seen == pytest.approx([1e-3, 1e-3, 5e-4, 5e-4, 3e-4, 3e-4, 3e-4])


def test_teacher_faces_are_resized_for_a_128px_began(tmp_path):
    cfg = TrainConfig(arch="began", image_size=128, nz=8, ngf=2, ndf=2, steps=1, batch_size=2, teacher_pool=4,
                      sample_every=0, checkpoint_every=0)
    s = train_gan(cfg, tmp_path, device="cpu", progress=False)
    assert s["data"]["kind"] == "teacher_pool" and "64 -> 128" in s["data"]["resized"]
    assert load_prior(tmp_path / "prior", device="cpu").G(torch.zeros(1, 8)).shape == (1, 3, 128, 128)


# ----------------------------------------------------------------------------- latents
def test_uniform_latents_per_image_and_normal_unchanged():
    seeds = [5, 6, 7]
    zu = initial_latents(seeds, 2, 64, "uniform")
    assert zu.shape == (6, 64) and zu.min() >= -1 and zu.max() <= 1
    assert torch.equal(initial_latents(seeds[1:2], 2, 64, "uniform"), zu[2:4])       # per image, not per batch
    ref = torch.rand(64, generator=torch.Generator().manual_seed(derive_seed(6, "restart", 1))) * 2 - 1
    assert torch.equal(zu[3], ref)
    # the normal path is exactly what it was
    zn = initial_latents(seeds, 2, 100)
    assert torch.equal(zn, randn_per_image([derive_seed(s, "restart", r) for s in seeds for r in range(2)], (100,)))
    assert abs(float(latents(20000, 1, "uniform").mean())) < 0.02
    with pytest.raises(ValueError, match="unknown latent distribution"):
        latents(1, 2, "laplace")


def test_csgm_starts_from_the_priors_latent_distribution():
    G, D = _pair(size=16)
    P = Prior(G=G.eval(), D=D.eval())
    task = make_task("sr4", 16)
    y = corrupt(torch.rand(1, 3, 16, 16), task, ["a"], 0)
    r = run_method("csgm", y, task.op, P, {"iterations": 0, "restarts": 3}, [9], task=task)
    z0 = initial_latents([9], 3, 16, "uniform")
    with torch.no_grad():
        best = int(np.argmin([float((task.op.A((G(z[None]) + 1) / 2) - y).pow(2).sum()) for z in z0]))
    assert torch.allclose(torch.as_tensor(r.extras["z"][0]), z0[best])


# ----------------------------------------------------------------------------- checkpoints, Yeh's D
def test_checkpoint_round_trip(tmp_path):
    G, D = _pair(size=16)
    stem = save_prior(tmp_path / "b", G.eval(), D.eval(), {"steps": 1})
    P = load_prior(stem, device="cpu")
    z = torch.rand(2, 16) * 2 - 1
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(P.G(z), G(z)) and torch.equal(P.D(x), D(x))
    meta = json.loads((tmp_path / "b.json").read_text())
    assert meta["G"]["arch"] == {"name": "began_generator", "nz": 16, "n": 8, "image_size": 16, "nc": 3}
    from ganrestore.priors.checkpoint import sidecar_facts
    assert sidecar_facts(meta) == (16, "autoencoder")


def test_yeh_refuses_begans_autoencoder_discriminator():
    G, D = _pair(size=16)
    P = Prior(G=G.eval(), D=D.eval())
    task = make_task("sr4", 16)
    y = corrupt(torch.rand(1, 3, 16, 16), task, ["a"], 0)
    with pytest.raises(ValueError, match=r"BEGAN's auto-encoder.*not a probability"):
        run_method("yeh", y, task.op, P, {"iterations": 2}, [1], task=task)
    with pytest.raises(ValueError, match="auto-encoder"):
        P.check_discriminator("yeh")


def test_discriminator_check_reports_reconstruction_losses():
    G, D = _pair(size=16)
    m = discriminator_means(D.eval(), G.eval(), torch.rand(6, 3, 64, 64), seed=1)   # real faces resized 64 -> 16
    assert m["d_kind"] == "autoencoder" and m["n"] == 6
    assert m["D_real_mean"] > 0 and m["fake_over_real"] == pytest.approx(m["D_fake_mean"] / m["D_real_mean"])


def test_iagan_weight_copies_use_vmap_with_began():
    from torch.func import functional_call

    from ganrestore.methods.gan_iagan import BatchedGenerator

    G, _ = _pair(size=16)
    bg = BatchedGenerator(G.eval())
    assert bg.mode == "vmap"
    params = bg.stacked_params(2)
    with torch.no_grad():
        params["dec.fc.weight"][1].mul_(1.1)
    z = torch.rand(2, 16) * 2 - 1
    out = bg(params, z)
    for b in range(2):
        ref = functional_call(G, {k: v[b] for k, v in params.items()}, (z[b:b + 1],))
        assert torch.allclose(out[b:b + 1], ref, atol=1e-5)
    assert not torch.allclose(out[0], out[1])


def test_one_ia_step_equals_a_per_image_adam_step_with_began():
    """image_adaptive's batched step = torch's (unfused) Adam on each image's own
    copy.  Under vmap the latent layer's weight gradient comes back transposed in
    memory; handed to the fused Adam kernel as it was, it moved that layer by other
    elements' steps (issue 25, found checking the PGAN parameterisation)."""
    import copy

    from ganrestore.methods.gan_core import measurement_loss
    from ganrestore.methods.gan_iagan import image_adaptive
    from ganrestore.priors import to_unit

    G, _ = _pair(size=16)
    G.eval()
    task = make_task("sr4", 16)
    g = torch.Generator().manual_seed(0)
    y = task.op.A(torch.rand(2, 3, 16, 16, generator=g))
    z0 = torch.rand(2, 16, generator=g) * 2 - 1
    r = image_adaptive(G, z0, y, task.op, iterations=1, lr_z=1e-4, lr_theta=1e-3)
    for b in range(2):
        Gb = copy.deepcopy(G)
        z = z0[b:b + 1].clone().requires_grad_(True)
        opt = torch.optim.Adam([{"params": list(Gb.parameters()), "lr": 1e-3}, {"params": [z], "lr": 1e-4}])
        loss0 = measurement_loss(task.op, to_unit(Gb(z)), y[b:b + 1]).sum()
        loss0.backward()
        opt.step()
        with torch.no_grad():
            x1 = Gb(z)
            assert float(measurement_loss(task.op, to_unit(x1), y[b:b + 1])) < float(loss0)
        assert torch.allclose(r.x_gan[b:b + 1], x1, atol=1e-5), (r.x_gan[b:b + 1] - x1).abs().max()


# ----------------------------------------------------------------------------- every method at 128 px
def _chain(name):
    out = [name]
    while get_method(out[0]).upstream:
        out.insert(0, get_method(out[0]).upstream)
    return out


def test_every_method_runs_at_128px_on_the_cpu(tmp_path):
    """Each built-in method (tiny settings of tests/test_batch_invariance.py) on two
    128-px images: a BEGAN-128 prior for the GAN methods, a PGAN-128 one for yeh /
    yeh_blend (BEGAN's D is refused there), results finite or flagged, never a crash."""
    from test_batch_invariance import TASK, TINY

    from ganrestore.priors.pgan import PGANDiscriminator, PGANGenerator
    from ganrestore.solvers import sparse as sp

    torch.manual_seed(0)
    began = Prior(G=BEGANGenerator(nz=16, n=4, image_size=128).eval(),
                  D=BEGANDiscriminator(n=4, nz=16, image_size=128).eval())
    pgan = Prior(G=PGANGenerator(nz=8, depths=[8, 8, 4, 4, 4, 4]).eval(),
                 D=PGANDiscriminator(depths=[8, 8, 4, 4, 4, 4]).eval())
    x = _smooth_images(2, 128, seed=3)
    Dict, _ = sp.learn_dictionary(x, patch=4, n_atoms=16, sparsity=2, n_iter=1, max_patches=500)
    dpath = tmp_path / "dict.npz"
    sp.save_dictionary(dpath, Dict, 4)
    ran = []
    for name in sorted(TINY):
        if name not in ("input", "bicubic", "tv", "lowrank", "sparse", "yeh", "yeh_blend", "csgm", "csgm_bp",
                        "iagan", "iagan_bp", "dip"):
            continue                                   # a method added by someone else: its own tests
        task = make_task(TASK.get(name, "sr4"), 128)
        y = corrupt(x, task, ["a", "b"], 0)
        prior = pgan if name.startswith("yeh") else began
        up = None
        for m in _chain(name):
            cfg = dict(TINY[m])
            if m == "sparse":
                cfg["extra_inputs"] = {"dictionary": str(dpath)}
            up = run_method(m, y, task.op, prior, cfg, [1, 2], upstream=up, task=task)
        assert up.x_hat.shape == (2, 3, 128, 128), name
        ok = ~np.asarray(up.diagnostics["diverged"], bool)
        assert torch.isfinite(up.x_hat[torch.from_numpy(ok)]).all(), name
        ran.append(name)
    assert {"csgm", "iagan", "iagan_bp", "yeh", "dip", "sparse"} <= set(ran)
    # IAGAN with the PGAN too (vmap over the equalized layers)
    task = make_task("sr4", 128)
    y = corrupt(x, task, ["a", "b"], 0)
    up = run_method("csgm", y, task.op, pgan, {"iterations": 10, "restarts": 2}, [1, 2], task=task)
    r = run_method("iagan", y, task.op, pgan, {"iterations": 3}, [1, 2], upstream=up, task=task)
    ok = ~np.asarray(r.diagnostics["diverged"], bool)
    assert r.x_hat.shape == (2, 3, 128, 128) and ok.any() and torch.isfinite(r.x_hat[torch.from_numpy(ok)]).all()
    assert all(f for f, good in zip(r.diagnostics["failure"], ok) if not good)     # flagged with a reason


# ----------------------------------------------------------------------------- planning
def test_workflow_refuses_yeh_with_a_began_and_a_size_mismatch(tmp_path):
    """Before any job: yeh with a BEGAN the workflow would train, and a prior whose
    size differs from image_size."""
    yaml = pytest.importorskip("yaml")
    from workflow_helpers import copy_workflow, snakemake

    wd = copy_workflow(tmp_path / "wf")
    cfg = {"name": "b128", "image_size": 128, "tasks": ["sr4"], "methods": ["input", "yeh"],
           "data": {"source": "demo"},
           "prior": {"checkpoint": "b", "train": True,
                     "training": {"arch": "began", "image_size": 128, "nz": 64, "ngf": 8, "ndf": 8}}}
    (wd / "c.yaml").write_text(yaml.safe_dump(cfg))
    r = snakemake(wd, "-n", "--configfile", "c.yaml")
    assert r.returncode != 0 and "auto-encoder" in r.stderr + r.stdout
    cfg["methods"] = ["input", "csgm"]
    cfg["prior"]["training"]["image_size"] = 64
    cfg["prior"]["training"]["arch"] = "dcgan"
    (wd / "c.yaml").write_text(yaml.safe_dump(cfg))
    r = snakemake(wd, "-n", "--configfile", "c.yaml")
    assert r.returncode != 0 and "makes 64x64 images but image_size is 128" in r.stderr + r.stdout
    cfg["prior"]["training"].update(arch="began", image_size=128)
    (wd / "c.yaml").write_text(yaml.safe_dump(cfg))
    r = snakemake(wd, "-n", "--configfile", "c.yaml")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "train_gan" in r.stdout


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_began_csgm_and_iagan_on_cuda_are_batch_independent():
    torch.manual_seed(0)
    P = Prior(G=BEGANGenerator(nz=64, n=16, image_size=128).eval(),
              D=BEGANDiscriminator(n=16, nz=64, image_size=128).eval()).to("cuda")
    task = make_task("sr4", 128)
    x = _smooth_images(3, 128)
    y = corrupt(x, task, ["a", "b", "c"], 0).cuda()
    op = task.op.to("cuda")
    up = run_method("csgm", y, op, P, {"iterations": 20, "restarts": 2}, [1, 2, 3], task=task)
    r = run_method("iagan", y, op, P, {"iterations": 10}, [1, 2, 3], upstream=up, task=task)
    up1 = run_method("csgm", y[1:2], op, P, {"iterations": 20, "restarts": 2}, [2], task=task)
    r1 = run_method("iagan", y[1:2], op, P, {"iterations": 10}, [2], upstream=up1, task=task)
    assert torch.isfinite(r.x_hat).all()
    # microbatch 1: the same kernels either way (CUDA's atomics may move the last bits without
    # torch.use_deterministic_algorithms, so a tolerance here, not bitwise as on the CPU)
    assert torch.allclose(r.x_hat[1], r1.x_hat[0], atol=1e-4)
