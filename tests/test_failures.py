"""A result that is not a result is flagged, never shown as a normal row (issue 13):
divergence that is not NaN (an objective that rose, an infinite objective)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganrestore.methods import Restoration, flag_failures, run_method
from ganrestore.priors import Discriminator, Prior, to_unit
from ganrestore.tasks import corrupt, make_task

from test_gan_methods import calibrated_generator

IDS, SEEDS = ["a", "b"], [5, 6]


@pytest.fixture(scope="module")
def prior():
    torch.manual_seed(1)
    return Prior(G=calibrated_generator(), D=Discriminator(ndf=8).eval())


@pytest.fixture(scope="module")
def observed(prior):
    torch.manual_seed(3)
    with torch.no_grad():
        x = to_unit(prior.G(torch.randn(2, 100))).flip(-1)
    task = make_task("sr4", 64)
    return task, corrupt(x, task, IDS, global_seed=0)


@pytest.mark.parametrize("name", ["csgm", "yeh"])
def test_gan_search_whose_objective_only_rose_is_flagged(prior, observed, name):
    """lr 1e6: every step makes the objective worse; the kept iterate is the random
    start.  It used to be reported 'ok'."""
    task, y = observed
    bad = run_method(name, y, task.op, prior, {"iterations": 6, "restarts": 1, "lr": 1e6}, SEEDS, task=task)
    assert bad.diagnostics["diverged"].all()
    assert all(f.startswith("no progress") or "diverged" in f for f in bad.diagnostics["failure"])
    assert torch.isnan(bad.x_hat).all()
    good = run_method(name, y, task.op, prior, {"iterations": 6, "restarts": 1}, SEEDS, task=task)
    assert not good.diagnostics["diverged"].any() and (good.diagnostics["failure"] == "").all()
    assert (good.diagnostics["objective"] < good.diagnostics["start_objective"]).all()


def test_iagan_that_makes_no_progress_is_flagged(prior, observed):
    task, y = observed
    cs = run_method("csgm", y, task.op, prior, {"iterations": 8, "restarts": 1}, SEEDS, task=task)
    bad = run_method("iagan", y, task.op, prior, {"iterations": 4, "lr_z": 1e6, "lr_theta": 1e6}, SEEDS,
                     upstream=cs, task=task)
    assert bad.diagnostics["diverged"].all() and torch.isnan(bad.x_hat).all()
    ok = run_method("iagan", y, task.op, prior, {"iterations": 4}, SEEDS, upstream=cs, task=task)
    assert not ok.diagnostics["diverged"].any()
    # downstream of a flagged image: flagged too
    bp = run_method("iagan_bp", y, task.op, prior, {}, SEEDS, upstream=bad, task=task)
    assert bp.diagnostics["diverged"].all()


def test_tv_with_an_infinite_objective_is_flagged(observed):
    """lam = 1e38: the objective overflows; it used to be 'converged' returning the input."""
    task = make_task("denoise_sigma0.1", 64)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    y = corrupt(x, task, IDS, global_seed=0)
    bad = run_method("tv", y, task.op, None, {"lam": 1e38, "max_iter": 20}, SEEDS, task=task)
    assert bad.diagnostics["diverged"].all()
    assert set(bad.diagnostics["failure"]) <= {"objective not finite", "diverged (non-finite iterate or result)"}
    ok = run_method("tv", y, task.op, None, {"lam": 0.1, "max_iter": 50}, SEEDS, task=task)
    assert not ok.diagnostics["diverged"].any()
    assert (ok.diagnostics["objective"] < ok.diagnostics["start_objective"]).all()


def test_flag_rules_on_synthetic_diagnostics():
    x = torch.zeros(6, 3, 4, 4)
    res = Restoration(x, {"objective": np.array([1.0, np.inf, 2.0, 2.0, np.nan, 2.0]),
                          "iterations": np.array([5, 5, 5, 0, 0, 5]),
                          "start_objective": np.array([2.0, 3.0, 2.0, 1.0, np.nan, 2.0]),
                          "converged": np.array([False, False, False, False, False, True])})
    out = flag_failures(res)
    f = out.diagnostics["failure"]
    assert f[0] == "" and f[1] == "objective not finite" and f[2].startswith("no progress")
    assert f[3] == "" and f[4] == ""          # no iterations: nothing to judge
    assert f[5] == ""                         # converged at its start (a convex minimiser)
    assert out.diagnostics["diverged"].tolist() == [False, True, True, False, False, False]
    assert torch.isnan(out.x_hat[[1, 2]]).all() and torch.isfinite(out.x_hat[[0, 3, 4, 5]]).all()
