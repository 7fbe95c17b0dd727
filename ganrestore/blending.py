"""Post-processing blends of Yeh et al. (CVPR 2017 / ICASSP 2018).

After the latent search, Yeh et al. paste the generated content into the
observation instead of returning ``G(z_hat)`` as is:

* **Poisson blending** (inpainting; Pérez, Gangnet & Blake, SIGGRAPH 2003).
  On the hole ``Omega`` solve the discrete Poisson equation
  ``Laplace f = Laplace g`` (``g`` = the generator's image) with the observed
  pixels as Dirichlet boundary values.  With the 4-neighbourhood ``N_p``
  (restricted to the image) every hole pixel ``p`` gives one equation

      |N_p| f_p - sum_{q in N_p, q in Omega} f_q
          = sum_{q in N_p, q not in Omega} y_q + sum_{q in N_p} (g_p - g_q),

  a sparse symmetric positive definite system shared by every image and
  channel: it is factorised once (``scipy.sparse.linalg.splu``) and solved for
  all right-hand sides at once.  Pixels outside the hole are the observation.

* **HSV blend** (colourisation): hue and saturation from the generator, value
  from the input.  Because hue and saturation are invariant to scaling an RGB
  triple, the blend has the closed form ``c * v / max(c)`` (``c`` the
  generator's colour, ``v`` the input's value), ``(v, v, v)`` where
  ``max(c) = 0``; it equals the RGB -> HSV -> swap V -> RGB round trip of the
  official code (``PIL``) and of :func:`skimage.color.rgb2hsv`.

* The **weighted mask** of the context loss (Yeh et al. CVPR 2017, eq. 2):
  ``W_i = m_i * mean_{j in N(i)} (1 - m_j)`` over an ``n x n`` window
  (symmetric boundary), so observed pixels close to the hole count more and
  far ones not at all.

All functions take and return library images: float32 ``(B, 3, H, W)`` in
``[0, 1]``.

>>> import torch
>>> m = torch.ones(8, 8); m[3:5, 3:5] = 0
>>> x = torch.rand(1, 3, 8, 8)
>>> torch.allclose(poisson_blend(x * m, x, m), x, atol=1e-5)   # g = x  ->  x
True
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch
from scipy.ndimage import uniform_filter

_SHIFTS = ((-1, 0), (1, 0), (0, -1), (0, 1))


def _shift(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``out[..., i, j] = a[..., i + dy, j + dx]`` with zeros outside the image."""
    out = np.zeros_like(a)
    H, W = a.shape[-2:]
    ys, yd = (slice(dy, H), slice(0, H - dy)) if dy >= 0 else (slice(0, H + dy), slice(-dy, H))
    xs, xd = (slice(dx, W), slice(0, W - dx)) if dx >= 0 else (slice(0, W + dx), slice(-dx, W))
    out[..., yd, xd] = a[..., ys, xs]
    return out


@lru_cache(maxsize=8)
def _poisson_system(hole_bytes: bytes, H: int, W: int):
    """Sparse LU factors of the hole's Poisson matrix (cached per mask)."""
    hole = np.frombuffer(hole_bytes, dtype=bool).reshape(H, W)
    idx = -np.ones((H, W), dtype=np.int64)
    ys, xs = np.nonzero(hole)
    n = len(ys)
    idx[ys, xs] = np.arange(n)
    rows, cols, vals = [], [], []
    deg = np.zeros(n)
    for dy, dx in _SHIFTS:
        qy, qx = ys + dy, xs + dx
        inside = (qy >= 0) & (qy < H) & (qx >= 0) & (qx < W)
        deg += inside
        nb = np.full(n, -1)
        nb[inside] = idx[qy[inside], qx[inside]]
        k = nb >= 0
        rows.append(np.arange(n)[k])
        cols.append(nb[k])
        vals.append(-np.ones(k.sum()))
    rows.append(np.arange(n))
    cols.append(np.arange(n))
    vals.append(deg)
    A = sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    return spla.splu(A), ys, xs


def poisson_blend(y_img: torch.Tensor, g: torch.Tensor, mask: torch.Tensor, clip: bool = True) -> torch.Tensor:
    """Poisson-blend the generator's images ``g`` into the observations.

    ``y_img``: observed images (B,3,H,W) (values inside the hole are ignored);
    ``g``: the generator's images (B,3,H,W); ``mask``: (H,W), 1 = observed,
    0 = missing.  Returns ``f`` with ``f = y`` on observed pixels and the
    solution of the discrete Poisson equation (module docstring) in the hole.
    """
    m = mask.detach().cpu().numpy() > 0.5
    hole = ~m
    out = y_img.detach().cpu().double().numpy().copy()
    if not hole.any():
        return torch.from_numpy(out).float()
    H, W = m.shape
    lu, ys, xs = _poisson_system(np.ascontiguousarray(hole).tobytes(), H, W)
    gn = g.detach().cpu().double().numpy()
    known = out * m                                          # observed values, 0 in the hole
    inimg = np.ones((H, W))
    rhs = np.zeros_like(gn)
    for dy, dx in _SHIFTS:
        valid = _shift(inimg, dy, dx)                        # 1 where the neighbour exists
        rhs += valid * gn - _shift(gn, dy, dx)               # guidance: sum_q (g_p - g_q)
        rhs += _shift(known, dy, dx)                         # Dirichlet values of observed neighbours
    b = rhs[:, :, ys, xs].reshape(-1, len(ys)).T              # (n_hole, B*3)
    sol = lu.solve(np.ascontiguousarray(b))
    out[:, :, ys, xs] = sol.T.reshape(out.shape[0], out.shape[1], -1)
    res = torch.from_numpy(out).float()
    return res.clamp(0, 1) if clip else res


def hsv_blend(value: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Hue and saturation of ``g`` (B,3,H,W), HSV value ``value`` (B,1,H,W) (the
    grey input).  Closed form ``g * v / max_c g`` (module docstring)."""
    v = value.to(g).clamp(0, 1)
    if v.shape[1] != 1:
        raise ValueError(f"value must have one channel, got {tuple(v.shape)}")
    gmax = g.amax(1, keepdim=True)
    scaled = g * (v / gmax.clamp_min(1e-12))
    return torch.where(gmax > 1e-12, scaled, v.expand_as(g)).clamp(0, 1)


def weighted_mask(mask: torch.Tensor, nsize: int = 15) -> torch.Tensor:
    """Yeh et al.'s context weights ``W = m * box_n(1 - m)`` (symmetric boundary)."""
    if nsize % 2 == 0 or nsize < 1:
        raise ValueError("nsize must be a positive odd integer")
    m = mask.detach().cpu().double().numpy()
    w = m * uniform_filter(1.0 - m, size=nsize, mode="reflect")
    return torch.from_numpy(w).to(mask.device, torch.float32)


__all__ = ["poisson_blend", "hsv_blend", "weighted_mask"]
