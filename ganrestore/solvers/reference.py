"""cvxpy formulations of the convex classical problems: the independent oracle
the tests and ``benchmarks/bench_classical.py`` compare the fast solvers with.

The operator enters as an explicit sparse matrix, obtained by applying ``op.A``
to the standard basis (:func:`operator_matrix`), so cvxpy sees exactly the
same linear map as the solvers without sharing any of their code.  Images are
vectorised in C order over ``(C, H, W)``.  cvxpy is imported lazily: it is a
test / benchmark dependency, not a library one.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch


def operator_matrix(op, shape, chunk: int = 512) -> sp.csr_matrix:
    """The matrix of ``op.A`` on images of ``shape = (C, H, W)`` (float64, sparse)."""
    n = int(np.prod(shape))
    cols = []
    with torch.no_grad():
        for a in range(0, n, chunk):
            b = min(a + chunk, n)
            E = torch.zeros(b - a, n, dtype=torch.float32)
            E[torch.arange(b - a), torch.arange(a, b)] = 1.0
            out = op.A(E.view((b - a,) + tuple(shape))).reshape(b - a, -1).double().numpy()
            cols.append(sp.csr_matrix(out))
    return sp.vstack(cols).T.tocsr()


def _diff_matrices(H: int, W: int):
    """Forward differences with Neumann boundary on an (H, W) image in C order."""
    def d1(n):
        D = sp.lil_matrix((n, n))
        for i in range(n - 1):
            D[i, i] = -1.0
            D[i, i + 1] = 1.0
        return D.tocsr()
    Gx = sp.kron(sp.eye(H), d1(W)).tocsr()   # along width
    Gy = sp.kron(d1(H), sp.eye(W)).tocsr()   # along height
    return Gx, Gy


def _channel_views(x, C, HW):
    return [x[c * HW:(c + 1) * HW] for c in range(C)]


def tv_expression(x, shape, mode="vectorial"):
    import cvxpy as cp

    C, H, W = shape
    Gx, Gy = _diff_matrices(H, W)
    xs = _channel_views(x, C, H * W)
    if mode == "vectorial":
        rows = [Gx @ xc for xc in xs] + [Gy @ xc for xc in xs]
        return cp.sum(cp.norm(cp.vstack(rows), 2, axis=0))
    if mode == "channel":
        return sum(cp.sum(cp.norm(cp.vstack([Gx @ xc, Gy @ xc]), 2, axis=0)) for xc in xs)
    raise ValueError(mode)


def nuclear_expression(x, shape):
    import cvxpy as cp

    C, H, W = shape
    return sum(cp.normNuc(cp.reshape(xc, (H, W), order="C")) for xc in _channel_views(x, C, H * W))


def solve_reference(op, y: torch.Tensor, lam: float, prior: str, *, shape=None, mode="vectorial",
                    constrained=False, box=True, solver=None, Amat=None, verbose=False):
    """Solve one image's problem with cvxpy.

    ``prior``: ``"tv"`` (``mode`` vectorial | channel) or ``"nuclear"`` (sum of the
    per-channel nuclear norms).  Objective ``1/2||Ax - y||^2 + lam R(x)`` over the
    box ``[0, 1]`` (or ``R(x)`` subject to ``A x = y`` when ``constrained``).
    Returns ``(x (C,H,W) tensor, objective, seconds)``.
    """
    import time

    import cvxpy as cp

    shape = tuple(shape or (op.channels, op.image_size, op.image_size))
    n = int(np.prod(shape))
    A = operator_matrix(op, shape) if Amat is None else Amat
    yv = y.detach().double().cpu().numpy().reshape(-1)
    x = cp.Variable(n)
    R = tv_expression(x, shape, mode) if prior == "tv" else nuclear_expression(x, shape)
    cons = [x >= 0, x <= 1] if box else []
    if constrained:
        cons.append(A @ x == yv)
        obj = R
    else:
        obj = 0.5 * cp.sum_squares(A @ x - yv) + lam * R
    prob = cp.Problem(cp.Minimize(obj), cons)
    solver = solver or ("CLARABEL" if "CLARABEL" in cp.installed_solvers() else "SCS")
    t0 = time.perf_counter()
    prob.solve(solver=solver, verbose=verbose)
    sec = time.perf_counter() - t0
    if x.value is None:
        raise RuntimeError(f"cvxpy ({solver}) failed: {prob.status}")
    return torch.from_numpy(np.asarray(x.value).reshape(shape)).float(), float(prob.value), sec
