"""IAGAN's image-adaptive stage, batched over images with one weight copy each.

Abu Hussein, Tirer & Giryes, "Image-Adaptive GAN based Reconstruction"
(arXiv 1906.05284), eq. (3): starting from CSGM's ``z_hat`` and the pretrained
weights ``theta_0``, jointly minimise

    f_IA(theta, z) = || y - A G_theta(z) ||_2^2

over ``z`` and the generator parameters ``theta`` with Adam (small learning
rates, early stopping), keeping the iterate with the lowest objective;
``x_IA = G_theta_IA(z_IA)``.

Every image gets its own copy of ``theta``.  The ``B`` copies are stacked into
tensors with a leading image axis and the generator is evaluated once for the
whole batch - one forward/backward for ``B`` images, not a Python loop: for
the DCGAN generator every transposed convolution becomes one batched matmul
(``bmm``) plus ``fold`` (col2im); any other generator runs under
:func:`torch.func.functional_call` + :func:`torch.vmap`.  Batch-norm layers stay
in eval mode (running statistics are shared, unbatched buffers; their affine
weights are tuned per image), Adam is element-wise, and the objective is a sum
of per-image terms, so images do not interact.

``theta`` is whatever ``G.named_parameters()`` holds.  For a PGAN prior,
:func:`ganrestore.methods.gan.restore_iagan` passes by default the official
code's parameterisation (ptrblck's conversion: weight, per-layer gain,
unscaled bias; :func:`ganrestore.priors.pgan.official_parameterisation`), not
pytorch_GAN_zoo's equalized layers (``pgan_parameterisation: zoo``).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call

from ..priors import Generator, to_unit
from .gan_core import BestKeeper, SearchResult, measurement_loss, trace_steps


def _transposed_conv_bmm(x: torch.Tensor, wt: torch.Tensor, m: torch.nn.ConvTranspose2d, bias=None) -> torch.Tensor:
    """Per-image transposed convolution as a batched matmul + col2im.

    ``x``: (B, Cin, H, W); ``wt``: (B, Cout*k*k, Cin), image b's kernel
    ``w_b`` (Cin, Cout, k, k) stored transposed (see
    :meth:`BatchedGenerator.stacked_params`).  ``conv_transpose(x, w) =
    fold(w^T x)``: the columns ``w_b^T x_b`` (one ``bmm``) scatter-added by
    ``fold`` with the layer's stride and padding.  On a CPU this is faster than
    a grouped convolution with ``B`` groups.
    """
    B = wt.shape[0]
    Cout, kh, kw = m.out_channels, *m.kernel_size
    Cin, H, W = x.shape[1:]
    (sh, sw), (ph, pw) = m.stride, m.padding
    Ho, Wo = (H - 1) * sh - 2 * ph + kh, (W - 1) * sw - 2 * pw + kw
    cols = torch.bmm(wt, x.reshape(B, Cin, H * W))
    if H == W == 1 and (ph, pw) == (0, 0):
        out = cols.reshape(B, Cout, kh, kw)         # one column: col2im is a reshape (the latent layer)
    else:
        out = F.fold(cols, (Ho, Wo), kernel_size=(kh, kw), stride=(sh, sw), padding=(ph, pw))
    if bias is not None:
        out = out + bias[:, :, None, None]
    return out


def _bmm_supported(G) -> bool:
    main = getattr(G, "main", None)
    if not isinstance(G, Generator) or not isinstance(main, torch.nn.Sequential):
        return False
    for m in main:
        if isinstance(m, torch.nn.ConvTranspose2d):
            if m.groups != 1 or m.dilation != (1, 1) or m.output_padding != (0, 0) or m.padding_mode != "zeros":
                return False
        elif isinstance(m, torch.nn.BatchNorm2d):
            if not m.affine or m.running_mean is None:
                return False
        elif not isinstance(m, (torch.nn.ReLU, torch.nn.LeakyReLU, torch.nn.Tanh)):
            return False
    return True


class BatchedGenerator:
    """``G`` evaluated with per-image parameters: ``forward(params, z)`` where every
    tensor of ``params`` has a leading axis of length ``B`` and ``z`` is (B, nz).

    ``mode='bmm'`` (the default for the DCGAN :class:`Generator`): each layer
    batched explicitly - transposed convolutions as ``bmm`` + ``fold``,
    eval-mode batch norm with per-image affine weights.  ``mode='vmap'`` (any
    other generator): :func:`torch.func.functional_call` under
    :func:`torch.vmap`.  Both give ``G_theta_b(z_b)`` for every ``b``.
    """

    def __init__(self, G: torch.nn.Module, mode: str = "auto"):
        if G.training:
            raise ValueError("the generator must be in eval mode (batch-norm running statistics)")
        self.G = G
        self.buffers = {n: b for n, b in G.named_buffers()}
        if mode == "auto":
            mode = "bmm" if _bmm_supported(G) else "vmap"
        if mode == "bmm" and not _bmm_supported(G):
            raise ValueError("mode='bmm' supports the DCGAN Generator only")
        if mode not in ("bmm", "vmap"):
            raise ValueError(f"unknown mode {mode!r} (auto | bmm | vmap)")
        self.mode = mode

        def single(params, z):
            return functional_call(G, (params, self.buffers), (z.unsqueeze(0),)).squeeze(0)

        self._vmapped = torch.vmap(single, in_dims=(0, 0))

    def _is_conv_weight(self, name: str) -> bool:
        mod, _, leaf = name.rpartition(".")
        return (self.mode == "bmm" and leaf == "weight"
                and isinstance(self.G.get_submodule(mod), torch.nn.ConvTranspose2d))

    def stacked_params(self, B: int) -> dict:
        """``B`` independent copies of the pretrained weights (leaf tensors).

        In ``bmm`` mode a transposed-convolution kernel (Cin, Cout, k, k) is
        stored as its transpose (Cout*k*k, Cin) so that the forward matmul and
        its weight gradient need no strided copies; Adam is element-wise, so
        the layout does not change the optimisation.  :meth:`module_layout`
        maps back.
        """
        out = {}
        for n, p in self.G.named_parameters():
            p = p.detach()
            if self._is_conv_weight(n):
                p = p.reshape(p.shape[0], -1).T
            out[n] = p.unsqueeze(0).repeat((B,) + (1,) * p.dim()).contiguous().requires_grad_(True)
        return out

    def module_layout(self, stacked: dict) -> dict:
        """Stacked tensors (parameters or their gradients) in ``G``'s own shapes, (B, *shape)."""
        shapes = {n: p.shape for n, p in self.G.named_parameters()}
        out = {}
        for n, t in stacked.items():
            if self._is_conv_weight(n):
                t = t.transpose(1, 2).reshape((t.shape[0],) + tuple(shapes[n]))
            out[n] = t
        return out

    def _bmm_forward(self, params: dict, z: torch.Tensor) -> torch.Tensor:
        x = z.reshape(z.shape[0], -1, 1, 1)
        for i, m in enumerate(self.G.main):
            if isinstance(m, torch.nn.ConvTranspose2d):
                x = _transposed_conv_bmm(x, params[f"main.{i}.weight"], m, params.get(f"main.{i}.bias"))
            elif isinstance(m, torch.nn.BatchNorm2d):
                scale = (m.running_var + m.eps).rsqrt()
                w, b = params[f"main.{i}.weight"], params[f"main.{i}.bias"]
                x = (x - m.running_mean[None, :, None, None]) * (scale[None, :, None, None] * w[:, :, None, None]) \
                    + b[:, :, None, None]
            else:
                x = m(x)
        return x

    def __call__(self, params: dict, z: torch.Tensor) -> torch.Tensor:
        if self.mode == "bmm":
            return self._bmm_forward(params, z)
        return self._vmapped(params, z)


def _adam_impl() -> dict:
    """The fused Adam kernel (one pass over the weight copies) where torch has it."""
    try:
        torch.optim.Adam([torch.zeros(1, requires_grad=True)], fused=True)
        return {"fused": True}
    except (RuntimeError, TypeError, ValueError):
        return {}


def image_adaptive(G, z0: torch.Tensor, y: torch.Tensor, op, *, iterations: int, lr_z: float,
                   lr_theta: float, trace_every: int = 10, skip: torch.Tensor | None = None,
                   mode: str = "auto") -> SearchResult:
    """Jointly optimise ``z`` and per-image copies of ``theta`` (IAGAN eq. 3).

    ``z0``: (B, nz) CSGM latents; ``skip``: (B,) rows to leave out (e.g. CSGM
    diverged) - they are reported as diverged.  Returns a :class:`SearchResult`
    whose ``x_gan`` is the best iterate's image per image.
    """
    t0 = time.perf_counter()
    B = z0.shape[0]
    bg = BatchedGenerator(G, mode)
    params = bg.stacked_params(B)
    z = torch.nan_to_num(z0.detach().clone(), nan=0.0).requires_grad_(True)
    opt = torch.optim.Adam([{"params": list(params.values()), "lr": lr_theta},
                            {"params": [z], "lr": lr_z}], **_adam_impl())
    keep = BestKeeper(B, z.device)
    if skip is not None:
        keep.kill(skip.to(z.device))
    steps = trace_steps(iterations, trace_every)
    trace = torch.full((B, len(steps)), math.nan, device=z.device)
    k = 0
    leaves = list(params.values()) + [z]
    for t in range(iterations + 1):
        last = t == iterations
        with torch.set_grad_enabled(not last):
            x = bg(params, z)
            meas = measurement_loss(op, to_unit(x), y)
        alive = keep.report(meas, meas, z, x)
        if t == 0:
            start = meas.detach().clone()
        if k < len(steps) and steps[k] == t:
            trace[:, k] = torch.where(alive, meas.detach(), torch.full_like(meas.detach(), math.nan))
            k += 1
        if last:
            break
        total = torch.where(alive, meas, torch.zeros_like(meas)).sum()
        grads = torch.autograd.grad(total, leaves)
        # A non-finite gradient entry of an image is not searched for here (a sum over
        # all 3.6M weights per step costs ~10 % of the step): Adam turns it into a
        # non-finite weight, so the image's next objective is non-finite and
        # keep.report drops the image with its best iterate so far (rows never mix).
        dead = ~keep.alive
        any_dead = bool(dead.any())
        for leaf, g in zip(leaves, grads):
            if any_dead:
                g = torch.where(dead.view((B,) + (1,) * (g.dim() - 1)), torch.zeros_like(g), g)
            # in the same layout as the weight: under vmap a linear layer's weight gradient
            # comes back transposed in memory (BEGAN's and PGAN's latent layer), and the
            # fused Adam kernel reads a gradient as if it had its parameter's strides, so it
            # would apply other elements' steps (tests/test_pgan.py checks the step)
            leaf.grad = g if g.stride() == leaf.stride() else g.contiguous()
        opt.step()
    rows, used, diverged = keep.select(B, 1)
    zb, xb = keep.z.clone(), keep.x.clone()
    zb[diverged] = math.nan
    xb[diverged] = math.nan
    return SearchResult(
        z=zb, x_gan=xb,
        objective=keep.obj.cpu().numpy().astype(np.float64),
        start_objective=start.cpu().numpy().astype(np.float64),
        measurement=keep.meas.cpu().numpy().astype(np.float64),
        trace=trace.cpu().numpy().astype(np.float32),
        restarts_used=used.cpu().numpy().astype(np.int64),
        diverged=diverged.cpu().numpy(),
        iterations=iterations, seconds=time.perf_counter() - t0)


__all__ = ["BatchedGenerator", "image_adaptive"]
