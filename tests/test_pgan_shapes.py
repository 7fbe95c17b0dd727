"""A pytorch_GAN_zoo checkpoint whose config disagrees with its tensors is refused
before any network is allocated (issue 30, class 1): the config's implied shapes
are compared on the meta device, as the safetensors loader compares a header
with its sidecar.  Non-finite zoo tensors and absurd configs are refused too."""

from __future__ import annotations

import pytest
import torch

from ganrestore.priors import pgan
from test_pgan import _write, zoo_checkpoint_bytes, zoo_config


@pytest.fixture
def constructions(monkeypatch):
    """The device each PGAN network was built on, in order (a spy on __init__)."""
    seen = []
    for cls in (pgan.PGANGenerator, pgan.PGANDiscriminator):
        orig = cls.__init__

        def spy(self, *a, _orig=orig, _name=cls.__name__, **k):
            seen.append((_name, str(torch.get_default_device())))
            _orig(self, *a, **k)

        monkeypatch.setattr(cls, "__init__", spy)
    return seen


def test_a_config_asking_for_a_bigger_network_is_refused_before_allocating(tmp_path, constructions):
    ck = pgan.read_zoo_checkpoint(_write(tmp_path, zoo_checkpoint_bytes()))
    ck["config"]["depthScale0"] = 1024                # formatLayer 16*1024 x 12; the tensors hold 16*16 x 12
    ck["config"]["depthOtherScales"] = [1024, 1024]
    with pytest.raises(ValueError, match=r"formatLayer.*shape.*refused before building"):
        pgan.networks_from_zoo(ck)
    assert constructions and all(dev == "meta" for _, dev in constructions), constructions


def test_a_matching_checkpoint_is_checked_on_meta_then_built_once(tmp_path, constructions):
    ck = pgan.read_zoo_checkpoint(_write(tmp_path, zoo_checkpoint_bytes()))
    G, D = pgan.networks_from_zoo(ck)
    assert [d for _, d in constructions] == ["meta", "meta", "cpu", "cpu"]
    assert G.fc.inner.weight.device.type == "cpu" and torch.isfinite(G.fc.inner.weight).all()


def test_non_finite_zoo_tensors_are_refused(tmp_path):
    ck = pgan.read_zoo_checkpoint(_write(tmp_path, zoo_checkpoint_bytes()))
    key = next(k for k in ck["netD"] if k.startswith("decisionLayer") and k.endswith("weight"))
    ck["netD"][key] = ck["netD"][key].clone()
    ck["netD"][key][0, 0] = float("nan")
    with pytest.raises(ValueError, match=rf"{key}.*non-finite"):
        pgan.networks_from_zoo(ck)


@pytest.mark.parametrize("edit, words", [
    ({"depthOtherScales": [8] * 9}, "at most 8"),
    ({"depthScale0": 10 ** 6}, "integers in 1..4096"),
    ({"depthScale0": 16.0}, "integers in 1..4096"),
    ({"depthOtherScales": "16"}, "must be a list"),
])
def test_absurd_zoo_configs_are_refused_naming_the_key(edit, words):
    cfg = zoo_config()
    cfg.update(edit)
    with pytest.raises(ValueError, match=words):
        pgan.architectures(cfg)
