"""An image's result never depends on its batch-mates, the batch size or the
shard size (DESIGN.md), for every registered method, at 1 and 2 threads.

Oracle: the same image restored alone.  The comparison is bitwise
(``torch.equal``), because :func:`ganrestore.methods.run_method` runs every
image through the same kernels on tensors of the same shapes whatever the
batch (its docstring says why that holds on any CPU); a tolerance would hide
exactly the defect this guards against (IAGAN moved by 0.056 on an AMD EPYC
when it ran batched).  The workflow-level check (shard size changes no
image's PSNR) is in ``tests/test_workflow.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganrestore.methods import Restoration, available, get_method, register, run_method, REGISTRY
from ganrestore.priors import Discriminator, Prior, to_unit
from ganrestore.solvers import sparse as sp
from ganrestore.tasks import corrupt, make_task

from test_gan_methods import calibrated_generator

IDS = ["a", "b", "c"]
SEEDS = [11, 22, 33]

# A tiny configuration per registered method: a new method must add one here,
# so that the invariance test covers it (test_every_registered_method_is_covered).
TINY = {
    "input": {}, "bicubic": {},
    "tv": {"max_iter": 40}, "lowrank": {"max_iter": 30, "rank": 1, "outer_iter": 2},
    "sparse": {"n_iter": 2, "sparsity": 3},
    "yeh": {"iterations": 12, "restarts": 2}, "yeh_blend": {},
    "csgm": {"iterations": 12, "restarts": 2}, "csgm_bp": {},
    "iagan": {"iterations": 10}, "iagan_bp": {},
    "dip": {"iterations": 6, "skip_n33d": 8, "skip_n33u": 8, "skip_n11": 2},
    "cgan": {},             # the committed demo checkpoint of its task
}
# per method, the task it is checked on (a task it applies to; noisy where that matters)
TASK = {"tv": "denoise_sigma0.1", "sparse": "inpaint_center32", "yeh_blend": "inpaint_center32",
        "dip": "denoise_sigma0.1",       # dip: the row with output averaging and backtracking
        "cgan": "inpaint_center32"}      # cgan: condition channel and the kept observed pixels


@pytest.fixture(scope="module")
def prior():
    torch.manual_seed(1)
    return Prior(G=calibrated_generator(), D=Discriminator(ndf=8).eval())


@pytest.fixture(scope="module")
def images(prior):
    torch.manual_seed(7)
    with torch.no_grad():
        x = to_unit(prior.G(torch.randn(3, 100)))
    return x.flip(-1)          # not exactly in the range: the optimisers have work to do


@pytest.fixture(scope="module")
def dictionary(tmp_path_factory, images):
    D, _ = sp.learn_dictionary(images, patch=4, n_atoms=32, sparsity=3, n_iter=2, max_patches=2000)
    path = tmp_path_factory.mktemp("dict") / "dictionary.npz"
    sp.save_dictionary(path, D, 4)
    return path


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    n = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(n)


def _cfg(name, dictionary):
    cfg = dict(TINY[name])
    if name == "sparse":
        cfg["extra_inputs"] = {"dictionary": str(dictionary)}
    return cfg


def _chain(name):
    """The method and the methods it starts from, base first."""
    out = [name]
    while get_method(out[0]).upstream:
        out.insert(0, get_method(out[0]).upstream)
    return out


def _restore(name, y, task, prior, seeds, dictionary, microbatch=1):
    """Run ``name`` with its upstream chain on ``y`` (each link through run_method)."""
    up = None
    for m in _chain(name):
        up = run_method(m, y, task.op, prior, _cfg(m, dictionary), seeds, upstream=up, task=task,
                        microbatch=microbatch)
    return up


def _same(u, v) -> bool:
    u, v = np.asarray(u), np.asarray(v)
    return np.array_equal(u, v, equal_nan=u.dtype.kind in "fc" and v.dtype.kind in "fc")


def _assert_rows_equal(a: Restoration, i: int, b: Restoration, j: int, what: str):
    assert torch.equal(torch.nan_to_num(a.x_hat[i], 7.0), torch.nan_to_num(b.x_hat[j], 7.0)), \
        f"{what}: x_hat differs, max |diff| {(a.x_hat[i] - b.x_hat[j]).abs().max().item():.3g}"
    for k, v in a.extras.items():
        assert _same(np.asarray(v)[i], np.asarray(b.extras[k])[j]), f"{what}: extra {k}"
    for k, v in a.diagnostics.items():
        if not k.endswith("seconds"):          # wall times
            assert _same(np.asarray(v)[i], np.asarray(b.diagnostics[k])[j]), \
                f"{what}: diagnostic {k}"


def test_every_registered_method_is_covered():
    assert set(available()) <= set(TINY), f"add a tiny config for {sorted(set(available()) - set(TINY))}"


@pytest.mark.parametrize("name", sorted(TINY))
def test_image_alone_equals_image_in_any_batch(name, threads, prior, images, dictionary):
    info = get_method(name)
    task = make_task(TASK.get(name, "sr4"), 64)
    assert info.applies_to(task)
    y = corrupt(images, task, IDS, global_seed=0)
    p = prior if info.needs_prior or any(get_method(m).needs_prior for m in _chain(name)) else None
    full = _restore(name, y, task, p, SEEDS, dictionary)
    alone = _restore(name, y[1:2].clone(), task, p, SEEDS[1:2], dictionary)
    _assert_rows_equal(full, 1, alone, 0, f"{name} alone vs in a batch of 3")
    rev = _restore(name, y.flip(0).contiguous(), task, p, SEEDS[::-1], dictionary)
    for i in range(3):
        _assert_rows_equal(full, i, rev, 2 - i, f"{name} image {i} in reversed order")
    assert torch.isfinite(full.x_hat).all(), f"{name}: non-finite result on a clean problem"


def test_padded_microbatches_keep_order_and_shape(images):
    task = make_task("sr4", 64)
    y = corrupt(images, task, IDS, global_seed=0)
    one = run_method("bicubic", y, task.op, None, {}, SEEDS, task=task, microbatch=1)
    two = run_method("bicubic", y, task.op, None, {}, SEEDS, task=task, microbatch=2)   # 2 + (1 padded)
    assert two.x_hat.shape == one.x_hat.shape
    torch.testing.assert_close(two.x_hat, one.x_hat, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="microbatch"):
        run_method("input", y, task.op, None, {}, SEEDS, task=task, microbatch=0)
    with pytest.raises(ValueError, match="seeds"):
        run_method("input", y, task.op, None, {}, SEEDS[:2], task=task)


def test_the_check_fails_for_a_method_that_mixes_images(images):
    """The harness can fail: a method whose rows see each other (batch-mean
    centring) run as one batch differs from the image alone."""
    @register("_mixes_images")
    def _mix(y, op, prior, cfg, seeds, upstream=None, task=None):
        x = op.A_input(y)
        return Restoration((x - x.mean(0, keepdim=True) + 0.5).clamp(0, 1))

    try:
        task = make_task("sr4", 64)
        y = corrupt(images, task, IDS, global_seed=0)
        batched = run_method("_mixes_images", y, task.op, None, {}, SEEDS, task=task, microbatch=3)
        alone = run_method("_mixes_images", y[1:2].clone(), task.op, None, {}, SEEDS[1:2], task=task)
        with pytest.raises(AssertionError, match="x_hat differs"):
            _assert_rows_equal(batched, 1, alone, 0, "mixing method")
        per_image = run_method("_mixes_images", y, task.op, None, {}, SEEDS, task=task)
        _assert_rows_equal(per_image, 1, alone, 0, "mixing method, one image per call")
    finally:
        REGISTRY.pop("_mixes_images", None)
