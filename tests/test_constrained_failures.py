"""Constrained solvers that return an image violating their constraint are flagged
(issue 25, item 3), and low rank on an operator that reads no pixel of whole rows.

Oracles: the residual ``||A x - y|| / ||y||`` recomputed here from the returned
image; the TF align-corners bilinear matrix itself (its zero columns are the
unread rows); the unboxed solve's clipped residual computed directly.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganrestore import operators as ops
from ganrestore.methods import CONSTRAINT_TOL, Restoration, flag_failures, run_method
from ganrestore.solvers.lowrank import solve_lowrank, unread_lines
from ganrestore.tasks import corrupt, make_task

IDS, SEEDS = ["a", "b"], [5, 6]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def faces():
    from ganrestore.data.demo import real_faces

    f, _ = real_faces(64)
    return torch.from_numpy(np.stack(f[:2]).transpose(0, 3, 1, 2).astype(np.float32) / 255)


def residual(op, x, y):
    return ((op.A(x) - y).flatten(1).norm(dim=1) / y.flatten(1).norm(dim=1)).numpy()


def test_unread_lines_are_the_zero_columns_of_the_tf_bilinear_matrix():
    op = ops.BilinearDownUp(64, 4)
    M = ops.tf_bilinear_matrix(64, 16)                  # the downsampling half, (16, 64)
    unread = (M.abs().sum(0) == 0).numpy()
    rows, cols = unread_lines(op, (3, 64, 64))
    assert rows.tolist() == unread.tolist() and cols.tolist() == unread.tolist()
    assert int(unread.sum()) == 36                      # reads 28 of 64 lines
    for other in (ops.BicubicDownsample(64, 4), ops.Inpainting.center_hole(64, 32), ops.Grayscale(64),
                  ops.FourierCS(64, 0.3, seed=1)):
        r, c = unread_lines(other, (3, 64, 64))
        assert not r.any() and not c.any(), other.name


def test_lowrank_constrained_returns_a_feasible_image(faces):
    """sr4 (bicubic): Hu et al.'s unboxed minimiser leaves [0, 1]; clipped, it misses
    A x = y by more than the tolerance, and run_method flags it; with the box
    (default) the returned image meets it."""
    task = make_task("sr4", 64)
    y = corrupt(faces, task, IDS, 0)
    op = task.op
    cfg = {"constrained": True, "max_iter": 150}
    raw = solve_lowrank(op, y, 0.5, constrained=True, box=False, max_iter=150)
    over = residual(op, raw.x.clamp(0, 1), y) > CONSTRAINT_TOL
    assert over.any() and (raw.extra["constraint_residual"] < 1e-5).all()   # feasible before clipping
    bad = run_method("lowrank", y, op, None, {**cfg, "box": False}, SEEDS, task=task)
    assert [f.startswith("constraint not met") for f in bad.diagnostics["failure"]] == over.tolist()
    assert torch.isnan(bad.x_hat[torch.from_numpy(over)]).all()
    ok = run_method("lowrank", y, op, None, cfg, SEEDS, task=task)
    assert (ok.diagnostics["failure"] == "").all()
    assert (residual(op, ok.x_hat, y) <= CONSTRAINT_TOL).all()
    assert np.allclose(ok.diagnostics["constraint_residual"], residual(op, ok.x_hat, y), rtol=1e-3, atol=1e-7)


@pytest.mark.parametrize("cfg", [{"constrained": True, "rank": 2, "outer_iter": 3}, {"lam": 0.5}])
def test_lowrank_on_sr4_official_is_failed_with_its_reason(faces, cfg):
    task = make_task("sr4_official", 64)
    y = corrupt(faces, task, IDS, 0)
    r = run_method("lowrank", y, task.op, None, cfg, SEEDS, task=task)
    assert r.diagnostics["diverged"].all() and torch.isnan(r.x_hat).all()
    assert all("36 of 64 rows" in f and "nuclear-norm" in f for f in r.diagnostics["failure"])
    # the reason holds: the constrained nuclear-norm solution, met to 1e-4, is striped
    sol = solve_lowrank(task.op, y, 0.5, constrained=True, max_iter=100)
    rows, _ = unread_lines(task.op, (3, 64, 64))
    assert float(sol.x[:, :, torch.from_numpy(rows)].abs().max()) < 0.05 * float(sol.x.abs().max())


@pytest.mark.parametrize("task_name", ["sr4", "sr4_official"])
def test_tv_stopped_before_feasibility_is_flagged(faces, task_name):
    task = make_task(task_name, 64)
    y = corrupt(faces, task, IDS, 0)
    early = run_method("tv", y, task.op, None, {"constrained": True, "max_iter": 1}, SEEDS, task=task)
    full = run_method("tv", y, task.op, None, {"constrained": True}, SEEDS, task=task)
    for res in (early, full):
        rc = np.asarray(res.diagnostics["constraint_residual"])
        flagged = np.array([f.startswith("constraint not met") for f in res.diagnostics["failure"]])
        assert flagged.tolist() == (rc > CONSTRAINT_TOL).tolist()
    assert not np.isnan(full.x_hat.numpy()).any()
    assert (residual(task.op, full.x_hat, y) <= CONSTRAINT_TOL).all()
    assert np.asarray(early.diagnostics["constraint_residual"]).max() > CONSTRAINT_TOL   # the case exists


def test_flag_rules_constraint_and_method_reasons():
    x = torch.zeros(4, 3, 4, 4)
    res = Restoration(x, {"objective": np.ones(4), "iterations": np.full(4, 5),
                          "constraint_residual": np.array([1e-5, 2e-2, 2e-2, np.nan]),
                          "constraint_tol": np.array([1e-3, 1e-3, 5e-2, 1e-3]),
                          "failure": np.array(["", "", "", "my reason"])})
    f = flag_failures(res).diagnostics["failure"]
    assert f[0] == "" and f[1].startswith("constraint not met") and "2.00e-02" in f[1]
    assert f[2] == ""                                # within the method's own tolerance
    assert f[3] == "my reason"                       # the method's reason is kept
    assert res.diagnostics["diverged"].tolist() == [False, True, False, True]
