r"""Sparse coding of image patches: batched OMP, K-SVD, and patch-sparse restoration.

The sparse baseline of Yeh et al. 2018 cites Elad & Aharon, "Image denoising via
learned dictionaries and sparse representation" (CVPR 2006; K-SVD denoising)
and Yang, Wright, Huang & Ma, "Image super-resolution via sparse
representation" (IEEE TIP 2010).  Every ``p x p x 3`` patch ``R_i x`` of the
image is modelled as sparse in a learned dictionary ``D`` (``P x K``, unit-norm
atoms, ``P = 3 p^2``):

.. math::

    \min_{x, \{\alpha_i\}}\; \tfrac12 \|A x - y\|^2
        + \tfrac{\beta}{2} \|x - \bar z\|^2,\qquad
    \bar z = \Big(\sum_i R_i^T R_i\Big)^{-1} \sum_i R_i^T D \alpha_i,\quad
    \alpha_i = \mathrm{OMP}(R_i x;\ D,\ s \text{ atoms or residual} \le \epsilon_i),

solved by alternating the two blocks (Elad-Aharon's scheme, with the data term
through ``A``):

1. *sparse coding* of every patch by orthogonal matching pursuit
   (:func:`omp`, batched over all patches of all images), and averaging of the
   overlapping patch estimates into ``z``;
2. *data step* ``x = (A^T A + beta I)^{-1} (A^T y + beta z)``, clipped to
   ``[0, 1]`` (closed form or CG, :class:`~ganrestore.solvers.common.NormalSolver`).

For operators that act pixel by pixel (identity, pixel masks, the Rec.601 luma
map) the first coding pass is done *in the measurement domain*, with the exact
coupled dictionary ``A_patch D`` (Yang et al.'s coupled-dictionary idea with a
known coupling): a masked patch is coded on its observed pixels only, a grey
patch with the luma projections of the colour atoms -- which is how the sparse
baseline colourises.  Noisy tasks use the error-constrained OMP of Elad &
Aharon (stop when ``||r||^2 <= (C sigma)^2 P``, ``C = 1.15``).

The dictionary is learned by K-SVD (Aharon, Elad & Bruckstein, IEEE TSP 2006)
on clean *training/validation* patches only (:func:`ksvd`).
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from .. import operators as ops
from .common import NormalSolver, SolverResult, initial_estimate


# --------------------------------------------------------------------------- OMP

def omp(X: torch.Tensor, D: torch.Tensor, n_nonzero: int | None = None, tol: float | torch.Tensor | None = None,
        mask: torch.Tensor | None = None, chunk: int = 8192, eps: float | None = None) -> torch.Tensor:
    """Orthogonal matching pursuit for many signals at once.

    ``X``: ``(N, P)`` signals; ``D``: ``(P, K)`` dictionary with unit-norm columns;
    returns the coefficients ``(N, K)`` (dense).  Each signal stops after
    ``n_nonzero`` atoms or once its squared residual norm is ``<= tol``
    (scikit-learn's ``orthogonal_mp`` conventions: ``tol`` is a *squared* norm
    and, when given, ``n_nonzero`` only caps the support, defaulting to ``P``).
    ``tol`` may be a per-signal tensor ``(N,)``.

    ``mask``: ``(N, P)`` 0/1 weights -- signal ``n`` is then coded with the
    dictionary ``diag(mask_n) D`` (its observed entries only); atoms are
    selected by correlation normalised with their masked norms.
    """
    if X.dim() != 2 or D.dim() != 2 or X.shape[1] != D.shape[0]:
        raise ValueError(f"shapes: X {tuple(X.shape)}, D {tuple(D.shape)}")
    N, P = X.shape
    K = D.shape[1]
    if tol is None and n_nonzero is None:
        n_nonzero = max(1, int(0.1 * P))
    s_max = int(min(n_nonzero if n_nonzero is not None else P, P, K))
    out = torch.zeros(N, K, dtype=X.dtype, device=X.device)
    tol_t = None
    if tol is not None:
        tol_t = torch.as_tensor(tol, dtype=X.dtype, device=X.device).expand(N)
    for a in range(0, N, chunk):
        b = min(a + chunk, N)
        out[a:b] = _omp_chunk(X[a:b], D, s_max, None if tol_t is None else tol_t[a:b],
                              None if mask is None else mask[a:b], eps)
    return out


def _omp_chunk(X, D, s_max, tol, mask, eps):
    N, P = X.shape
    K = D.shape[1]
    Dt = D.T.contiguous()                                   # (K, P)
    if mask is not None:
        X = X * mask
        norms = (mask @ (D * D)).sqrt()                     # (N, K) masked atom norms
        inv_norms = torch.where(norms > 1e-8, 1.0 / norms.clamp_min(1e-8), torch.zeros_like(norms))
    r = X.clone()
    rn = (r * r).sum(1)
    active = torch.ones(N, dtype=torch.bool, device=X.device)
    if tol is not None:
        active &= rn > tol
    if mask is not None:
        active &= mask.sum(1) > 0
    idx = torch.zeros(N, s_max, dtype=torch.long, device=X.device)
    gam = torch.zeros(N, s_max, dtype=X.dtype, device=X.device)
    fin = torch.finfo(X.dtype)
    tiny = float(fin.eps) ** 2 if eps is None else eps
    ridge = 10.0 * float(fin.eps)
    eye = torch.eye(s_max, dtype=X.dtype, device=X.device)
    GD = Dt @ D if mask is None else None                   # (K, K) Gram matrix
    alpha0 = None
    for k in range(s_max):
        act = active.nonzero().squeeze(1)
        n = act.numel()
        if n == 0:
            break
        full = n == N
        ra = r if full else r[act]
        c = ra @ D                                          # (n, K)
        if k == 0 and mask is None:                         # D^T x, reused for every LS solve
            alpha0 = c.clone() if full else X @ D
        c = c.abs_()
        if mask is not None:
            c = c * (inv_norms if full else inv_norms[act])
        if k > 0:   # never re-select an atom (its correlation is zero up to rounding)
            c.scatter_(1, idx[:, :k] if full else idx[act, :k], -1.0)
        cmax, j = c.max(1)
        ok = cmax * cmax > tiny * ((rn if full else rn[act]) + tiny)
        if not bool(ok.all()):   # residual orthogonal to every atom: stop (as scikit-learn does)
            active[act[~ok]] = False
            act, j = act[ok], j[ok]
            n, full = act.numel(), False
            if n == 0:
                break
        if full:
            idx[:, k] = j
            sel = idx[:, :k + 1]
            xa = X
            ma = mask
        else:
            idx[act, k] = j
            sel = idx[act, :k + 1]                          # (n, k+1)
            xa = X[act]
            ma = None if mask is None else mask[act]
        Ds = Dt[sel]                                        # (n, k+1, P)
        if ma is not None:
            Ds = Ds * ma.unsqueeze(1)
            G = Ds @ Ds.mT
            rhs = Ds @ xa.unsqueeze(-1)
        else:   # Gram entries and D^T x gathered (Batch-OMP, Rubinstein et al. 2008)
            G = GD[sel.unsqueeze(2), sel.unsqueeze(1)]
            rhs = (alpha0 if full else alpha0[act]).gather(1, sel).unsqueeze(-1)
        G = G + (ridge * G.diagonal(dim1=-2, dim2=-1).mean(-1))[:, None, None] * eye[:k + 1, :k + 1]
        gamma = torch.linalg.solve(G, rhs).squeeze(-1)      # (n, k+1)
        ra_new = xa - (gamma.unsqueeze(1) @ Ds).squeeze(1)
        rn_a = (ra_new * ra_new).sum(1)
        if full:
            r, rn = ra_new, rn_a
            gam[:, :k + 1] = gamma
        else:
            r[act] = ra_new
            rn[act] = rn_a
            gam[act, :k + 1] = gamma
        if tol is not None:
            active[act] = rn_a > tol[act]
    coef = torch.zeros(N, K, dtype=X.dtype, device=X.device)
    coef.scatter_add_(1, idx, gam)        # unused slots hold (atom 0, coefficient 0)
    return coef


# ------------------------------------------------------------------- patches

def extract_patches(x: torch.Tensor, patch: int, stride: int = 1) -> torch.Tensor:
    """All ``patch x patch`` patches of ``x`` (B, C, H, W) on a grid of step
    ``stride`` that always includes the last row/column: ``(B, L, C*patch*patch)``."""
    B, C, H, W = x.shape
    rows = _starts(H, patch, stride)
    cols = _starts(W, patch, stride)
    # gather with unfold at stride 1 then select the grid (cheap at these sizes)
    u = F.unfold(x, patch)                                  # (B, C*p*p, (H-p+1)*(W-p+1))
    nW = W - patch + 1
    lin = (rows[:, None] * nW + cols[None, :]).reshape(-1).to(x.device)
    return u[:, :, lin].transpose(1, 2)


def _starts(n, patch, stride):
    s = list(range(0, n - patch + 1, stride))
    if s[-1] != n - patch:
        s.append(n - patch)
    return torch.tensor(s)


def aggregate_patches(P: torch.Tensor, shape, patch: int, stride: int = 1,
                      weights: torch.Tensor | None = None):
    """Average overlapping patches back into images: ``(sum_i R_i^T p_i) / count``.

    ``P``: ``(B, L, C*p*p)`` from :func:`extract_patches`; ``weights``: optional
    ``(B, L)`` per-patch weights (0 drops a patch).  Returns ``(image, count)``
    with ``count`` the per-pixel sum of weights (pixels with count 0 are 0).
    """
    B, C, H, W = shape
    rows = _starts(H, patch, stride)
    cols = _starts(W, patch, stride)
    nH, nW = H - patch + 1, W - patch + 1
    lin = (rows[:, None] * nW + cols[None, :]).reshape(-1).to(P.device)
    full = torch.zeros(B, C * patch * patch, nH * nW, dtype=P.dtype, device=P.device)
    wfull = torch.zeros(B, 1, nH * nW, dtype=P.dtype, device=P.device)
    w = torch.ones(B, P.shape[1], dtype=P.dtype, device=P.device) if weights is None else weights
    full[:, :, lin] = (P * w.unsqueeze(-1)).transpose(1, 2)
    wfull[:, :, lin] = w.unsqueeze(1)
    num = F.fold(full, (H, W), patch)
    cnt = F.fold(wfull.expand(-1, patch * patch, -1).contiguous(), (H, W), patch)
    img = num / cnt.clamp_min(1e-12)
    img = torch.where(cnt > 0, img, torch.zeros_like(img))
    return img, cnt


# -------------------------------------------------------------------- K-SVD

def representation_error(X, D, coef) -> float:
    """``||X - coef D^T||_F^2``."""
    return float(((X - coef @ D.T) ** 2).sum())


def ksvd_dictionary_update(X: torch.Tensor, D: torch.Tensor, coef: torch.Tensor, n_power: int = 3):
    """One K-SVD dictionary sweep with the supports fixed (Aharon et al. 2006).

    For every atom ``k`` with users ``w_k`` (signals whose code uses it), the
    residual without that atom ``E = X_w - C_w D^T + c_k d_k^T`` is replaced by
    its best rank-one approximation ``g d^T`` (``d`` unit norm), computed by
    ``n_power`` alternating steps started from the current ``(d_k, c_k)`` -- each
    step minimises the error over one factor, so the error never increases (the
    approximate K-SVD of Rubinstein, Zibulevsky & Elad 2008; ``n_power`` large
    gives the exact SVD update).  Unused atoms are replaced by the worst-coded
    signal (normalised), which leaves the error unchanged.
    Returns the updated ``(D, coef)`` (new tensors).
    """
    D = D.clone()
    coef = coef.clone()
    R = X - coef @ D.T
    K = D.shape[1]
    rows, cols = coef.T.nonzero(as_tuple=True)          # sorted by atom
    counts = torch.bincount(rows, minlength=K).tolist()
    users_of = torch.split(cols, counts)
    for k in range(K):
        users = users_of[k]
        if users.numel() == 0:
            worst = int((R * R).sum(1).argmax())
            v = X[worst]
            nv = v.norm()
            if nv > 0:
                D[:, k] = v / nv
            continue
        g = coef[users, k].clone()
        d = D[:, k].clone()
        E = R[users] + g[:, None] * d[None, :]
        for _ in range(n_power):
            d_new = E.T @ g
            nd = d_new.norm()
            if nd <= 0:
                break
            d = d_new / nd
            g = E @ d
        D[:, k] = d
        coef[users, k] = g
        R[users] = E - g[:, None] * d[None, :]
    return D, coef


def ksvd(X: torch.Tensor, n_atoms: int, sparsity: int, n_iter: int = 10, seed: int = 0,
         D0: torch.Tensor | None = None, n_power: int = 3, verbose: bool = False):
    """Learn a dictionary ``(P, n_atoms)`` for the signals ``X (N, P)`` by K-SVD.

    Initialised with ``n_atoms`` distinct random signals (normalised) unless
    ``D0`` is given.  Returns ``(D, history)`` with ``history`` a list of dicts
    ``{iteration, error_after_coding, error_after_update, seconds}`` (squared
    Frobenius representation errors), which the tests check: the dictionary
    update never raises the error.
    """
    g = torch.Generator().manual_seed(int(seed))
    N, P = X.shape
    if D0 is None:
        norms = X.norm(dim=1)
        cand = (norms > 1e-6).nonzero().squeeze(1)
        pick = cand[torch.randperm(cand.numel(), generator=g)[:n_atoms]]
        D = (X[pick] / norms[pick, None]).T.contiguous()
        if D.shape[1] < n_atoms:
            extra = torch.randn(P, n_atoms - D.shape[1], generator=g, dtype=X.dtype)
            D = torch.cat([D, extra / extra.norm(dim=0, keepdim=True)], 1)
    else:
        D = D0 / D0.norm(dim=0, keepdim=True).clamp_min(1e-12)
    history = []
    for it in range(n_iter):
        t0 = time.perf_counter()
        coef = omp(X, D, n_nonzero=sparsity)
        e_code = representation_error(X, D, coef)
        D, coef = ksvd_dictionary_update(X, D, coef, n_power=n_power)
        e_upd = representation_error(X, D, coef)
        history.append({"iteration": it + 1, "error_after_coding": e_code,
                        "error_after_update": e_upd, "seconds": time.perf_counter() - t0})
        if verbose:
            print(f"K-SVD {it + 1:3d}: coding {e_code:.4f} -> update {e_upd:.4f}")
    return D, history


def training_patches(images: torch.Tensor, patch: int, max_patches: int, seed: int = 0,
                     stride: int = 1) -> torch.Tensor:
    """A random subset of the patches of clean training images, ``(N, C*p*p)``."""
    P = extract_patches(images, patch, stride).reshape(-1, images.shape[1] * patch * patch)
    if P.shape[0] > max_patches:
        g = torch.Generator().manual_seed(int(seed))
        P = P[torch.randperm(P.shape[0], generator=g)[:max_patches]]
    return P.contiguous()


# ------------------------------------------------------------- restoration

def _pixelwise_kind(op):
    """How the measurement relates to the image pixel by pixel: 'identity' and
    'mask' (``A x = m * x``), 'gray' (``A x = sum_c w_c x_c``), or None."""
    if op.is_identity:
        return "identity"
    if op.pixel_mask() is not None:
        return "mask"
    if op.channel_weights() is not None:
        return "gray"
    return None


def _code_measured(op, y, D, patch, stride, sparsity, tol, C):
    """First pass in the measurement domain for pixel-wise operators: returns the
    averaged patch estimate ``z`` and the per-pixel count of coded patches."""
    kind = _pixelwise_kind(op)
    B = y.shape[0]
    H = W = op.image_size
    K = D.shape[1]
    atoms = D.T.reshape(K, C, patch, patch)
    if kind == "gray":
        w = op.channel_weights().to(D).view(1, -1, 1, 1)
        Dm = (atoms * w).sum(1).reshape(K, -1).T.contiguous()      # (p*p, K)
        Ym = extract_patches(y, patch, stride)                       # (B, L, p*p)
        mask = None
    else:
        Dm = D
        Ym = extract_patches(y, patch, stride)
        mask = None
        if kind == "mask":
            m = op.pixel_mask().to(y)[None, None].expand(B, C, H, W)
            mask = extract_patches(m.contiguous(), patch, stride)
    L = Ym.shape[1]
    Ym2 = Ym.reshape(B * L, -1)
    nrm = Dm.norm(dim=0).clamp_min(1e-12)
    coef = omp(Ym2, Dm / nrm, n_nonzero=sparsity, tol=_tol_for(tol, Ym2, mask),
               mask=None if mask is None else mask.reshape(B * L, -1))
    coef = coef / nrm
    Pz = (coef @ D.T).reshape(B, L, -1)
    weights = None
    if mask is not None:
        weights = (mask.reshape(B, L, -1).sum(-1) > 0).to(y)
    return aggregate_patches(Pz, (B, C, H, W), patch, stride, weights)


def _tol_for(tol, Y, mask):
    """Per-patch squared-residual tolerance: ``tol`` per measured entry times the
    number of measured entries."""
    if tol is None:
        return None
    n = Y.shape[1] if mask is None else mask.sum(1)
    return tol * torch.as_tensor(n, dtype=Y.dtype, device=Y.device)


def patch_sparse_approx(x, D, patch, stride, sparsity, tol=None):
    """``z``: every patch of ``x`` replaced by its OMP approximation, averaged."""
    B, C, H, W = x.shape
    Px = extract_patches(x, patch, stride)
    L = Px.shape[1]
    X2 = Px.reshape(B * L, -1)
    coef = omp(X2, D, n_nonzero=sparsity, tol=_tol_for(tol, X2, None))
    z, _ = aggregate_patches((coef @ D.T).reshape(B, L, -1), x.shape, patch, stride)
    return z


def solve_sparse(op, y: torch.Tensor, D: torch.Tensor, *, patch: int, stride: int = 2,
                 sparsity: int = 6, noise_sigma: float = 0.0, C: float = 1.15,
                 n_iter: int = 3, beta: float = 1.0, measured_first: bool = True,
                 channels: int = 3) -> SolverResult:
    """Patch-sparse restoration (see the module docstring).

    ``D``: ``(channels*patch^2, K)`` unit-norm dictionary; ``noise_sigma``: the
    noise level of the observation (0 for exact data; then the codes have
    ``sparsity`` atoms); ``n_iter``: alternations of patch coding and the data
    step after the first pass; ``beta``: weight of the patch average against the
    data term.  The reported objective is ``1/2||Ax - y||^2 + beta/2 ||x - z||^2``
    at the last alternation.
    """
    t0 = time.perf_counter()
    with torch.no_grad():
        D = D.to(y)
        B = y.shape[0]
        normal = NormalSolver(op)
        Aty = op.A_adjoint(y)
        tol = (C * noise_sigma) ** 2 if noise_sigma > 0 else None
        x_init = initial_estimate(op, y)
        if measured_first and _pixelwise_kind(op) is not None:
            z, cnt = _code_measured(op, y, D, patch, stride, sparsity, tol, channels)
            z = torch.where(cnt > 0, z, x_init)
        else:
            z = patch_sparse_approx(x_init, D, patch, stride, sparsity, tol)
        x = normal(Aty + beta * z, beta).clamp(0, 1)
        iters = 1
        for _ in range(int(n_iter)):
            z = patch_sparse_approx(x, D, patch, stride, sparsity, tol)
            x = normal(Aty + beta * z, beta).clamp(0, 1)
            iters += 1
        r = op.A(x) - y
        obj = 0.5 * (r * r).flatten(1).sum(1) + 0.5 * beta * ((x - z) ** 2).flatten(1).sum(1)
        diverged = ~torch.isfinite(x.flatten(1)).all(1)
    return SolverResult(x, obj.cpu().numpy(), np.full(B, iters, dtype=np.int64),
                        np.ones(B, dtype=bool), diverged.cpu().numpy(),
                        {"solve_seconds": np.full(B, (time.perf_counter() - t0) / max(B, 1))})


# ------------------------------------------------------ dictionary artifacts

def learn_dictionary(images: torch.Tensor, *, patch: int = 6, n_atoms: int = 256, sparsity: int = 6,
                     n_iter: int = 8, max_patches: int = 12000, seed: int = 0, verbose: bool = False):
    """K-SVD dictionary for ``patch x patch`` colour patches of *clean* training
    images ``(B, 3, H, W)`` in [0, 1].  Returns ``(D (3 p^2, n_atoms), history)``."""
    X = training_patches(images.float(), patch, max_patches, seed=seed)
    return ksvd(X, n_atoms, sparsity, n_iter=n_iter, seed=seed, verbose=verbose)


def save_dictionary(path, D: torch.Tensor, patch: int, channels: int = 3, meta: dict | None = None) -> None:
    """Write a dictionary artifact (``.npz`` + JSON sidecar, atomically)."""
    from ..io import save_artifact

    save_artifact(path, {"D": D.detach().cpu().numpy().astype(np.float32),
                         "patch": np.asarray(int(patch)), "channels": np.asarray(int(channels))},
                  {"stage": "learn_dictionary", **(meta or {})})


def load_dictionary(path):
    """``(D tensor (P, K), {"patch", "channels"})`` from :func:`save_dictionary`'s artifact."""
    from ..io import load_artifact

    d = load_artifact(path)
    D = torch.from_numpy(d["D"]).float()
    meta = {"patch": int(d["patch"]), "channels": int(d["channels"])}
    if D.shape[0] != meta["channels"] * meta["patch"] ** 2:
        raise ValueError(f"{path}: dictionary has {D.shape[0]} rows, expected channels*patch^2")
    return D, meta


def learn_dictionary_artifact(split_path, out_path, *, patch: int = 6, n_atoms: int = 256,
                              sparsity: int = 6, n_iter: int = 8, max_patches: int = 12000,
                              seed: int = 0) -> dict:
    """Learn a dictionary on the clean images of a prepared split (the
    validation split in the workflow; never the test split) and save it with
    its provenance.  Returns the artifact's metadata."""
    import logging

    from ..io import load_split, sha256_file

    log = logging.getLogger("ganrestore")
    t0 = time.perf_counter()
    images, ids = load_split(split_path)
    D, history = learn_dictionary(images, patch=patch, n_atoms=n_atoms, sparsity=sparsity,
                                  n_iter=n_iter, max_patches=max_patches, seed=seed)
    for h in history:
        log.info("K-SVD %d: error after coding %.4f, after update %.4f",
                 h["iteration"], h["error_after_coding"], h["error_after_update"])
    meta = {"source": str(split_path), "source_sha256": sha256_file(split_path),
            "source_ids": list(ids), "patch": patch, "n_atoms": n_atoms, "sparsity": sparsity,
            "n_iter": n_iter, "max_patches": max_patches, "seed": seed, "ksvd_history": history,
            "seconds": time.perf_counter() - t0,
            "method": "K-SVD (Aharon, Elad & Bruckstein 2006), batched OMP coding"}
    save_dictionary(out_path, D, patch, images.shape[1], meta)
    return meta
