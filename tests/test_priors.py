"""GAN priors: architectures, the checkpoint format, training steps, the teacher, the demo prior."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ganrestore.priors import (TEACHER_SPEC, Discriminator, Generator, Prior, fold_batchnorm, load_prior,
                               load_teacher_generator, save_prior)
from ganrestore.priors.checkpoint import json_path, weights_path
from ganrestore.priors.dcgan import teacher_weights_path
from ganrestore.priors.train import (TrainConfig, dcgan_init_, discriminator_means, image_grid,
                                     train_gan, train_step)

DEMO = Path(__file__).resolve().parents[1] / "ganrestore/priors/checkpoints/demo_dcgan32"


def _pair(ngf=8, ndf=8, seed=0):
    torch.manual_seed(seed)
    G, D = Generator(ngf=ngf), Discriminator(ndf=ndf)
    G.apply(dcgan_init_)
    D.apply(dcgan_init_)
    return G.eval(), D.eval()


# ----------------------------------------------------------------------------- architectures
@pytest.mark.parametrize("ngf,ndf", [(8, 8), (32, 16)])
def test_generator_and_discriminator_shapes(ngf, ndf):
    G, D = _pair(ngf, ndf)
    z = torch.randn(5, 100)
    x = G(z)
    assert x.shape == (5, 3, 64, 64)
    assert x.abs().max() <= 1.0                      # tanh output range
    assert torch.equal(G(z[:, :, None, None]), x)    # (B,nz) and (B,nz,1,1) agree
    assert D(x).shape == (5,)                        # one logit per image
    # the channel widths follow DCGAN: ngf*8 at 4x4 ... 3 channels at 64x64
    assert G.main[0].weight.shape == (100, ngf * 8, 4, 4)
    assert D.main[-1].weight.shape == (1, ndf * 8, 4, 4)


def test_standard_width_matches_the_teacher_state_dict():
    """Oracle: the pretrained gan-face-generate file defines the DCGAN-64 G layout."""
    blob = torch.load(teacher_weights_path(), map_location="cpu", weights_only=True)
    ref = blob.get("netG_state_dict", blob)
    ours = Generator(nz=100, ngf=64).state_dict()
    assert {k: tuple(v.shape) for k, v in ref.items()} == {k: tuple(v.shape) for k, v in ours.items()}


# ----------------------------------------------------------------------------- checkpoints
def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    G, D = _pair(8, 8)
    # make the batch-norm running statistics non-trivial
    G.train(); D.train()
    with torch.no_grad():
        D(G(torch.randn(6, 100)))
    G.eval(); D.eval()
    stem = save_prior(tmp_path / "p", G, D, {"steps": 7, "regenerate": "python x.py"})
    meta = json.loads(json_path(stem).read_text())
    assert meta["steps"] == 7 and meta["regenerate"] == "python x.py"
    assert meta["G"]["arch"] == G.arch() and meta["D"]["arch"] == D.arch()
    for spec in (stem, json_path(stem), weights_path(stem), str(stem)):
        P = load_prior(spec, device="cpu")
        assert isinstance(P, Prior) and not P.G.training and not P.D.training
        z = torch.randn(3, 100)
        with torch.no_grad():
            assert torch.equal(P.G(z), G(z))
            assert torch.equal(P.D(G(z)), D(G(z)))
        assert P.G.main[0].weight.dtype == torch.float32


def test_float16_storage_loads_as_float32_and_stays_close(tmp_path):
    G, D = _pair(8, 8)
    stem = save_prior(tmp_path / "h", G, D, {}, dtype=torch.float16)
    assert json.loads(json_path(stem).read_text())["storage_dtype"] == "float16"
    P = load_prior(stem, device="cpu")
    assert P.G.main[0].weight.dtype == torch.float32
    # oracle: weights rounded to fp16 and back
    ref = {k: (v.half().float() if v.is_floating_point() else v) for k, v in G.state_dict().items()}
    for k, v in P.G.state_dict().items():
        assert torch.equal(v, ref[k]), k


def test_generator_only_checkpoint(tmp_path):
    G, _ = _pair(8, 8)
    P = load_prior(save_prior(tmp_path / "g", G, None, {}), device="cpu")
    assert P.D is None


def test_tampered_weights_are_refused(tmp_path):
    G, D = _pair(8, 8)
    stem = save_prior(tmp_path / "t", G, D, {})
    wp = weights_path(stem)
    raw = bytearray(wp.read_bytes())
    raw[-5] ^= 0x01                                   # one bit in the last tensor's data
    wp.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="sha256 mismatch") as e:
        load_prior(stem, device="cpu")
    assert "t.safetensors" in str(e.value)
    assert json.loads(json_path(stem).read_text())["sha256"] in str(e.value)


def test_architecture_mismatch_is_refused(tmp_path):
    G, D = _pair(8, 8)
    stem = save_prior(tmp_path / "a", G, D, {})
    jp = json_path(stem)
    meta = json.loads(jp.read_text())
    # the sidecar claims a wider generator than the file holds
    bad = json.loads(json.dumps(meta))
    bad["G"]["arch"]["ngf"] = 16
    jp.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="shape differs"):
        load_prior(stem, device="cpu")
    # the sidecar's tensor table disagrees with the file
    bad = json.loads(json.dumps(meta))
    bad["D"]["tensors"]["main.0.weight"] = [1, 2, 3, 4]
    jp.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="does not match the sidecar"):
        load_prior(stem, device="cpu")
    # an unknown architecture name
    bad = json.loads(json.dumps(meta))
    bad["G"]["arch"]["name"] = "stylegan2"
    jp.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="unknown architecture"):
        load_prior(stem, device="cpu")


def test_missing_files_are_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="sidecar"):
        load_prior(tmp_path / "nothing", device="cpu")


def _edit_sidecar(stem, edit, rehash=False):
    """Apply ``edit(meta)`` to the sidecar; ``rehash``: record the weights' current sha256 too."""
    from ganrestore.io import sha256_file

    jp = json_path(stem)
    meta = json.loads(jp.read_text())
    edit(meta)
    if rehash:
        meta["sha256"] = sha256_file(weights_path(stem))
    jp.write_text(json.dumps(meta))


def test_edited_sidecar_width_is_refused_before_building(tmp_path, monkeypatch):
    """ngf: 1500 in the sidecar only: refused from the header's shapes; nothing is built on the CPU."""
    from ganrestore.priors import checkpoint

    stem = save_prior(tmp_path / "w", *_pair(8, 8), {})
    _edit_sidecar(stem, lambda m: m["G"]["arch"].update(ngf=1500))
    devices, build = [], checkpoint.build_network
    monkeypatch.setattr(checkpoint, "build_network",
                        lambda arch: devices.append(str(torch.get_default_device())) or build(arch))
    with pytest.raises(ValueError, match=r"w\.safetensors: G does not match architecture") as e:
        load_prior(stem, device="cpu")
    msg = str(e.value)
    assert "shape differs at G.main.0.weight: weights file [100, 64, 4, 4] vs [100, 12000, 4, 4]" in msg
    assert devices == ["meta"]                       # shapes only: no 4.7 GB allocation
    # the meta build costs nothing even for absurd widths
    assert checkpoint.expected_shapes({"name": "dcgan64_generator", "ngf": 10**6})[
        "main.0.weight"] == [100, 8 * 10**6, 4, 4]


@pytest.mark.parametrize("part,edit,match", [
    ("G", {"nz": 128}, r"G\.main\.0\.weight: weights file \[100, 64, 4, 4\] vs \[128, 64, 4, 4\]"),
    ("D", {"ndf": 16}, r"D\.main\.0\.weight: weights file \[8, 3, 4, 4\] vs \[16, 3, 4, 4\]"),
    ("G", {"ngf": "8"}, r"g\.json: G architecture: .*positive integers"),
    ("G", {"ngf": 0}, r"g\.json: G architecture: .*positive integers"),
    ("D", {"ndf": 8.0}, r"g\.json: D architecture: .*positive integers"),
    ("G", {"width": 3}, r"g\.json: G architecture: .*unknown keys \['width'\]"),
])
def test_sidecar_architecture_edits_are_refused_naming_the_key(tmp_path, part, edit, match):
    stem = save_prior(tmp_path / "g", *_pair(8, 8), {})
    _edit_sidecar(stem, lambda m: m[part]["arch"].update(edit))
    with pytest.raises(ValueError, match=match):
        load_prior(stem, device="cpu")


def test_corrupted_weights_header_or_sidecar_is_refused_naming_the_file(tmp_path):
    stem = save_prior(tmp_path / "c", *_pair(8, 8), {})
    wp = weights_path(stem)
    good = wp.read_bytes()
    # garbage in the JSON header, with a sidecar re-hashed to match (the sha256 check cannot help)
    wp.write_bytes(good[:8] + b"#" * 16 + good[24:])
    _edit_sidecar(stem, lambda m: None, rehash=True)
    with pytest.raises(ValueError, match=r"c\.safetensors: not a readable safetensors file"):
        load_prior(stem, device="cpu")
    # a header length past the end of the file, and a truncated data section
    for bad in (b"\xff" * 8 + good[8:], good[:-100]):
        wp.write_bytes(bad)
        _edit_sidecar(stem, lambda m: None, rehash=True)
        with pytest.raises(ValueError, match=r"c\.safetensors: not a readable safetensors file"):
            load_prior(stem, device="cpu")
    json_path(stem).write_text('{"format": ')
    with pytest.raises(ValueError, match=r"c\.json: not a readable JSON sidecar"):
        load_prior(stem, device="cpu")


# ----------------------------------------------------------------------------- training
def test_train_step_losses_match_the_gan_formulas():
    """Oracle: L_D = -log s(D(x)) - log(1 - s(D(G(z)))), L_G = -log s(D(G(z))) in numpy."""
    G, D = _pair(8, 8, seed=1)
    G.train(); D.train()
    real, z = torch.rand(4, 3, 64, 64) * 2 - 1, torch.randn(4, 100)
    with torch.no_grad():
        lr_ = D(real).double().numpy()
        lf_ = D(G(z)).double().numpy()
    # D's batch statistics make the no_grad pass above equal to the one in train_step
    G2, D2 = _pair(8, 8, seed=1)
    G2.train(); D2.train()
    oG = torch.optim.Adam(G2.parameters(), 2e-4, betas=(0.5, 0.999))
    oD = torch.optim.Adam(D2.parameters(), 2e-4, betas=(0.5, 0.999))
    out = train_step(G2, D2, oG, oD, real, z)
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    ld = np.mean(-np.log(sig(lr_))) + np.mean(-np.log(1 - sig(lf_)))
    assert out["loss_D"] == pytest.approx(ld, rel=1e-4)
    assert out["D_real"] == pytest.approx(sig(lr_).mean(), rel=1e-4)
    assert out["D_fake"] == pytest.approx(sig(lf_).mean(), rel=1e-4)
    assert math.isfinite(out["loss_G"]) and out["loss_G"] > 0


def test_a_few_training_steps_change_weights_and_keep_losses_finite(tmp_path):
    torch.manual_seed(0)
    data = torch.rand(8, 3, 64, 64)
    cfg = TrainConfig(steps=3, batch_size=4, ngf=8, ndf=8, sample_every=2, checkpoint_every=2,
                      log_every=1)
    s = train_gan(cfg, tmp_path / "run", data=data, device="cpu", progress=False)
    assert s["steps"] == 3
    rows = (tmp_path / "run/losses.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 3
    vals = np.array([[float(v) for v in r.split(",")[2:]] for r in rows[1:]])
    assert np.isfinite(vals).all()
    assert (tmp_path / "run/samples/step_000002.png").is_file()
    assert (tmp_path / "run/loss.png").is_file()
    P = load_prior(tmp_path / "run/prior", device="cpu")
    meta = P.provenance
    assert meta["steps"] == 3 and meta["completed"] and "train_gan.py" in meta["regenerate"]
    # the same initialisation, untrained
    torch.manual_seed(cfg.seed)
    G0, D0 = Generator(ngf=8), Discriminator(ndf=8)
    G0.apply(dcgan_init_); D0.apply(dcgan_init_)
    assert not torch.equal(P.G.main[0].weight, G0.main[0].weight)
    assert not torch.equal(P.D.main[0].weight, D0.main[0].weight)


def test_resumed_training_equals_uninterrupted(tmp_path):
    data = torch.rand(8, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    base = dict(batch_size=4, ngf=8, ndf=8, sample_every=0, checkpoint_every=0)
    train_gan(TrainConfig(steps=2, **base), tmp_path / "r", data=data, device="cpu", progress=False)
    train_gan(TrainConfig(steps=4, **base), tmp_path / "r", data=data, device="cpu", progress=False)
    train_gan(TrainConfig(steps=4, **base), tmp_path / "f", data=data, device="cpu", progress=False)
    a = load_prior(tmp_path / "r/prior", device="cpu").G.state_dict()
    b = load_prior(tmp_path / "f/prior", device="cpu").G.state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_image_grid_layout():
    x = torch.zeros(3, 3, 4, 4)
    x[1] = 1.0
    g = image_grid(x, nrow=2, pad=1)
    assert g.shape == (2 * 5 + 1, 2 * 5 + 1, 3)
    assert g[1:5, 1:5].max() == 0 and g[1:5, 6:10].min() == 1


# ----------------------------------------------------------------------------- teacher + demo
def test_teacher_loads_as_a_prior():
    P = load_prior(TEACHER_SPEC, device="cpu")
    assert P.D is None and P.G.arch() == {"name": "dcgan64_generator", "nz": 100, "ngf": 64, "nc": 3}
    assert len(P.provenance["sha256"]) == 64
    with torch.no_grad():
        x = P.G(torch.randn(2, 100))
    assert x.shape == (2, 3, 64, 64) and x.abs().max() <= 1
    ref = load_teacher_generator()
    assert torch.equal(ref.main[0].weight, P.G.main[0].weight)
    with pytest.raises(ValueError, match="unknown teacher"):
        load_prior("teacher:stylegan", device="cpu")


@pytest.mark.skipif(not json_path(DEMO).exists(), reason="demo checkpoint not committed yet")
def test_committed_demo_prior_loads_and_its_discriminator_prefers_real_faces():
    P = load_prior(DEMO, device="cpu")
    meta = P.provenance
    assert meta["G"]["arch"]["ngf"] == 32 and meta["D"]["arch"]["ndf"] == 32
    assert meta["regenerate"].startswith("python scripts/train_gan.py")
    assert weights_path(DEMO).stat().st_size + json_path(DEMO).stat().st_size < 25e6
    from ganrestore.priors.train import teacher_faces
    real = teacher_faces(64, seed=4321)              # held-out latents (training used seed*1000+2)
    m = discriminator_means(P.D, P.G, real, seed=4322)
    assert m["D_real_mean"] > m["D_fake_mean"]


def test_saved_checkpoint_files_get_the_usual_permissions(tmp_path):
    import os
    G, _ = _pair(8, 8)
    stem = save_prior(tmp_path / "m", G, None, {})
    umask = os.umask(0)
    os.umask(umask)
    for p in (weights_path(stem), json_path(stem)):
        assert (p.stat().st_mode & 0o777) == (0o666 & ~umask), p


def test_schema_training_defaults_equal_trainconfig_defaults():
    """With default settings, prior.train: true regenerates the committed demo prior."""
    yaml = pytest.importorskip("yaml")
    schema = yaml.safe_load((DEMO.parents[3] / "config/schema.yaml").read_text())
    props = schema["properties"]["prior"]["properties"]["training"]["properties"]
    defaults = {k: v.get("default") for k, v in props.items()}
    assert TrainConfig.from_dict(defaults) == TrainConfig()
    if json_path(DEMO).exists():
        meta = json.loads(json_path(DEMO).read_text())
        ran = dict(meta["training"], steps=meta["steps"])
        for k in ("steps", "batch_size", "ngf", "ndf", "nz", "lr", "beta1", "beta2", "seed",
                  "data", "teacher_pool"):
            assert ran[k] == defaults[k], k


@pytest.mark.parametrize("which", ["G", "D"])
def test_folded_batchnorm_network_computes_the_same_function(which):
    """``fold_batchnorm`` (used by the z-only searches) equals the eval-mode
    network with batch norm, for non-trivial running statistics and affine
    parameters, and leaves the original untouched."""
    torch.manual_seed(5)
    net = Generator(ngf=8) if which == "G" else Discriminator(ndf=8)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.3, 0.3)
    net.eval()
    inp = torch.randn(4, 100) if which == "G" else torch.rand(4, 3, 64, 64) * 2 - 1
    before = {k: v.clone() for k, v in net.state_dict().items()}
    folded = fold_batchnorm(net)
    with torch.no_grad():
        ref, out = net(inp), folded(inp)
    assert out.shape == ref.shape
    assert float((out - ref).abs().max()) < 1e-5 * max(1.0, float(ref.abs().max()))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert not any(p.requires_grad for p in folded.parameters())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


# ----------------------------------------------------------------------------- image sizes 64 to 1024
def test_lpips_is_chunked_at_large_sizes_without_changing_the_distances():
    """Oracle: the same pairs one call per pair."""
    from ganrestore.lpips import LPIPS, lpips_batch_size, lpips_distance

    assert lpips_batch_size(64, 64) == 64 and lpips_batch_size(1024, 1024) == 8
    assert lpips_batch_size(1024, 1024, max_bytes=1) == 1
    torch.manual_seed(0)
    model = LPIPS().eval()
    for p in model.lins.parameters():
        p.data.uniform_(0, 1)
    x, y = torch.rand(3, 3, 96, 96), torch.rand(3, 3, 96, 96)
    chunked = lpips_distance(x, y, model, max_bytes=256 * 96 * 96)       # one pair per call
    whole = lpips_distance(x, y, model)
    single = np.array([lpips_distance(x[i:i + 1], y[i:i + 1], model)[0] for i in range(3)])
    assert np.allclose(chunked, single, rtol=1e-5) and np.allclose(whole, single, rtol=1e-5)


def test_figures_draw_large_images_downscaled():
    from ganrestore.figures import MAX_DRAWN_SIDE, _hwc

    img = np.random.default_rng(0).random((3, 1024, 1024)).astype(np.float32)
    out = _hwc(img)
    assert out.shape == (MAX_DRAWN_SIDE, MAX_DRAWN_SIDE, 3)
    f = 1024 // MAX_DRAWN_SIDE
    assert np.allclose(out[1, 2], img[:, f:2 * f, 2 * f:3 * f].mean(axis=(1, 2)), atol=1e-6)
    assert _hwc(img[:, :64, :64]).shape == (64, 64, 3)


def test_celebahq_bilinear_and_box_downscaling_to_512():
    from PIL import Image

    from ganrestore.data.celebahq import resize_hq

    img = np.random.default_rng(1).integers(0, 256, (1024, 1024, 3), dtype=np.uint8)
    ref = np.asarray(Image.fromarray(img).resize((512, 512), Image.BILINEAR))
    assert np.array_equal(resize_hq(img, 512, "bilinear"), ref)
    box = resize_hq(img, 256, "box")
    assert box[3, 5, 1] == int(np.rint(img[12:16, 20:24, 1].mean()))
    assert resize_hq(img, 1024, "box") is img


def test_celeba_pgan128_protocol_is_the_zoos_crop():
    from ganrestore.data.celeba import apply_protocol, get_protocol

    img = np.random.default_rng(2).integers(0, 256, (218, 178, 3), dtype=np.uint8)
    out = apply_protocol(img, "pgan128")
    assert np.array_equal(out, img[121 - 64:121 + 64, 89 - 64:89 + 64])   # datasets.py celebaSetup
    assert get_protocol("pgan128", 128).size == 128


def test_sample_grids_of_large_priors_are_shown_small(tmp_path):
    from ganrestore.priors.pgan import PGANGenerator
    from ganrestore.priors.train import sample_grid, save_grid_png

    G = PGANGenerator(nz=4, depths=[2, 2, 2, 2, 2, 2, 2]).eval()          # 256 px
    x = sample_grid(G, 3, seed=1, chunk=2)
    assert x.shape == (3, 3, 256, 256) and x.device.type == "cpu"
    save_grid_png(tmp_path / "g.png", x, nrow=3)
    import matplotlib.image as mpimg
    assert mpimg.imread(tmp_path / "g.png").shape[:2] == (2 + 130, 2 + 3 * 130)


@pytest.mark.parametrize("name", ["sr16", "sr8_noise0.0392", "cs_fourier_0.3", "deblur_uniform9", "inpaint_center32",
                                  "colorize", "sr4_misaligned"])
def test_operators_at_512px_are_adjoint_and_gaussian_cs_is_refused(name):
    from ganrestore.tasks import make_task

    op = make_task(name, 512).op
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 512, 512, generator=g, dtype=torch.float32)
    Ax = op.A(x)
    y = torch.randn(Ax.shape, generator=g)
    lhs, rhs = float((Ax * y).sum()), float((x * op.A_adjoint(y)).sum())
    assert lhs == pytest.approx(rhs, rel=1e-4)
    with pytest.raises(ValueError, match="over the 4 GiB budget"):
        make_task("cs_gaussian_0.05", 256)       # 256 px: m/n <= 0.028 fits 4 GiB
