"""Tests of the example plugin's method, run from its own folder:

    pytest examples/plugin          # src/ is on the path (pyproject.toml)
"""

from __future__ import annotations

import pytest
import torch

import ganrestore_lowpass as lp
from ganrestore.methods import available, get_method, run_method
from ganrestore.tasks import make_task


def reference(op, y, sigma, lam):
    """The minimiser by plain conjugate gradients on the normal equations, clipped."""
    from ganrestore.operators import conjugate_gradient

    m = lp.gaussian_blur(op.A_input(y), sigma)
    b = op.A_adjoint(y) + lam * m
    x = conjugate_gradient(lambda v: op.A_adjoint(op.A(v)) + lam * v, b, max_iter=2000, tol=1e-10)
    return x.clamp(0, 1)


def test_registered_with_its_schema():
    assert "lowpass" in available()
    info = get_method("lowpass")
    assert info.fn is lp.restore_lowpass and not info.needs_prior
    assert info.schema == lp.SCHEMA
    assert info.applies_to(make_task("colorize", 64))


@pytest.mark.parametrize("task_name", ["sr4", "inpaint_center16", "colorize", "cs_gaussian_0.1"])
def test_is_the_clipped_minimiser(task_name):
    """Closed-form solves (sr4, inpainting, colorize) and CG (cs_gaussian has no
    closed form) agree with a plain CG solve of the normal equations."""
    torch.manual_seed(0)
    task = make_task(task_name, 32)
    y = task.op.A(torch.rand(2, 3, 32, 32))
    cfg = {"sigma": 1.0, "lam": 0.1, "cg_iter": 1000}
    x = lp.restore_lowpass(y, task.op, None, cfg, [0, 1], task=task).x_hat
    torch.testing.assert_close(x, reference(task.op, y, 1.0, 0.1), atol=2e-4, rtol=0)


def test_identity_without_blur_returns_the_input():
    task = make_task("denoise_sigma0.1", 32)
    y = torch.rand(3, 3, 32, 32)
    x = lp.restore_lowpass(y, task.op, None, {"sigma": 0}, [0, 1, 2], task=task).x_hat
    torch.testing.assert_close(x, y)


def test_blur_keeps_constants_and_mass():
    x = torch.full((1, 3, 16, 16), 0.3)
    torch.testing.assert_close(lp.gaussian_blur(x, 2.0), x)
    assert lp.gaussian_blur(x, 0) is x


def test_run_method_in_range_and_no_failures():
    task = make_task("inpaint_center32", 64)
    y = task.op.A(torch.rand(3, 3, 64, 64))
    res = run_method("lowpass", y, task.op, None, {}, [0, 1, 2], task=task)
    assert res.x_hat.shape == (3, 3, 64, 64)
    assert float(res.x_hat.min()) >= 0 and float(res.x_hat.max()) <= 1
    assert not res.diagnostics["diverged"].any()
    assert list(res.diagnostics["failure"]) == ["", "", ""]


def test_unknown_key_refused():
    task = make_task("sr4", 64)
    with pytest.raises(ValueError, match="unknown keys"):
        lp.restore_lowpass(torch.zeros(1, 3, 16, 16), task.op, None, {"sgima": 1}, [0], task=task)
