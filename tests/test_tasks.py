"""Tasks and corruptions: names, noise, quantisation, and seeds independent of sharding."""

import numpy as np
import pytest
import torch

from ganrestore.pipeline import method_config, n_shards, shard_bounds
from ganrestore.seeding import derive_seed
from ganrestore.tasks import corrupt, make_task, quantize


def test_unknown_task_is_rejected_with_its_name():
    with pytest.raises(ValueError, match="inpaint_left"):
        make_task("inpaint_left", 64)
    with pytest.raises(ValueError, match="sr3"):
        make_task("sr3", 64)  # 3 does not divide 64


def test_seeds_depend_on_image_id_not_position():
    x = torch.rand(6, 3, 64, 64)
    ids = [f"img{i}" for i in range(6)]
    task = make_task("denoise_sigma0.1", 64)
    full = corrupt(x, task, ids, global_seed=7)
    # the same images in another order and in two shards of other sizes
    part_a = corrupt(x[4:], task, ids[4:], global_seed=7)
    part_b = corrupt(x[[2, 0, 1, 3]], task, [ids[2], ids[0], ids[1], ids[3]], global_seed=7)
    assert torch.equal(full[4:], part_a)
    assert torch.equal(full[[2, 0, 1, 3]], part_b)
    # and they change with the global seed and the task
    assert not torch.equal(full, corrupt(x, task, ids, global_seed=8))
    assert derive_seed(0, "sr4", "a") != derive_seed(0, "sr4_noise0.1", "a")


def test_noise_level_is_sigma():
    x = torch.full((4, 3, 64, 64), 0.5)
    y = corrupt(x, make_task("denoise_sigma0.1", 64), list("abcd"), 0)
    assert abs(float((y - x).std()) - 0.1) < 0.003
    assert abs(float((y - x).mean())) < 0.003


def test_quantize5_levels():
    x = torch.rand(2, 3, 64, 64)
    y = corrupt(x, make_task("quantize5", 64), ["a", "b"], 0)
    assert set(np.unique(y.numpy()).round(6)) <= {0.0, 0.25, 0.5, 0.75, 1.0}
    assert (y - x).abs().max() <= 0.125 + 1e-6
    assert torch.equal(quantize(torch.tensor([0.124, 0.126, 0.9]), 5), torch.tensor([0.0, 0.25, 1.0]))


def test_noiseless_tasks_are_deterministic_functions_of_x():
    x = torch.rand(2, 3, 64, 64)
    for name in ["inpaint_center32", "colorize", "sr4", "quantize5"]:
        t = make_task(name, 64)
        assert torch.equal(corrupt(x, t, ["a", "b"], 0), corrupt(x, t, ["a", "b"], 1))


def test_sr_with_noise_name():
    t = make_task("sr8_noise0.0392", 64)
    assert t.op.factor == 8 and t.sigma == pytest.approx(0.0392)


def test_shards_cover_images_once():
    b = shard_bounds(1000, 100)
    assert len(b) == 10 == n_shards(1000, 100)
    assert b[0] == (0, 100) and b[-1] == (900, 1000)
    assert shard_bounds(7, 3) == [(0, 3), (3, 6), (6, 7)]


def test_method_config_per_task_override():
    params = {"tv": {"lam": 0.1, "iters": 50, "per_task": {"sr4": {"lam": 0.01}}}}
    assert method_config(params, "tv", "sr4") == {"lam": 0.01, "iters": 50}
    assert method_config(params, "tv", "colorize") == {"lam": 0.1, "iters": 50}
    assert method_config(params, "input", "sr4") == {}
