"""pytorch_GAN_zoo PGAN checkpoints: safe reading, the architecture, conversion.

Oracle: a checkpoint written in the zoo's exact format - ``torch.save`` of
``{'config': BaseConfig, 'netG', 'netD', 'avgG'}`` with a stand-in class
pickled under ``models.utils.config.BaseConfig`` and the zoo's state-dict key
names - whose networks are evaluated by a functional forward written here
from the zoo's ``progressive_conv_net.py`` (``zoo_G`` / ``zoo_D``: a
straight transcription over the state dict, independent of
:mod:`ganrestore.priors.pgan`'s modules).  The loader must reproduce its
outputs for fixed ``z``, in both torch.save formats, and refuse any other
global without running it.
"""

from __future__ import annotations

import io
import json
import math
import sys
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganrestore.priors import load_prior
from ganrestore.priors.pgan import (PGANDiscriminator, PGANGenerator, UnsafeCheckpointError, convert_zoo_checkpoint,
                                    minibatch_stddev, networks_from_zoo, pickle_globals, read_zoo_checkpoint)

DEPTHS = [16, 16, 8]          # 4 -> 8 -> 16 px
NZ = 12


# ----------------------------------------------------------------------------- the zoo's format
class _StandInConfig:
    """What the zoo pickles: models.utils.config.BaseConfig, attributes only."""


def zoo_config(depths=DEPTHS, nz=NZ, alpha=0.0, mbstd=True, loss="WGANGP", **extra):
    cfg = {"depthScale0": depths[0], "depthOtherScales": list(depths[1:]), "latentVectorDim": nz,
           "noiseVectorDim": nz, "categoryVectorDim": 0, "dimOutput": 3, "leakyReluLeak": 0.2,
           "perChannelNormalization": True, "miniBatchStdDev": mbstd, "equalizedlR": True,
           "initBiasToZero": True, "alpha": alpha, "lossCriterion": loss, "lambdaGP": 10.0, "epsilonD": 0.001,
           "learningRate": 0.001, "attribKeysOrder": None, "weightConditionG": 0.0, "weightConditionD": 0.0,
           "GDPP": False}
    cfg.update(extra)
    return cfg


def zoo_states(depths=DEPTHS, nz=NZ, seed=0, old_keys=False):
    """Random netG / netD state dicts with the zoo's key names (N(0, 1) weights, as
    its equalized layers initialise; small random biases)."""
    g = torch.Generator().manual_seed(seed)

    def W(*shape):
        return torch.randn(*shape, generator=g)

    def B(n):
        return 0.1 * torch.randn(n, generator=g)

    mod = "" if old_keys else "module."
    G, D = {}, {}
    d0 = depths[0]
    G[f"formatLayer.{mod}weight"], G[f"formatLayer.{mod}bias"] = W(16 * d0, nz), B(16 * d0)
    G[f"groupScale0.0.{mod}weight"], G[f"groupScale0.0.{mod}bias"] = W(d0, d0, 3, 3), B(d0)
    G[f"toRGBLayers.0.{mod}weight"], G[f"toRGBLayers.0.{mod}bias"] = W(3, d0, 1, 1), B(3)
    for i, (prev, d) in enumerate(zip(depths[:-1], depths[1:])):
        G[f"scaleLayers.{i}.0.{mod}weight"], G[f"scaleLayers.{i}.0.{mod}bias"] = W(d, prev, 3, 3), B(d)
        G[f"scaleLayers.{i}.1.{mod}weight"], G[f"scaleLayers.{i}.1.{mod}bias"] = W(d, d, 3, 3), B(d)
        G[f"toRGBLayers.{i + 1}.{mod}weight"], G[f"toRGBLayers.{i + 1}.{mod}bias"] = W(3, d, 1, 1), B(3)
    D[f"decisionLayer.{mod}weight"], D[f"decisionLayer.{mod}bias"] = W(1, d0), B(1)
    D[f"fromRGBLayers.0.{mod}weight"], D[f"fromRGBLayers.0.{mod}bias"] = W(d0, 3, 1, 1), B(d0)
    D[f"groupScaleZero.0.{mod}weight"], D[f"groupScaleZero.0.{mod}bias"] = W(d0, d0 + 1, 3, 3), B(d0)
    D[f"groupScaleZero.1.{mod}weight"], D[f"groupScaleZero.1.{mod}bias"] = W(d0, 16 * d0), B(d0)
    for i, (prev, d) in enumerate(zip(depths[:-1], depths[1:])):
        D[f"scaleLayers.{i}.0.{mod}weight"], D[f"scaleLayers.{i}.0.{mod}bias"] = W(d, d, 3, 3), B(d)
        D[f"scaleLayers.{i}.1.{mod}weight"], D[f"scaleLayers.{i}.1.{mod}bias"] = W(prev, d, 3, 3), B(prev)
        D[f"fromRGBLayers.{i + 1}.{mod}weight"], D[f"fromRGBLayers.{i + 1}.{mod}bias"] = W(d, 3, 1, 1), B(d)
    return G, D


def zoo_checkpoint_bytes(cfg=None, seed=0, old_keys=False, legacy=False, config_obj=None, extra=None,
                         module_attrs=None, protocol=2) -> bytes:
    """A torch.save file exactly as the zoo writes it; ``config_obj`` replaces the config,
    ``module_attrs`` are more classes of the stand-in ``models.utils.config``."""
    cfg = cfg or zoo_config()
    G, D = zoo_states([cfg["depthScale0"]] + cfg["depthOtherScales"], cfg["latentVectorDim"], seed, old_keys)
    avg = {k: v + 0.01 for k, v in G.items()}          # the averaged generator differs from netG
    pkg = [types.ModuleType(n) for n in ("models", "models.utils", "models.utils.config")]
    saved = {m.__name__: sys.modules.get(m.__name__) for m in pkg}
    _StandInConfig.__module__, _StandInConfig.__qualname__ = "models.utils.config", "BaseConfig"
    pkg[2].BaseConfig = _StandInConfig
    for k, v in (module_attrs or {}).items():
        setattr(pkg[2], k, v)
    try:
        for m in pkg:
            sys.modules[m.__name__] = m
        conf = config_obj
        if conf is None:
            conf = _StandInConfig()
            conf.__dict__.update(cfg)
        blob = {"config": conf, "netG": G, "netD": D, "avgG": avg, **(extra or {})}
        buf = io.BytesIO()
        torch.save(blob, buf, _use_new_zipfile_serialization=not legacy, pickle_protocol=protocol)
        return buf.getvalue()
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old
        _StandInConfig.__module__, _StandInConfig.__qualname__ = __name__, "_StandInConfig"


# ----------------------------------------------------------------------------- the oracle
def _eq(x, w, b, conv=True, pad=0):
    """The zoo's ConstrainedLayer: module(x) * sqrt(2 / fan_in), bias included."""
    c = math.sqrt(2.0 / np.prod(w.shape[1:]))
    return (F.conv2d(x, w, b, padding=pad) if conv else F.linear(x, w, b)) * c


def _pn(x):
    return x * ((x ** 2).mean(dim=1, keepdim=True) + 1e-8).rsqrt()


def _k(s, name):
    return s[name] if name in s else s[name.replace("module.", "")]


def zoo_G(s, z, n_scales, alpha=0.0):
    """progressive_conv_net.GNet.forward, transcribed over the state dict."""
    lr = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731
    x = _pn(z).view(z.shape[0], -1)
    x = lr(_eq(x, _k(s, "formatLayer.module.weight"), _k(s, "formatLayer.module.bias"), conv=False))
    x = _pn(x.view(x.shape[0], -1, 4, 4))
    x = _pn(lr(_eq(x, _k(s, "groupScale0.0.module.weight"), _k(s, "groupScale0.0.module.bias"), pad=1)))
    up = lambda t: t.repeat_interleave(2, 2).repeat_interleave(2, 3)  # noqa: E731  (Upscale2d)
    y = None
    if alpha > 0 and n_scales == 1:
        y = up(_eq(x, _k(s, "toRGBLayers.0.module.weight"), _k(s, "toRGBLayers.0.module.bias")))
    for scale in range(n_scales):
        x = up(x)
        for j in range(2):
            x = _pn(lr(_eq(x, _k(s, f"scaleLayers.{scale}.{j}.module.weight"),
                           _k(s, f"scaleLayers.{scale}.{j}.module.bias"), pad=1)))
        if alpha > 0 and scale == n_scales - 2:
            y = up(_eq(x, _k(s, f"toRGBLayers.{scale + 1}.module.weight"), _k(s, f"toRGBLayers.{scale + 1}.module.bias")))
    x = _eq(x, _k(s, f"toRGBLayers.{n_scales}.module.weight"), _k(s, f"toRGBLayers.{n_scales}.module.bias"))
    if alpha > 0:
        x = alpha * y + (1 - alpha) * x
    return x


def zoo_mbstd(x, group=4):
    """mini_batch_stddev_module.miniBatchStdDev, transcribed."""
    size = x.size()
    sub = min(size[0], group)
    if size[0] % sub != 0:
        sub = size[0]
    G = size[0] // sub
    if sub > 1:
        y = x.view(-1, sub, size[1], size[2], size[3])
        y = torch.sqrt(torch.var(y, 1) + 1e-8).view(G, -1).mean(1).view(G, 1)
        y = y.expand(G, size[2] * size[3]).view(G, 1, 1, size[2], size[3]).expand(G, sub, -1, -1, -1)
        y = y.contiguous().view(-1, 1, size[2], size[3])
    else:
        y = torch.zeros(x.size(0), 1, x.size(2), x.size(3))
    return torch.cat([x, y], dim=1)


def zoo_D(s, x, n_scales, mbstd_const=None):
    """progressive_conv_net.DNet.forward (alpha = 0), transcribed; ``mbstd_const``
    replaces the batch statistic by a constant channel."""
    lr = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731
    x = lr(_eq(x, _k(s, f"fromRGBLayers.{n_scales}.module.weight"), _k(s, f"fromRGBLayers.{n_scales}.module.bias")))
    for i in reversed(range(n_scales)):
        for j in range(2):
            x = lr(_eq(x, _k(s, f"scaleLayers.{i}.{j}.module.weight"), _k(s, f"scaleLayers.{i}.{j}.module.bias"),
                       pad=1))
        x = F.avg_pool2d(x, (2, 2))
    if mbstd_const is None:
        x = zoo_mbstd(x)
    else:
        x = torch.cat([x, torch.full((x.shape[0], 1, *x.shape[2:]), float(mbstd_const))], 1)
    x = lr(_eq(x, _k(s, "groupScaleZero.0.module.weight"), _k(s, "groupScaleZero.0.module.bias"), pad=1))
    x = lr(_eq(x.flatten(1), _k(s, "groupScaleZero.1.module.weight"), _k(s, "groupScaleZero.1.module.bias"),
               conv=False))
    return _eq(x, _k(s, "decisionLayer.module.weight"), _k(s, "decisionLayer.module.bias"), conv=False)


pytestmark = pytest.mark.usefixtures("one_thread")


def _write(tmp_path, data, name="celebaHQ_test-0000.pth"):
    p = tmp_path / name
    p.write_bytes(data)
    return p


# ----------------------------------------------------------------------------- reading + architecture
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize("old_keys", [False, True], ids=["module-keys", "old-keys"])
def test_loader_reproduces_the_zoo_generator_and_critic(tmp_path, legacy, old_keys):
    p = _write(tmp_path, zoo_checkpoint_bytes(old_keys=old_keys, legacy=legacy))
    ck = read_zoo_checkpoint(p)
    assert ck["config"]["depthOtherScales"] == DEPTHS[1:] and ck["config"]["lossCriterion"] == "WGANGP"
    G, D = networks_from_zoo(ck)
    z = torch.randn(5, NZ, generator=torch.Generator().manual_seed(3))
    ref_avg = {k: v for k, v in ck["avgG"].items()}
    with torch.no_grad():
        out = G(z)
        want = zoo_G(ref_avg, z, len(DEPTHS) - 1)
        assert out.shape == (5, 3, 16, 16)
        assert torch.allclose(out, want, rtol=1e-5, atol=1e-5), (out - want).abs().max()
        # netG instead of the averaged generator
        Gn, _ = networks_from_zoo(ck, "netG")
        assert torch.allclose(Gn(z), zoo_G(ck["netG"], z, len(DEPTHS) - 1), rtol=1e-5, atol=1e-5)
        assert not torch.allclose(Gn(z), out)
        # the critic with the zoo's batch statistic (groups of 4; 8 images = 2 groups)
        x = torch.tanh(torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(4)))
        D.mbstd_batch = True
        assert torch.allclose(D(x), zoo_D(ck["netD"], x, len(DEPTHS) - 1), rtol=1e-5, atol=1e-5)
        # fixed channel (the restoration setting): each image alone
        D.mbstd_batch = False
        D.mbstd_value.fill_(0.37)
        assert torch.allclose(D(x), zoo_D(ck["netD"], x, len(DEPTHS) - 1, 0.37), rtol=1e-5, atol=1e-5)
        # no batch-mate changes an image's score (up to kernel rounding)
        assert torch.allclose(D(x)[2:3], D(x[2:3]), rtol=1e-6, atol=1e-6)


def test_alpha_blending_matches_the_zoo():
    cfg = zoo_config(alpha=0.4)
    Gs, _ = zoo_states()
    from ganrestore.priors.pgan import architectures, _load_mapped, _map_generator_key  # noqa: PLC0415
    ga, _ = architectures(cfg)
    G = PGANGenerator(**{k: v for k, v in ga.items() if k != "name"}).eval()
    _load_mapped(G, Gs, _map_generator_key, "test")
    assert G.to_rgb_low is not None
    z = torch.randn(3, NZ)
    with torch.no_grad():
        assert torch.allclose(G(z), zoo_G(Gs, z, len(DEPTHS) - 1, alpha=0.4), rtol=1e-5, atol=1e-5)


class _Payload:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))      # would create the file if it ran


@pytest.mark.parametrize("protocol", [2, 4], ids=["GLOBAL", "STACK_GLOBAL"])
def test_reduce_payload_is_refused_without_running(tmp_path, protocol):
    marker = tmp_path / "pwned"
    p = _write(tmp_path, zoo_checkpoint_bytes(config_obj=_Payload(str(marker)), protocol=protocol))
    assert "builtins.open" in pickle_globals(p.read_bytes()) or "io.open" in pickle_globals(p.read_bytes())
    with pytest.raises(UnsafeCheckpointError, match=r"open.*outside the allowlist.*nothing was executed"):
        read_zoo_checkpoint(p)
    assert not marker.exists()


def test_any_other_global_is_refused(tmp_path):
    # a whole module pickled instead of a state dict
    p = _write(tmp_path, zoo_checkpoint_bytes(extra={"extra": torch.nn.Linear(2, 2)}), "a.pth")
    with pytest.raises(UnsafeCheckpointError, match=r"torch\.nn\.modules\.linear\.Linear"):
        read_zoo_checkpoint(p)
    # another class under the zoo's module path
    Other = type("Other", (), {"__module__": "models.utils.config"})
    data = zoo_checkpoint_bytes(config_obj=Other(), module_attrs={"Other": Other})
    with pytest.raises(UnsafeCheckpointError, match=r"models\.utils\.config\.Other"):
        read_zoo_checkpoint(_write(tmp_path, data, "b.pth"))


def test_baseconfig_holding_more_than_plain_data_is_refused(tmp_path):
    cfg = zoo_config(attribKeysOrder=torch.zeros(2))     # a tensor among the attributes
    p = _write(tmp_path, zoo_checkpoint_bytes(cfg))
    with pytest.raises(UnsafeCheckpointError, match=r"attribKeysOrder.*not plain data"):
        read_zoo_checkpoint(p)


def test_not_a_zoo_checkpoint_is_refused(tmp_path):
    p = tmp_path / "x.pth"
    torch.save({"weights": torch.zeros(2)}, p)
    with pytest.raises(ValueError, match="not a pytorch_GAN_zoo checkpoint"):
        read_zoo_checkpoint(p)
    p.write_bytes(b"garbage" * 10)
    with pytest.raises(UnsafeCheckpointError):
        read_zoo_checkpoint(p)


def test_conditional_or_mismatched_states_are_refused(tmp_path):
    p = _write(tmp_path, zoo_checkpoint_bytes(zoo_config(categoryVectorDim=3)))
    with pytest.raises(ValueError, match="conditional PGAN"):
        networks_from_zoo(read_zoo_checkpoint(p))
    # the config claims wider layers than the weights hold
    ck = read_zoo_checkpoint(_write(tmp_path, zoo_checkpoint_bytes(), "ok.pth"))
    ck["config"]["depthScale0"] = 32
    with pytest.raises(ValueError, match=r"formatLayer.*shape"):
        networks_from_zoo(ck)


# ----------------------------------------------------------------------------- conversion
def test_conversion_writes_a_prior_checkpoint_with_provenance(tmp_path):
    p = _write(tmp_path, zoo_checkpoint_bytes())
    stem = convert_zoo_checkpoint(p, tmp_path / "conv" / "pg", url="http://example/x.pth", mbstd_groups=3)
    P = load_prior(stem, device="cpu")
    meta = json.loads((tmp_path / "conv" / "pg.json").read_text())
    assert meta["source_sha256"] == __import__("hashlib").sha256(p.read_bytes()).hexdigest()
    assert meta["zoo_config"]["depthOtherScales"] == DEPTHS[1:] and meta["generator"] == "avgG"
    assert P.z_dist == "normal" and P.d_kind == "critic" and P.G.image_size == 16
    ck = read_zoo_checkpoint(p)
    z = torch.randn(4, NZ)
    with torch.no_grad():
        assert torch.allclose(P.G(z), zoo_G(ck["avgG"], z, 2), rtol=1e-5, atol=1e-5)
        # the fixed minibatch channel: the mean group statistic of 3 groups of 4 avgG samples
        g = torch.Generator().manual_seed(0)
        vals = []
        for _ in range(3):
            f = P.D.features_4x4(P.G(torch.randn(4, NZ, generator=g)))
            vals.append(float(torch.sqrt(f.var(0) + 1e-8).mean()))
        assert meta["mbstd_value"] == pytest.approx(np.mean(vals), rel=1e-5)
        assert float(P.D.mbstd_value) == pytest.approx(np.mean(vals), rel=1e-6)
    with pytest.raises(ValueError, match=r"makes 16x16 images but image_size is 128"):
        convert_zoo_checkpoint(p, tmp_path / "conv" / "bad", expect_size=128)
    assert not (tmp_path / "conv" / "bad.json").exists()


def test_minibatch_stddev_matches_the_zoo():
    x = torch.randn(8, 5, 4, 4)
    ref = zoo_mbstd(x)[:, -1, 0, 0]
    assert torch.allclose(minibatch_stddev(x), ref, atol=1e-6)
    assert torch.equal(minibatch_stddev(x[:1]), torch.zeros(1))       # a batch of one: zeros (the zoo's)
    x6 = torch.randn(6, 5, 4, 4)                                        # 4 does not divide 6: one group
    assert torch.allclose(minibatch_stddev(x6), zoo_mbstd(x6)[:, -1, 0, 0], atol=1e-6)


def test_architecture_edits_in_the_sidecar_are_refused(tmp_path):
    from ganrestore.priors import save_prior

    G, D = PGANGenerator(nz=8, depths=[8, 8]).eval(), PGANDiscriminator(depths=[8, 8]).eval()
    stem = save_prior(tmp_path / "p", G, D, {})
    jp = tmp_path / "p.json"
    meta = json.loads(jp.read_text())
    for part, edit, match in [("G", {"depths": [8, 16]}, "shape differs"),
                              ("G", {"depths": "8,8"}, "depths must be a list"),
                              ("G", {"alpha": 1.5}, r"alpha must be a number in \[0, 1\]"),
                              ("G", {"activation": "relu"}, "activation must be one of"),
                              ("D", {"mbstd": 1}, "mbstd must be true or false"),
                              ("D", {"depths": [8] * 11}, "1-10 positive integers")]:
        bad = json.loads(json.dumps(meta))
        bad[part]["arch"].update(edit)
        jp.write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=match):
            load_prior(stem, device="cpu")


# ----------------------------------------------------------------------------- methods with a PGAN
def _tiny_pgan_prior(depths=(8, 8, 8), nz=8):
    from ganrestore.priors import Prior

    torch.manual_seed(0)
    G, D = PGANGenerator(nz=nz, depths=list(depths)).eval(), PGANDiscriminator(depths=list(depths)).eval()
    return Prior(G=G, D=D)


def test_iagan_weight_copies_use_vmap_and_match_per_image_generators():
    """BatchedGenerator (vmap over functional_call) = each image's own weight copy."""
    from torch.func import functional_call

    from ganrestore.methods.gan_iagan import BatchedGenerator

    P = _tiny_pgan_prior()
    bg = BatchedGenerator(P.G)
    assert bg.mode == "vmap"
    params = bg.stacked_params(3)
    with torch.no_grad():
        for k, v in params.items():
            v.add_(0.05 * torch.randn_like(v))
    z = torch.randn(3, 8)
    out = bg(params, z)
    for b in range(3):
        ref = functional_call(P.G, {k: v[b] for k, v in params.items()}, (z[b:b + 1],))
        assert torch.allclose(out[b:b + 1], ref, atol=1e-5)
    out.square().sum().backward()                    # every copied weight is used: per-image gradients
    assert all(v.grad is not None and v.grad.shape == v.shape for v in params.values())


def test_yeh_uses_the_pgan_critic_as_its_logit():
    from ganrestore.methods import run_method
    from ganrestore.tasks import corrupt, make_task

    P = _tiny_pgan_prior()
    task = make_task("sr4", 16)
    x = torch.rand(2, 3, 16, 16)
    y = corrupt(x, task, ["a", "b"], 0)
    r = run_method("yeh", y, task.op, P, {"iterations": 5, "restarts": 1}, [1, 2], task=task)
    assert r.x_hat.shape == (2, 3, 16, 16) and bool(r.diagnostics["d_prior_used"].all())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_pgan_on_cuda_matches_the_cpu(tmp_path):
    p = _write(tmp_path, zoo_checkpoint_bytes())
    G, D = networks_from_zoo(read_zoo_checkpoint(p))
    z = torch.randn(4, NZ)
    with torch.no_grad():
        ref, refd = G(z), D(G(z))
        Gc, Dc = G.cuda(), D.cuda()
        out = Gc(z.cuda()).cpu()
        outd = Dc(Gc(z.cuda())).cpu()
    assert torch.allclose(out, ref, rtol=1e-3, atol=1e-3)
    assert torch.allclose(outd, refd, rtol=1e-3, atol=1e-3)


# ----------------------------------------------------------------------------- IAGAN's parameterisation
def ptrblck_params(s, n_scales):
    """The layers of ptrblck's PGGAN conversion (prog_gans_pytorch_inference/model.py, the
    generator the official IAGAN adapts), built from a zoo state dict: each layer's
    weight W as stored, WScaleLayer's ``scale`` (the He constant the zoo multiplies by)
    and ``b`` (the zoo's bias times that constant), all leaf tensors."""
    def layer(prefix):
        w = _k(s, f"{prefix}.module.weight").clone()
        c = math.sqrt(2.0 / np.prod(w.shape[1:]))
        return {"W": w.requires_grad_(True), "scale": torch.full((1,), c).requires_grad_(True),
                "b": (_k(s, f"{prefix}.module.bias") * c).clone().requires_grad_(True)}
    P = {"format": layer("formatLayer"), "s0": layer("groupScale0.0"), "rgb": layer(f"toRGBLayers.{n_scales}")}
    for i in range(n_scales):
        for j in range(2):
            P[f"s{i + 1}.{j}"] = layer(f"scaleLayers.{i}.{j}")
    return P


def ptrblck_G(P, z, n_scales):
    """ptrblck's block order (PixelNorm -> [Upsample] -> conv without bias -> x * scale + b ->
    LeakyReLU), on the zoo's architecture (a linear latent layer, two convolutions per scale)."""
    def ws(x, L, conv=True, pad=0):
        y = F.conv2d(x, L["W"], None, padding=pad) if conv else F.linear(x, L["W"])
        return y * L["scale"] + (L["b"].view(1, -1, 1, 1) if conv else L["b"])

    lr = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731
    x = lr(ws(_pn(z), P["format"], conv=False)).view(z.shape[0], -1, 4, 4)
    x = lr(ws(_pn(x), P["s0"], pad=1))
    for i in range(n_scales):
        x = _pn(x).repeat_interleave(2, 2).repeat_interleave(2, 3)
        x = lr(ws(x, P[f"s{i + 1}.0"], pad=1))
        x = lr(ws(_pn(x), P[f"s{i + 1}.1"], pad=1))
    return ws(_pn(x), P["rgb"])


def _official_pair(tmp_path):
    from ganrestore.priors.pgan import official_parameterisation

    ck = read_zoo_checkpoint(_write(tmp_path, zoo_checkpoint_bytes()))
    G, _ = networks_from_zoo(ck)
    return G, official_parameterisation(G), ck["avgG"]


def test_official_parameterisation_gives_the_same_images_and_adapts_like_ptrblcks_model(tmp_path):
    """Before adaptation: the zoo layers, their official re-expression and ptrblck's model
    give the same G(z).  One Adam step (IAGAN.py IA: Adam(G.parameters(), lr_G)) on
    the same loss: the official re-expression moves what ptrblck's model moves (same
    images after the step, same gains and output-unit biases); the zoo's own
    parameterisation does not (its bias step is c times smaller in output units, no gain)."""
    import copy

    G, Go, avg = _official_pair(tmp_path)
    n = len(DEPTHS) - 1
    P = ptrblck_params(avg, n)
    z = torch.randn(3, NZ, generator=torch.Generator().manual_seed(5))
    target = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        ref0 = ptrblck_G(P, z, n)
        assert torch.allclose(G(z), ref0, atol=1e-5) and torch.allclose(Go(z), ref0, atol=1e-5)
    names = [k for k, _ in Go.named_parameters()]
    assert {k.rsplit(".", 1)[1] for k in names} == {"weight", "gain", "bias"}
    assert sum(k.endswith(".gain") for k in names) == 2 * n + 3          # one gain per layer

    def step(params, forward, lr=1e-3):
        opt = torch.optim.Adam(params, lr=lr)
        opt.zero_grad()
        (forward() - target).pow(2).sum().backward()
        opt.step()

    step([t for L in P.values() for t in L.values()], lambda: ptrblck_G(P, z, n))
    step(list(Go.parameters()), lambda: Go(z))
    Gz = copy.deepcopy(G)
    step(list(Gz.parameters()), lambda: Gz(z))
    with torch.no_grad():
        ref1 = ptrblck_G(P, z, n)
        assert (ref1 - ref0).abs().max() > 1e-3                            # the step moved something
        assert torch.allclose(Go(z), ref1, atol=1e-5), (Go(z) - ref1).abs().max()
        assert not torch.allclose(Gz(z), ref1, atol=1e-3)
        # layer by layer: the gain and the output-unit bias as ptrblck's moved them
        zoo_names = {"fc": "formatLayer", "blocks.0.0": "groupScale0.0", "to_rgb": f"toRGBLayers.{n}",
                     "blocks.1.1": "scaleLayers.0.1"}
        pairs = {"fc": "format", "blocks.0.0": "s0", "to_rgb": "rgb", "blocks.1.1": "s1.1"}
        for ours, ref in pairs.items():
            mod = Go.get_submodule(ours)
            assert torch.allclose(mod.gain, P[ref]["scale"], atol=1e-7)
            assert torch.allclose(mod.bias, P[ref]["b"], atol=1e-6)
            assert torch.allclose(mod.weight, P[ref]["W"], atol=1e-6)
            eq = Gz.get_submodule(ours)
            b0 = _k(avg, zoo_names[ours] + ".module.bias")
            official_move = (mod.bias - eq.c * b0).abs()                      # output units
            zoo_move = (eq.c * eq.inner.bias - eq.c * b0).abs()
            assert torch.allclose(official_move, torch.full_like(official_move, 1e-3), rtol=0.01)   # Adam: lr
            assert torch.allclose(zoo_move, torch.full_like(zoo_move, 1e-3 * eq.c), rtol=0.01)      # c lr
            assert abs(float(mod.gain) - eq.c) == pytest.approx(1e-3, rel=0.01)                     # the gain moved


def test_iagan_adapts_the_official_parameters_of_a_pgan(tmp_path):
    """One image-adaptive iteration through image_adaptive / restore_iagan (per-image
    weight copies under vmap) = one joint Adam step of ptrblck's model and z, per image;
    pgan_parameterisation: zoo keeps the converted layers (and differs)."""
    from ganrestore.methods import Restoration, run_method
    from ganrestore.methods.gan_core import measurement_loss
    from ganrestore.priors import Prior, to_unit
    from ganrestore.tasks import make_task

    G, _, avg = _official_pair(tmp_path)
    n = len(DEPTHS) - 1
    task = make_task("sr4", 16)
    g = torch.Generator().manual_seed(7)
    y = task.op.A(torch.rand(2, 3, 16, 16, generator=g))
    z0 = torch.randn(2, NZ, generator=g)
    up = Restoration(torch.zeros(2, 3, 16, 16), {"diverged": np.zeros(2, bool), "seconds": np.zeros(2)},
                     {"z": z0.numpy()})
    prior = Prior(G=G, D=None)
    cfg = {"iterations": 1, "lr_theta": 1e-3, "lr_z": 1e-4}
    res = {k: run_method("iagan", y, task.op, prior, {**cfg, "pgan_parameterisation": k}, [1, 2], upstream=up,
                         task=task) for k in ("official", "zoo")}
    assert list(res["official"].diagnostics["parameterisation"]) == ["official"] * 2
    assert list(res["zoo"].diagnostics["parameterisation"]) == ["zoo"] * 2
    for b in range(2):
        P = ptrblck_params(avg, n)
        z = z0[b:b + 1].clone().requires_grad_(True)
        opt = torch.optim.Adam([{"params": [t for L in P.values() for t in L.values()], "lr": 1e-3},
                                {"params": [z], "lr": 1e-4}])
        loss0 = measurement_loss(task.op, to_unit(ptrblck_G(P, z, n)), y[b:b + 1])
        opt.zero_grad()
        loss0.sum().backward()
        opt.step()
        with torch.no_grad():
            x1 = to_unit(ptrblck_G(P, z, n)).clamp(0, 1)
            loss1 = measurement_loss(task.op, x1, y[b:b + 1])
        assert float(loss1) < float(loss0.detach())                           # the step is the kept iterate
        assert torch.allclose(res["official"].x_hat[b:b + 1], x1, atol=1e-5), \
            (res["official"].x_hat[b:b + 1] - x1).abs().max()
        assert not torch.allclose(res["zoo"].x_hat[b:b + 1], x1, atol=1e-4)
