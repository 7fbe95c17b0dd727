"""An image's result never depends on its batch-mates, the batch size or the
shard size (DESIGN.md), for every registered method, at 1 and 2 threads.

:func:`ganrestore.methods.run_method` runs a method on blocks aligned to the
image's index in its split (image ``k`` at position ``k mod B``).  Oracle: the
same image (same index) restored in another layout - a shard of size B, 2B or
3B, a shard that starts at another block or in the middle of one, and a block
whose other images are replaced by different random ones.  The comparison is
bitwise (``torch.equal``): by construction only the row's own data, its
position and the block shape can enter its arithmetic, so a tolerance would
hide exactly the defect this guards against (IAGAN moved by 0.056 on an AMD
EPYC when it ran free batches).  Each method is checked at its own block
(``microbatch: auto``) and, for the methods whose batched path is row-wise by
construction, at a forced block of 3.  The workflow-level check (shard size
changes no image's PSNR) is in ``tests/test_workflow.py``.
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
    "yeh": {"iterations": 12, "restarts": 2}, "yeh_blend": {}, "yeh_lambda0": {"iterations": 12, "restarts": 2},
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


#: methods whose rows are independent by construction at any block (their auto block
#: may still be 1 because batching does not pay on a CPU): checked at a forced block too
ROW_WISE = {"input", "bicubic", "tv", "yeh", "yeh_lambda0", "yeh_blend", "csgm", "csgm_bp", "iagan", "iagan_bp", "dip", "cgan"}


def _split(prior, n, seed):
    torch.manual_seed(seed)
    with torch.no_grad():
        x = to_unit(prior.G(torch.randn(n, 100)))
    return x.flip(-1)          # not exactly in the range: the optimisers have work to do


def _restore_at(name, y, task, prior, seeds, dictionary, block, offset):
    up = None
    for m in _chain(name):
        up = run_method(m, y, task.op, prior, _cfg(m, dictionary), seeds, upstream=up, task=task,
                        microbatch=block, offset=offset)
    return up


def _layouts(B: int, k: int):
    """(start, stop) shards holding image ``k``: sizes 3B, 2B and B from block 0 and
    from k's block, and a shard starting in the middle of a block."""
    q, S = k // B, max(B, 2)
    return [(0, 3 * S), (0, 2 * S), (q * B, q * B + B), (q * B, q * B + 2 * B), (k - 1, k + 2)]


def _check_layouts(name, B, threads, prior, dictionary):
    info = get_method(name)
    task = make_task(TASK.get(name, "sr4"), 64)
    assert info.applies_to(task)
    p = prior if info.needs_prior or any(get_method(m).needs_prior for m in _chain(name)) else None
    S = max(B, 2)
    N, k = 3 * S, S + 1                       # image k: block 1, position 1 (block 2 of 1 image if B = 1)
    x = _split(prior, N, seed=7)
    ids = [f"i{i}" for i in range(N)]
    y = corrupt(x, task, ids, global_seed=0)
    seeds = [1000 + 7 * i for i in range(N)]
    ref = None
    for a, b in _layouts(B, k):
        res = _restore_at(name, y[a:b].clone(), task, p, seeds[a:b], dictionary, B, a)
        assert res.x_hat.shape[0] == b - a
        if ref is None:
            ref = res, k - a
            assert torch.isfinite(res.x_hat).all(), f"{name}: non-finite result on a clean problem"
        else:
            _assert_rows_equal(ref[0], ref[1], res, k - a, f"{name} (block {B}): shard [{a}, {b}) vs [0, {N})")
    # other batch-mates: every other image of k's block replaced by a different random one
    q = k // B
    other = _split(prior, B, seed=99)
    y2 = corrupt(other, task, [f"o{i}" for i in range(B)], global_seed=5)
    y2[k - q * B] = y[k]
    s2 = [77 + i for i in range(B)]
    s2[k - q * B] = seeds[k]
    res = _restore_at(name, y2, task, p, s2, dictionary, B, q * B)
    _assert_rows_equal(ref[0], ref[1], res, k - q * B, f"{name} (block {B}): other batch-mates")


def _auto_block(name):
    from ganrestore.methods import block_size

    return max(block_size(get_method(m)) for m in _chain(name))


@pytest.mark.parametrize("name", sorted(TINY))
def test_result_depends_only_on_the_image_index(name, threads, prior, dictionary):
    """At the method's own block (microbatch: auto), as the workflow runs it."""
    _check_layouts(name, _auto_block(name), threads, prior, dictionary)


@pytest.mark.parametrize("name", sorted(ROW_WISE & set(TINY)))
def test_row_wise_methods_at_a_forced_block(name, threads, prior, dictionary):
    """A block of 3 (microbatch: 3) for every method whose batched path is row-wise by
    construction, whatever its auto block."""
    _check_layouts(name, 3, threads, prior, dictionary)


def test_blocks_cover_the_shard_in_order():
    from ganrestore.methods import blocks

    assert blocks(0, 4, 4) == [[0, 1, 2, 3]]
    assert blocks(2, 4, 4) == [[None, None, 0, 1], [2, 3, None, None]]
    assert blocks(8, 3, 4) == [[0, 1, 2, None]]
    got = [i for blk in blocks(5, 11, 3) for i in blk if i is not None]
    assert got == list(range(11))


def test_padded_microbatches_keep_order_and_shape(images):
    task = make_task("sr4", 64)
    y = corrupt(images, task, IDS, global_seed=0)
    one = run_method("bicubic", y, task.op, None, {}, SEEDS, task=task, microbatch=1)
    two = run_method("bicubic", y, task.op, None, {}, SEEDS, task=task, microbatch=2)   # 2 + (1 padded)
    assert two.x_hat.shape == one.x_hat.shape
    torch.testing.assert_close(two.x_hat, one.x_hat, rtol=0, atol=1e-6)
    for bad in (0, -1, 2.5, "eight"):
        with pytest.raises(ValueError, match="microbatch"):
            run_method("input", y, task.op, None, {}, SEEDS, task=task, microbatch=bad)
    with pytest.raises(ValueError, match="seeds"):
        run_method("input", y, task.op, None, {}, SEEDS[:2], task=task)


def test_the_check_fails_for_a_method_that_mixes_images(prior, dictionary):
    """The harness can fail: a method whose rows see each other (batch-mean
    centring) is caught by the other-batch-mates layout; one image per call
    (block 1) hides nothing from it either."""
    @register("_mixes_images", block=3)
    def _mix(y, op, prior, cfg, seeds, upstream=None, task=None):
        x = op.A_input(y)
        return Restoration((x - x.mean(0, keepdim=True) + 0.5).clamp(0, 1))

    TINY["_mixes_images"] = {}
    try:
        with pytest.raises(AssertionError, match="x_hat differs"):
            _check_layouts("_mixes_images", 3, 1, prior, dictionary)
        _check_layouts("_mixes_images", 1, 1, prior, dictionary)     # one image per call: no mixing
    finally:
        REGISTRY.pop("_mixes_images", None)
        TINY.pop("_mixes_images", None)
