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

    def A(self, x):
        return x

    def A_adjoint(self, y):
        return y

    def A_dagger(self, y):
        return y


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

    def spec(self):
        return {**super().spec(), "factor": self.factor}


OPERATORS = {cls.name: cls for cls in (Identity, Inpainting, Grayscale, BicubicDownsample)}


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
    "Operator", "Identity", "Inpainting", "Grayscale", "BicubicDownsample",
    "bicubic_downsample_matrix", "conjugate_gradient", "from_spec", "register_operator",
    "batch_dot", "REC601",
]
