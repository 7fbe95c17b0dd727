"""Linear forward operators ``y = A x`` of the restoration tasks.

Every operator acts on batches ``x`` of shape ``(B, 3, H, W)`` (float32, [0, 1])
and provides

* ``A(x)``          the forward model,
* ``A_adjoint(y)``  the exact adjoint, ``<A x, y> = <x, A^T y>``,
* ``A_dagger(y)``   the Moore-Penrose pseudo-inverse: closed form where one
  exists, conjugate gradients on the normal equations otherwise,
* ``A_input(y)``    the observation shown as an image (what the ``input``
  baseline returns); ``A_dagger`` unless a subclass knows better,
* ``spec()``        a JSON-able dict; :func:`from_spec` rebuilds the operator.

and what the solvers exploit, with generic defaults in the base class and
closed forms in the subclasses that have them (no solver branches on an
operator's type; a new operator works everywhere through the defaults):

* ``norm_sq()``         ``||A||_2^2`` in closed form, or ``None`` (the solvers
  then use power iteration);
* ``normal_solve(b, rho)``  ``(A^T A + rho I)^{-1} b`` in closed form, or
  ``None`` (the solvers then use conjugate gradients);
* ``pixel_mask()``      ``m`` when ``A x = m * x`` channel-wise with the image's
  shape (identity, pixel masks), else ``None``;
* ``channel_weights()`` ``w`` when ``A x = sum_c w_c x_c`` pixel by pixel (luma),
  else ``None``; ``is_identity``.

The design follows deepinv's ``physics`` classes (a small base class, one short
subclass per degradation).

>>> op = Inpainting.center_hole(64, 32)
>>> x = torch.rand(2, 3, 64, 64)
>>> torch.allclose(op.A(op.A_dagger(op.A(x))), op.A(x))
True
"""

from __future__ import annotations


import torch

REC601 = (0.299, 0.587, 0.114)


def batch_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image inner product of two batches, shape ``(B,)``."""
    return (a * b).flatten(1).sum(1)


def conjugate_gradient(apply, b: torch.Tensor, x0: torch.Tensor | None = None,
                       max_iter: int = 200, tol: float = 1e-7) -> torch.Tensor:
    """Solve ``apply(x) = b`` for a symmetric positive (semi)definite ``apply``,
    independently for every image of the batch (per-image step sizes)."""
    x = torch.zeros_like(b) if x0 is None else x0.clone()
    r = b - apply(x)
    p = r.clone()
    rs = batch_dot(r, r)
    b_norm = batch_dot(b, b).sqrt().clamp_min(1e-30)
    shape = (-1,) + (1,) * (b.dim() - 1)
    for _ in range(max_iter):
        if bool((rs.sqrt() <= tol * b_norm).all()):
            break
        Ap = apply(p)
        denom = batch_dot(p, Ap)
        alpha = torch.where(denom > 0, rs / denom.clamp_min(1e-30), torch.zeros_like(rs))
        x = x + alpha.view(shape) * p
        r = r - alpha.view(shape) * Ap
        rs_new = batch_dot(r, r)
        beta = torch.where(rs > 0, rs_new / rs.clamp_min(1e-30), torch.zeros_like(rs))
        p = r + beta.view(shape) * p
        rs = rs_new
    return x


class Operator:
    """Base class: a linear map from images ``(B, 3, H, W)`` to measurements."""

    name = "operator"

    def __init__(self, image_size: int = 64, channels: int = 3):
        self.image_size = int(image_size)
        self.channels = int(channels)

    # -- the maths ---------------------------------------------------------
    def A(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def A_dagger(self, y: torch.Tensor) -> torch.Tensor:
        """Least-norm solution of ``A x = y``: ``x = A^T (A A^T)^{-1} y`` by CG on
        ``A A^T u = y`` (exact in closed form in the subclasses that can)."""
        u = conjugate_gradient(lambda v: self.A(self.A_adjoint(v)), y)
        return self.A_adjoint(u)

    def A_input(self, y: torch.Tensor) -> torch.Tensor:
        return self.A_dagger(y)

    # -- what solvers may exploit (generic defaults) --------------------------
    is_identity = False

    def norm_sq(self) -> float | None:
        """``||A||_2^2`` in closed form, or ``None`` (power iteration then)."""
        return None

    def normal_solve(self, b: torch.Tensor, rho: float) -> torch.Tensor | None:
        """``(A^T A + rho I)^{-1} b`` in closed form, or ``None`` (conjugate gradients then)."""
        return None

    @property
    def has_closed_normal_solve(self) -> bool:
        return type(self).normal_solve is not Operator.normal_solve

    def pixel_mask(self) -> torch.Tensor | None:
        """``m`` (H, W) when ``A x = m * x`` channel-wise, measurement = image shape."""
        return None

    def channel_weights(self) -> torch.Tensor | None:
        """``w`` (C,) when ``A x = sum_c w_c x_c`` at every pixel (one output channel)."""
        return None

    # -- bookkeeping -------------------------------------------------------
    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.image_size, self.image_size)

    def measurement_shape(self) -> tuple[int, ...]:
        return tuple(self.A(torch.zeros((1,) + self.image_shape)).shape[1:])

    def spec(self) -> dict:
        return {"name": self.name, "image_size": self.image_size, "channels": self.channels}

    def to(self, device) -> "Operator":
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec()})"


class Identity(Operator):
    """``A = I`` (denoising, quantisation)."""

    name = "identity"
    is_identity = True

    def A(self, x):
        return x

    def A_adjoint(self, y):
        return y

    def A_dagger(self, y):
        return y

    def norm_sq(self):
        return 1.0

    def normal_solve(self, b, rho):
        return b / (1.0 + rho)

    def pixel_mask(self):
        return torch.ones(self.image_size, self.image_size)


class Inpainting(Operator):
    """Pixel mask ``A x = m * x`` with a binary mask ``m`` shared by channels.

    The measurement keeps the image's shape with zeros where pixels are missing
    (deepinv's convention); ``A = A^T = A^dagger`` is an orthogonal projection.
    """

    name = "inpaint"

    def __init__(self, mask: torch.Tensor, channels: int = 3, spec_extra: dict | None = None):
        mask = torch.as_tensor(mask, dtype=torch.float32)
        if mask.dim() != 2 or mask.shape[0] != mask.shape[1]:
            raise ValueError("Inpainting mask must be a square (H, W) array")
        super().__init__(mask.shape[0], channels)
        self.mask = mask
        self._spec_extra = spec_extra

    @classmethod
    def center_hole(cls, image_size: int = 64, hole: int = 32) -> "Inpainting":
        """Mask with a missing centred ``hole x hole`` square (Yeh et al.)."""
        if not 0 < hole < image_size:
            raise ValueError(f"hole size {hole} must be in (0, {image_size})")
        m = torch.ones(image_size, image_size)
        a = (image_size - hole) // 2
        m[a:a + hole, a:a + hole] = 0.0
        return cls(m, spec_extra={"kind": "center", "hole": hole})

    def A(self, x):
        return x * self.mask.to(x)

    def A_adjoint(self, y):
        return y * self.mask.to(y)

    def A_dagger(self, y):
        return y * self.mask.to(y)

    def norm_sq(self):
        return float(self.mask.max()) ** 2

    def normal_solve(self, b, rho):
        return b / (self.mask.to(b) + rho)

    def pixel_mask(self):
        return self.mask

    def spec(self):
        if self._spec_extra is None:
            raise ValueError("only centre-hole masks have a spec; store arbitrary masks with the artifact")
        return {**super().spec(), **self._spec_extra}

    def to(self, device):
        self.mask = self.mask.to(device)
        return self


class Grayscale(Operator):
    """Colour to luma, ``y = w_r R + w_g G + w_b B`` with Rec.601 weights.

    ``A_dagger(y) = w y / |w|^2`` (Moore-Penrose); ``A_input(y)`` replicates the
    grey level in all three channels, also a right inverse because the weights
    sum to one, and the natural "input" picture of a colourisation problem.
    """

    name = "grayscale"

    def __init__(self, image_size: int = 64, weights=REC601):
        super().__init__(image_size, 3)
        self.weights = torch.tensor(weights, dtype=torch.float32)

    def _w(self, ref):
        return self.weights.to(ref).view(1, 3, 1, 1)

    def A(self, x):
        return (x * self._w(x)).sum(1, keepdim=True)

    def A_adjoint(self, y):
        return y * self._w(y)

    def A_dagger(self, y):
        w = self._w(y)
        return y * w / (w * w).sum()

    def A_input(self, y):
        return y.expand(-1, 3, -1, -1) / self._w(y).sum()

    def norm_sq(self):
        return float((self.weights ** 2).sum())

    def normal_solve(self, b, rho):
        """Per pixel ``(w w^T + rho I)^{-1} b`` by Sherman-Morrison."""
        w = self._w(b)
        wb = (w * b).sum(1, keepdim=True)
        return (b - w * wb / (rho + float((w * w).sum()))) / rho

    def channel_weights(self):
        return self.weights

    def spec(self):
        return {**super().spec(), "weights": [float(v) for v in self.weights]}


def cubic_kernel(t: torch.Tensor, a: float = -0.5) -> torch.Tensor:
    """Keys' cubic convolution kernel (a = -0.5: PIL / Matlab bicubic)."""
    t = t.abs()
    t2, t3 = t * t, t * t * t
    w1 = (a + 2) * t3 - (a + 3) * t2 + 1
    w2 = a * t3 - 5 * a * t2 + 8 * a * t - 4 * a
    return torch.where(t <= 1, w1, torch.where(t < 2, w2, torch.zeros_like(t)))


def bicubic_downsample_matrix(n_in: int, factor: int, a: float = -0.5) -> torch.Tensor:
    """1-D anti-aliased bicubic downsampling as an ``(n_in/factor, n_in)`` matrix.

    The kernel is stretched by ``factor`` (anti-aliasing, as Matlab's
    ``imresize`` and PIL do); at the borders the weights that fall outside the
    image are dropped and the rest renormalised (PIL's and torch's
    ``antialias=True`` convention).
    """
    if n_in % factor:
        raise ValueError(f"size {n_in} is not divisible by factor {factor}")
    n_out = n_in // factor
    centers = (torch.arange(n_out, dtype=torch.float64) + 0.5) * factor
    j = torch.arange(n_in, dtype=torch.float64) + 0.5
    W = cubic_kernel((j[None, :] - centers[:, None]) / factor, a)
    W = W / W.sum(1, keepdim=True)
    return W.float()


class BicubicDownsample(Operator):
    """Super-resolution operator: anti-aliased bicubic downsampling by ``factor``.

    Separable, ``A x = D X D^T`` per channel with the matrix of
    :func:`bicubic_downsample_matrix`, so the adjoint ``D^T Y D`` is exact and
    the pseudo-inverse ``D^+ Y D^{+T}`` is closed form (``D`` has full row rank).
    """

    name = "bicubic_down"

    def __init__(self, image_size: int = 64, factor: int = 4):
        super().__init__(image_size, 3)
        self.factor = int(factor)
        self.D = bicubic_downsample_matrix(self.image_size, self.factor)
        self.D_pinv = torch.linalg.pinv(self.D.double()).float()

    def A(self, x):
        D = self.D.to(x)
        return D @ x @ D.T

    def A_adjoint(self, y):
        D = self.D.to(y)
        return D.T @ y @ D

    def A_dagger(self, y):
        P = self.D_pinv.to(y)
        return P @ y @ P.T

    def norm_sq(self):
        s = float(torch.linalg.matrix_norm(self.D.double(), ord=2))
        return (s * s) ** 2 * 1.0001

    def normal_solve(self, b, rho):
        """``A X = D X D^T``: with ``D^T D = Q diag(l) Q^T``,
        ``(A^T A + rho)^{-1} B = Q [(Q^T B Q) / (l l^T + rho)] Q^T``."""
        if not hasattr(self, "_eig"):
            lam, Q = torch.linalg.eigh(self.D.double().T @ self.D.double())
            self._eig = (Q.float(), lam.clamp_min(0).float())
        Q, lam = (t.to(b) for t in self._eig)
        Bt = Q.T @ b @ Q
        return Q @ (Bt / (lam[:, None] * lam[None, :] + rho)) @ Q.T

    def spec(self):
        return {**super().spec(), "factor": self.factor}


# ----------------------------------------------------------------------------- compressed sensing

#: largest dense Gaussian matrix built (bytes, float32); above it the task is refused
GAUSSIAN_MAX_BYTES = 4 * 1024 ** 3


class GaussianCS(Operator):
    """Compressed sensing with a dense Gaussian matrix (CSGM; IAGAN Fig. 1-2):
    ``y = A vec(x)``, ``A`` of ``m x n`` with ``A_ij ~ N(0, 1/m)``, ``n = 3 H W``,
    ``m = round(ratio n)``.

    One matrix per (seed, task), shared by every image as in the csgm and IAGAN
    code, drawn on the CPU from ``seed`` when first used (never stored: the
    seed rebuilds it), float32; ``A_dagger = A^T (A A^T)^{-1}`` exact through a
    float64 Cholesky factor of ``A A^T`` computed once (``m <= n``).  The matrix
    must fit in :data:`GAUSSIAN_MAX_BYTES` (4 GiB: 64 px at any ratio, 128 px up
    to m/n = 0.44, 256 px up to 0.028): larger problems are refused, as the paper
    itself switched to Fourier measurements for its 1024-px prior.  The A^+
    factor (float64, m x m) is built on first use; at 128 px and m/n = 0.44 it
    needs another 3.5 GiB.

    >>> op = GaussianCS(16, 0.25, seed=1)
    >>> x = torch.rand(2, 3, 16, 16)
    >>> torch.allclose(op.A(op.A_dagger(op.A(x))), op.A(x), atol=1e-4)
    True
    """

    name = "cs_gaussian"

    def __init__(self, image_size: int = 64, ratio: float = 0.3, seed: int = 0):
        super().__init__(image_size, 3)
        self.ratio = float(ratio)
        self.seed = int(seed)
        self.n = 3 * self.image_size ** 2
        self.m = int(round(self.ratio * self.n))
        if not 0 < self.m <= self.n:
            raise ValueError(f"cs_gaussian: m/n = {ratio} gives m = {self.m} rows for n = {self.n}; "
                             "need 0 < m <= n")
        need = self.m * self.n * 4
        if need > GAUSSIAN_MAX_BYTES:
            raise ValueError(f"cs_gaussian: a {self.m} x {self.n} float32 matrix needs {need / 1024 ** 3:.1f} GiB, "
                             f"over the {GAUSSIAN_MAX_BYTES / 1024 ** 3:.0f} GiB budget "
                             f"({self.image_size}px, m/n = {ratio}); use a smaller ratio or cs_fourier")
        self._M = None
        self._chol = None
        self._device = torch.device("cpu")

    @property
    def matrix(self) -> torch.Tensor:
        if self._M is None:
            g = torch.Generator().manual_seed(self.seed)
            M = torch.randn(self.m, self.n, generator=g, dtype=torch.float32)
            M.mul_(1.0 / self.m ** 0.5)
            self._M = M.to(self._device)
        return self._M

    def A(self, x):
        return x.reshape(x.shape[0], -1) @ self.matrix.to(x.dtype).T

    def A_adjoint(self, y):
        return (y @ self.matrix.to(y.dtype)).reshape(y.shape[0], *self.image_shape)

    def A_dagger(self, y):
        if self._chol is None:
            M = self.matrix
            self._chol = torch.linalg.cholesky((M @ M.T).double())
        u = torch.cholesky_solve(y.double().T, self._chol).T.to(y.dtype)
        return self.A_adjoint(u)

    def spec(self):
        return {**super().spec(), "ratio": self.ratio, "seed": self.seed, "m": self.m}

    def to(self, device):
        self._device = torch.device(device)
        if self._M is not None:
            self._M = self._M.to(device)
        if self._chol is not None:
            self._chol = self._chol.to(device)
        return self


def iagan_fourier_mask(size: int, ratio: float, seed: int) -> torch.Tensor:
    """IAGAN's variable-density Fourier mask (official code, ``IAGAN.py``
    ``rand_mask(size, thresh)`` called as ``rand_mask(1024, 1024 * 0.5 / 2)``):
    ``thresh = size * ratio / 2``; ``(size/2)^2`` row and column indices drawn
    as ``floor(|N(0, 1)| * thresh) mod size/2`` mark the top-left quadrant of
    the unshifted 2-D FFT, which is then mirrored into the other three
    quadrants (``i -> size/2 - 1 - i``).  The kept fraction exceeds the nominal
    ratio (about 0.35 for 0.3 at 128 px); :attr:`FourierCS.kept_fraction`
    reports it.  Drawn with NumPy's generator from ``seed`` (the official code
    uses the global NumPy state)."""
    import numpy as np

    h = size // 2
    thresh = size * float(ratio) / 2.0
    rng = np.random.default_rng(int(seed))
    ix = np.mod(np.floor(np.abs(rng.standard_normal((h, h))) * thresh), h).astype(np.int64)
    iy = np.mod(np.floor(np.abs(rng.standard_normal((h, h))) * thresh), h).astype(np.int64)
    q = np.zeros((h, h), dtype=np.float32)
    q[iy, ix] = 1.0
    m = np.zeros((size, size), dtype=np.float32)
    m[:h, :h] = q
    m[:h, h:] = q[:, ::-1]
    m[h:, :h] = q[::-1, :]
    m[h:, h:] = q[::-1, ::-1]
    return torch.from_numpy(m)


class FourierCS(Operator):
    """Subsampled Fourier measurements (IAGAN Table 1): the orthonormal 2-D FFT
    of each channel, kept on a mask ``M`` shared by the channels, real and
    imaginary parts as separate real measurements: ``y`` has shape
    ``(B, 3, 2, K)`` with ``K`` the kept frequencies (IAGAN's
    ``compress_FFT``).

    Adjoint (real inner products): ``A^T y = Re(F^* E(y_re + i y_im))`` with
    ``E`` the zero-filling (IAGAN's ``compress_FFT_t``, the "naive IFFT").
    Because ``x`` is real, the coefficients at ``k`` and ``-k`` are conjugate;
    IAGAN's mirrored mask does not always keep both, so ``A A^T`` is not the
    identity: on a kept frequency whose partner is dropped it is 1/2, on a kept
    pair it projects onto conjugate-symmetric values, on a self-paired
    frequency (DC, Nyquist) onto the real part.  Hence the exact pseudo-inverse
    ``A^dagger y = A^T (w * y)`` with ``w = 2`` on kept frequencies whose
    partner is dropped and 1 elsewhere (tested: ``A A^dagger y = y`` and the
    least-norm property).  ``A_input`` is ``A^T`` (the zero-filled IFFT, the
    paper's "naive IFFT" baseline).

    Not verified against IAGAN Table 1: no reading of the official code
    (``IAGAN.py``'s ``rand_mask``, ``compress_FFT``, ``compress_FFT_t``, its
    ``main.py``; the mask on a shifted spectrum, old torch's one-sided
    ``irfft``, the noise scale, the mirroring) reproduces the paper's naive
    IFFT (19.23 / 20.53 dB at ratio 0.3 / 0.5 on CelebA): ours gives about
    29 / 26.5 dB on the demo faces, falling with the ratio
    (:data:`ganrestore.fidelity.FOURIER_TABLE1`, every reading measured).
    """

    name = "cs_fourier"

    def __init__(self, image_size: int = 64, ratio: float = 0.3, seed: int = 0, mask=None):
        super().__init__(image_size, 3)
        self.ratio = float(ratio)
        self.seed = int(seed)
        self.mask = (iagan_fourier_mask(self.image_size, ratio, seed) if mask is None
                     else torch.as_tensor(mask, dtype=torch.float32))
        keep = self.mask.flatten() > 0
        self._idx = torch.nonzero(keep).flatten()
        n = self.image_size
        kk = torch.arange(n)
        partner = ((-kk) % n)[:, None] * n + ((-kk) % n)[None, :]         # flat index of -k
        lone = keep & ~keep[partner.flatten()]
        self._w = torch.where(lone, 2.0, 1.0)[self._idx]
        self.kept_fraction = float(keep.float().mean())

    def A(self, x):
        X = torch.fft.fft2(x, norm="ortho").flatten(2)[..., self._idx.to(x.device)]
        return torch.stack([X.real, X.imag], dim=2)

    def A_adjoint(self, y):
        B, C = y.shape[:2]
        n = self.image_size
        Z = torch.zeros(B, C, n * n, dtype=torch.complex64 if y.dtype == torch.float32 else torch.complex128,
                        device=y.device)
        Z[..., self._idx.to(y.device)] = torch.complex(y[:, :, 0], y[:, :, 1])
        return torch.fft.ifft2(Z.reshape(B, C, n, n), norm="ortho").real.to(y.dtype)

    def A_dagger(self, y):
        return self.A_adjoint(y * self._w.to(y)[None, None, None, :])

    def A_input(self, y):
        return self.A_adjoint(y)

    def norm_sq(self):
        return 1.0

    def normal_solve(self, b, rho):
        """``A^T A = Re(F^* M F .)``: exact through the Hermitian split of the
        mask (``(M(k) + M(-k)) / 2`` acts on the real image's spectrum)."""
        n = self.image_size
        m = self.mask.to(b.device)
        m_sym = 0.5 * (m + torch.roll(torch.flip(m, (0, 1)), (1, 1), (0, 1)))
        Bf = torch.fft.fft2(b, norm="ortho")
        return torch.fft.ifft2(Bf / (m_sym + rho), norm="ortho").real.to(b.dtype)

    def spec(self):
        return {**super().spec(), "ratio": self.ratio, "seed": self.seed,
                "kept_fraction": self.kept_fraction}

    def to(self, device):
        self.mask = self.mask.to(device)
        return self


# ----------------------------------------------------------------------------- deblurring

#: boundaries of :class:`UniformBlur` (``task_options.blur_boundary``); scipy.ndimage's mode names beside
BLUR_BOUNDARIES = {"circular": "wrap", "zero": "constant", "reflect": "reflect"}


def box_blur_matrix(n: int, size: int, boundary: str = "circular") -> torch.Tensor:
    """The 1-D ``size``-tap box filter on ``n`` samples as an (n, n) float64 matrix:
    output ``i`` averages inputs ``i - size // 2 .. i + size - 1 - size // 2`` (the
    window of ``scipy.ndimage.uniform_filter``, origin 0), indices outside
    ``[0, n)`` wrapped (``circular``), dropped (``zero``: zero padding, scipy's
    ``constant``) or mirrored about the edge (``reflect``: ``d c b a | a b c d``,
    scipy's ``reflect``)."""
    if boundary not in BLUR_BOUNDARIES:
        raise ValueError(f"blur boundary {boundary!r} is not one of {', '.join(BLUR_BOUNDARIES)}")
    r = size // 2
    B = torch.zeros(n, n, dtype=torch.float64)
    for i in range(n):
        for t in range(-r, size - r):
            j = i + t
            if boundary == "circular":
                j %= n
            elif boundary == "reflect":
                while j < 0 or j >= n:            # (a window wider than the image reflects again)
                    j = -j - 1 if j < 0 else 2 * n - j - 1
            elif not 0 <= j < n:
                continue
            B[i, j] += 1.0 / size
    return B


class UniformBlur(Operator):
    """``k x k`` uniform (box) blur (IAGAN Table 4: 9 x 9; the paper names no
    boundary, and neither does its code, ``IAGAN.py``, which has no blur).

    * ``circular`` (the default): circular convolution, diagonal in the Fourier
      basis, so ``A``, ``A^T`` (correlation) and ``A^dagger`` (inverse filter,
      zero where the transfer function vanishes) are exact FFT products.
    * ``zero`` (zero padding) and ``reflect`` (mirrored edge): the blur is
      separable, ``A X = B X B^T`` per channel with the 1-D matrix ``B`` of
      :func:`box_blur_matrix`, so ``A^T Y = B^T Y B``, ``A^dagger Y = B^+ Y
      B^{+T}`` and ``(A^T A + rho I)^{-1}`` through the eigenvectors of ``B^T B``
      are exact too.

    Each equals ``scipy.ndimage.uniform_filter(size=k, mode=wrap | constant |
    reflect)`` on every pixel (tested); the three differ within ``k // 2`` px of
    the border.  ``A_input`` is the blurred image itself (the paper's
    "blurred" column), whose PSNR the boundary moves by about 1 dB at 64 px
    (:func:`ganrestore.fidelity.sensitivity_rows`).
    """

    name = "uniform_blur"

    def __init__(self, image_size: int = 64, size: int = 9, boundary: str = "circular"):
        super().__init__(image_size, 3)
        self.size = int(size)
        self.boundary = str(boundary)
        if self.boundary not in BLUR_BOUNDARIES:
            raise ValueError(f"blur boundary {boundary!r} is not one of {', '.join(BLUR_BOUNDARIES)}")
        if self.size < 1 or self.size > self.image_size:
            raise ValueError(f"blur size {size} must be 1 to {self.image_size}")
        n, r = self.image_size, self.size // 2
        if self.boundary == "circular":
            k = torch.zeros(n, n, dtype=torch.float64)
            # convolution kernel of scipy's window i - r .. i + size - 1 - r (the same set
            # for odd sizes; for even ones the flip matters)
            idx = (-torch.arange(-r, self.size - r)) % n
            k[idx[:, None], idx[None, :]] = 1.0 / self.size ** 2
            self.H = torch.fft.fft2(k)                      # transfer function (complex128)
        else:
            B = box_blur_matrix(n, self.size, self.boundary)
            self.B, self.B_pinv = B, torch.linalg.pinv(B)
            self._evals, self._evecs = torch.linalg.eigh(B.T @ B)    # B^T B = Q diag(e) Q^T

    def _apply(self, x, H):
        X = torch.fft.fft2(x.double())
        return torch.fft.ifft2(X * H.to(x.device)).real.to(x.dtype)

    def _sep(self, M, x, Mt=None):
        M = M.to(x.device)
        return (M @ x.double() @ (M.T if Mt is None else Mt.to(x.device))).to(x.dtype)

    def A(self, x):
        if self.boundary == "circular":
            return self._apply(x, self.H)
        return self._sep(self.B, x)

    def A_adjoint(self, y):
        if self.boundary == "circular":
            return self._apply(y, self.H.conj())
        return self._sep(self.B.T, y)

    def A_dagger(self, y):
        if self.boundary == "circular":
            a = self.H.abs() ** 2
            inv = torch.where(a > 1e-12, self.H.conj() / a.clamp_min(1e-300), torch.zeros_like(self.H))
            return self._apply(y, inv)
        return self._sep(self.B_pinv, y)

    def A_input(self, y):
        return y

    def norm_sq(self):
        if self.boundary == "circular":
            return float((self.H.abs() ** 2).max())
        return float(self._evals.max()) ** 2

    def normal_solve(self, b, rho):
        if self.boundary == "circular":
            return self._apply(b, 1.0 / (self.H.abs() ** 2 + rho))
        Q = self._evecs.to(b.device)
        e = self._evals.to(b.device)
        c = Q.T @ b.double() @ Q                                  # A^T A = (Q x Q) diag(e e^T) (Q x Q)^T
        c = c / (e[:, None] * e[None, :] + rho)
        return (Q @ c @ Q.T).to(b.dtype)

    def spec(self):
        return {**super().spec(), "size": self.size, "boundary": self.boundary}


# ----------------------------------------------------------------------------- official Yeh SR

def tf_bilinear_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """1-D TF ``resize_bilinear(align_corners=True)`` as an (n_out, n_in) matrix:
    output ``i`` samples the input at ``i (n_in - 1) / (n_out - 1)``, linearly."""
    import math

    M = torch.zeros(n_out, n_in, dtype=torch.float64)
    scale = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    for i in range(n_out):
        s = i * scale
        j = min(int(math.floor(s)), n_in - 1)
        f = s - j
        M[i, j] += 1.0 - f
        if f > 1e-12 and j + 1 < n_in:
            M[i, j + 1] += f
    return M


class BilinearDownUp(Operator):
    """The official Yeh et al. super-resolution operator (``src/model_superres.py``
    ``perform_corruption``): TF ``resize_bilinear(align_corners=True)`` down by
    ``factor`` and back up, an image-to-image map ``A X = M X M^T`` per channel
    with ``M = U D`` (64 x 64 for 64 px).  Exact adjoint, closed-form
    pseudo-inverse ``M^+ Y M^{+T}``; ``A_input`` is the image itself."""

    name = "tf_bilinear_downup"

    def __init__(self, image_size: int = 64, factor: int = 4):
        super().__init__(image_size, 3)
        self.factor = int(factor)
        n, k = self.image_size, self.image_size // self.factor
        M = tf_bilinear_matrix(k, n) @ tf_bilinear_matrix(n, k)
        self.M = M.float()
        self.M_pinv = torch.linalg.pinv(M).float()

    def A(self, x):
        M = self.M.to(x)
        return M @ x @ M.T

    def A_adjoint(self, y):
        M = self.M.to(y)
        return M.T @ y @ M

    def A_dagger(self, y):
        P = self.M_pinv.to(y)
        return P @ y @ P.T

    def A_input(self, y):
        return y

    def norm_sq(self):
        s = float(torch.linalg.matrix_norm(self.M.double(), ord=2))
        return (s * s) ** 2 * 1.0001

    def spec(self):
        return {**super().spec(), "factor": self.factor}


OPERATORS = {cls.name: cls for cls in (Identity, Inpainting, Grayscale, BicubicDownsample, GaussianCS,
                                       FourierCS, UniformBlur, BilinearDownUp)}


def register_operator(cls):
    """Class decorator: make an Operator subclass rebuildable by :func:`from_spec`."""
    OPERATORS[cls.name] = cls
    return cls


def from_spec(spec: dict) -> Operator:
    """Rebuild an operator from :meth:`Operator.spec`."""
    spec = dict(spec)
    name = spec.pop("name")
    if name == "inpaint":
        if spec.get("kind") != "center":
            raise ValueError(f"cannot rebuild inpainting operator from {spec}")
        return Inpainting.center_hole(spec["image_size"], spec["hole"])
    if name not in OPERATORS:
        raise ValueError(f"unknown operator {name!r}; known: {sorted(OPERATORS)}")
    cls = OPERATORS[name]
    spec.pop("channels", None)
    return cls(**spec)


__all__ = [
    "Operator", "Identity", "Inpainting", "Grayscale", "BicubicDownsample", "GaussianCS", "FourierCS",
    "UniformBlur", "box_blur_matrix", "BLUR_BOUNDARIES", "iagan_fourier_mask", "GAUSSIAN_MAX_BYTES", "BilinearDownUp", "tf_bilinear_matrix",
    "bicubic_downsample_matrix", "conjugate_gradient", "from_spec", "register_operator",
    "batch_dot", "REC601",
]
