"""Prior checkpoints whose weights are damaged in value, not in shape (issue 30,
class 1): non-finite weights are refused at load, naming the file and tensor;
weights stored in an unexpected dtype load as float32 with a log line saying
which dtype was converted; a sidecar that is not JSON is named."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from safetensors.torch import load_file, save_file

from ganrestore.io import sha256_file
from ganrestore.priors import Generator
from ganrestore.priors.checkpoint import load_prior, save_prior, weights_path


def _prior(tmp_path, dtype=torch.float32):
    torch.manual_seed(0)
    return save_prior(tmp_path / "p", Generator(ngf=4), None, {"steps": 0}, dtype=dtype)


def _rewrite(stem, edit):
    """Edit the weights file in place and record its new sha256 in the sidecar (a
    consistent but bad checkpoint: the checksum alone cannot catch it)."""
    wp = weights_path(stem)
    state = load_file(str(wp))
    edit(state)
    save_file(state, str(wp), metadata={"format": "ganrestore-prior/1"})
    jp = wp.with_suffix(".json")
    meta = json.loads(jp.read_text())
    meta["sha256"] = sha256_file(wp)
    jp.write_text(json.dumps(meta))


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_at_load(tmp_path, value):
    stem = _prior(tmp_path)
    key = "G.main.0.weight"

    def poison(state):
        state[key] = state[key].clone()
        state[key].view(-1)[3] = value

    _rewrite(stem, poison)
    with pytest.raises(ValueError, match=rf"non-finite weights.*{key}"):
        load_prior(stem, device="cpu")


def test_a_float64_checkpoint_loads_as_float32_saying_so(tmp_path, caplog):
    stem = _prior(tmp_path)
    ref = load_prior(stem, device="cpu").G.state_dict()
    _rewrite(stem, lambda st: st.update({k: v.double() for k, v in st.items() if v.is_floating_point()}))
    with caplog.at_level(logging.INFO, logger="ganrestore"):
        P = load_prior(stem, device="cpu")
    n = sum(1 for v in ref.values() if v.is_floating_point())
    warn = [r for r in caplog.records if r.levelno == logging.WARNING and "float64" in r.getMessage()]
    assert warn and f"{n} tensors stored as float64 converted to float32" in warn[0].getMessage()
    assert P.provenance["converted_to_float32"] == {"float64": n}
    assert all(v.dtype == torch.float32 for v in P.G.state_dict().values() if v.is_floating_point())
    for k, v in ref.items():
        assert torch.equal(P.G.state_dict()[k], v)


def test_the_recorded_float16_storage_is_an_info_not_a_warning(tmp_path, caplog):
    stem = _prior(tmp_path, dtype=torch.float16)
    with caplog.at_level(logging.INFO, logger="ganrestore"):
        load_prior(stem, device="cpu")
    msgs = [(r.levelno, r.getMessage()) for r in caplog.records if "float16" in r.getMessage()]
    assert msgs and all(level == logging.INFO for level, _ in msgs)


def test_a_sidecar_that_is_not_json_is_named(tmp_path):
    stem = _prior(tmp_path)
    jp = weights_path(stem).with_suffix(".json")
    jp.write_bytes(b"\x00garbage{")
    with pytest.raises(ValueError, match=rf"{jp}.*not a readable JSON sidecar"):
        load_prior(stem, device="cpu")
