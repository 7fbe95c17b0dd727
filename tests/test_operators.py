"""Operators: adjointness, pseudo-inverses, and the SR operator against torch's resize."""

import pytest
import torch
import torch.nn.functional as F

from ganrestore import operators as ops
from ganrestore.tasks import make_task

TASKS = ["inpaint_center32", "colorize", "sr4", "sr8", "denoise_sigma0.1", "quantize5"]


def _rand(shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("name", TASKS)
def test_adjointness(name):
    op = make_task(name, 64).op
    x = _rand((3, 3, 64, 64), 0).float()
    y = _rand((3,) + op.measurement_shape(), 1).float()
    lhs = (op.A(x).double() * y.double()).sum()
    rhs = (x.double() * op.A_adjoint(y).double()).sum()
    assert abs(lhs - rhs) / abs(lhs) <= 1e-5


@pytest.mark.parametrize("name", TASKS)
def test_pseudo_inverse_is_right_inverse_on_range(name):
    op = make_task(name, 64).op
    y = op.A(torch.rand(2, 3, 64, 64))
    assert torch.allclose(op.A(op.A_dagger(y)), y, atol=1e-5)
    # A_input is what the 'input' baseline shows: also consistent with y
    assert torch.allclose(op.A(op.A_input(y)), y, atol=1e-5)


@pytest.mark.parametrize("name", ["colorize", "sr4"])
def test_closed_form_dagger_matches_cg_least_norm(name):
    """The closed-form A^+ equals the base class's CG on A A^T u = y (least-norm solution)."""
    op = make_task(name, 64).op
    y = torch.randn((2,) + op.measurement_shape())
    cg = ops.Operator.A_dagger(op, y)
    assert torch.allclose(op.A_dagger(y), cg, atol=1e-4)


def test_pseudo_inverse_is_least_norm():
    """A^+ y has no component in the null space: it equals A^T u for some u."""
    op = make_task("sr4", 64).op
    y = torch.randn(1, 3, 16, 16)
    xd = op.A_dagger(y)
    z = torch.randn(1, 3, 64, 64)
    z_null = z - op.A_dagger(op.A(z))  # a null-space vector
    assert op.A(z_null).abs().max() < 1e-4
    assert abs(float((xd * z_null).sum())) < 1e-3


@pytest.mark.parametrize("factor", [2, 4, 8])
def test_bicubic_matches_torch_antialiased_resize(factor):
    op = ops.BicubicDownsample(64, factor)
    x = torch.rand(2, 3, 64, 64)
    ref = F.interpolate(x, scale_factor=1 / factor, mode="bicubic", antialias=True, align_corners=False)
    assert (op.A(x) - ref).abs().max() < 1e-5


def test_inpainting_mask_geometry():
    op = ops.Inpainting.center_hole(64, 32)
    assert op.mask.sum() == 64 * 64 - 32 * 32
    assert op.mask[16:48, 16:48].sum() == 0 and op.mask[15, 15] == 1 and op.mask[48, 48] == 1


def test_grayscale_is_rec601():
    op = ops.Grayscale(8)
    x = torch.rand(1, 3, 8, 8)
    ref = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    assert torch.allclose(op.A(x)[:, 0], ref, atol=1e-6)


@pytest.mark.parametrize("name", TASKS)
def test_spec_round_trip(name):
    op = make_task(name, 64).op
    op2 = ops.from_spec(op.spec())
    x = torch.rand(1, 3, 64, 64)
    assert type(op2) is type(op) and torch.equal(op.A(x), op2.A(x))


def test_conjugate_gradient_solves_spd_system():
    M = torch.randn(2, 5, 5, dtype=torch.float64)
    M = M @ M.transpose(1, 2) + 5 * torch.eye(5, dtype=torch.float64)
    b = torch.randn(2, 5, dtype=torch.float64)
    x = ops.conjugate_gradient(lambda v: (M @ v[..., None])[..., 0], b, tol=1e-12)
    assert torch.allclose(x, torch.linalg.solve(M, b), atol=1e-8)
