"""The networks of seed 004: Chen, Ji, Zhang, "Conditional Deep Convolutional
GANs for Image Restoration" (Columbia EECS6894 report; after Iizuka,
Simo-Serra, Ishikawa, "Globally and Locally Consistent Image Completion",
SIGGRAPH 2017, its reference [1]).

**Generator** (their §3.2 and Table 1).  Input: the observation shown as an
image, ``A_input(y)`` in the GAN range ``[-1, 1]`` with the unobserved pixels
set to 0, plus one condition channel ``c`` (:func:`condition_map`: "a binary
channel with 1 for pixels to be completed and 0 for others").  Output: an RGB
image in ``[-1, 1]`` (tanh) of the input's size.  Layers (``w`` = ``width``,
64 in the paper; ``W`` = ``dilated_width``, 1024 in the paper; every
convolution followed by a LeakyReLU(0.2), the table's caption)::

    Conv1        3x3, stride 1                          w     H
    RB1          residual block, stride 2               w     H/2    = C1
    RB2          residual block, stride 2               2w    H/4    = C2
    RB3          residual block, stride 2               4w    H/8    = C3
    Dilated      4 x (3x3, dilation 2, 4, 8, 16)        W     H/8
    RB4          residual block, stride 1, + L3(C3)     4w    H/8    = P3
    RB5          residual block on up2(P3), + L2(C2)    2w    H/4    = P2
    RB6          residual block on up2(P2), + L1(C1)    w     H/2    = P1
    Deconv       4x4 transposed conv, stride 1/2        w/2   H
    Conv         3x3                                    w/2   H
    Output       3x3 -> 3 channels, tanh                3     H

A residual block's three rows in Table 1 are the two 3x3 convolutions of its
main path and the 1x1 projection of its shortcut: ``out =
lrelu(conv3x3(lrelu(conv3x3_s(x))) + conv1x1_s(x))`` (``_s``: the block's
stride).  No normalisation layers (Table 1 lists none), so the generator's
output for an image never depends on its batch-mates.

**Reading of Table 1's strides.**  The table lists "2 x 2" for every
convolution of the six residual blocks (18 convolutions) and "1/2" for the
deconvolution; taken literally the encoder alone would divide the image by
2^9 and the output could not have the input's resolution, which §3.2 says it
has.  We read the "2 x 2" as the *block's* scale change, printed on each of
its rows (as ResNet tables do): RB1-RB3 each downsample once (stride 2 on the
first 3x3 convolution and on the 1x1 shortcut, ResNet's projection block), so
the dilated stage runs at H/8; the widths of RB4, RB5, RB6 (256, 128, 64) are
those of RB3, RB2, RB1, so they are the feature pyramid's top-down levels at
those blocks' scales (Lin et al. 2017, the report's [3]): RB4 at H/8, the
top-down path upsamples by 2 (nearest, as FPN) before RB5 and RB6, each level
adds a 1x1 lateral projection of the encoder feature at its scale (the skip
connections), and the fractionally strided deconvolution makes the third x2
back to H.  Three halvings, three doublings: output size = input size.

At 64 px the dilated stage sees 8x8 maps, so the rates 8 and 16 reach only
zero padding outside the centre tap (they act as 1x1 convolutions there);
they are kept as listed.  The receptive field of a centre output pixel covers
the whole 64x64 input (rates 2 and 4 at stride 8, on top of the encoder's),
computed in ``tests/test_cgan.py`` from the gradient, not assumed.

**Discriminators** (§3.3, with Iizuka et al.'s design, which §3.3 follows):
a global one on the whole image and a local one on a ``local_size`` crop
around the completed region (inpainting: centred on the hole's bounding box,
clamped to the image, so it contains the hole and a margin of context; other
tasks: a seeded random crop, :func:`local_crop_boxes`).  Each is a stack of
stride-2 4x4 convolutions (batch norm after all but the first, LeakyReLU 0.2)
ending in a fully connected feature vector; the two vectors are concatenated
and one fully connected layer gives a single logit, ``sigmoid(logit)`` = "the
probability of the image to be real" (§3.3: "the output of this network is
the fusion of the two discriminators").  Both see the image and the condition
channel (``D(x, M_d)`` in §3.5).  The auxiliary attribute classifier of §3.4
is not built (optional in the issue).

>>> G = CGANGenerator(width=8, dilated_width=16).eval()
>>> G(torch.zeros(2, 4, 64, 64)).shape
torch.Size([2, 3, 64, 64])
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

NEG_SLOPE = 0.2


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, NEG_SLOPE)


class ResidualBlock(nn.Module):
    """``lrelu(conv3x3(lrelu(conv3x3_stride(x))) + conv1x1_stride(x))`` (Table 1's three rows)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1, stride, 0)

    def forward(self, x):
        return _lrelu(self.conv2(_lrelu(self.conv1(x))) + self.shortcut(x))


class CGANGenerator(nn.Module):
    """The generator of seed 004, Table 1 (see the module docstring for the stride reading).

    ``forward(inp)``: ``inp`` (B, 4, H, W) = RGB observation in [-1, 1] (unobserved
    pixels 0) + condition channel; returns (B, 3, H, W) in [-1, 1].  ``H`` must
    be a multiple of 8.
    """

    def __init__(self, width: int = 64, dilated_width: int = 1024, in_channels: int = 4,
                 dilations: tuple[int, ...] = (2, 4, 8, 16)):
        super().__init__()
        w, W = int(width), int(dilated_width)
        if w < 2 or W < 1:
            raise ValueError(f"width must be >= 2 and dilated_width >= 1, got {w}, {W}")
        self.width, self.dilated_width, self.in_channels = w, W, int(in_channels)
        self.dilations = tuple(int(d) for d in dilations)
        self.conv1 = nn.Conv2d(in_channels, w, 3, 1, 1)
        self.rb1 = ResidualBlock(w, w, 2)
        self.rb2 = ResidualBlock(w, 2 * w, 2)
        self.rb3 = ResidualBlock(2 * w, 4 * w, 2)
        dil, c = [], 4 * w
        for r in self.dilations:
            dil.append(nn.Conv2d(c, W, 3, 1, r, dilation=r))
            c = W
        self.dilated = nn.ModuleList(dil)
        self.rb4 = ResidualBlock(c, 4 * w, 1)
        self.rb5 = ResidualBlock(4 * w, 2 * w, 1)
        self.rb6 = ResidualBlock(2 * w, w, 1)
        self.lat3 = nn.Conv2d(4 * w, 4 * w, 1)       # FPN lateral (skip) connections
        self.lat2 = nn.Conv2d(2 * w, 2 * w, 1)
        self.lat1 = nn.Conv2d(w, w, 1)
        self.deconv = nn.ConvTranspose2d(w, w // 2, 4, 2, 1)
        self.conv_out1 = nn.Conv2d(w // 2, w // 2, 3, 1, 1)
        self.out = nn.Conv2d(w // 2, 3, 3, 1, 1)

    def arch(self) -> dict:
        return {"name": "cgan_seed004_generator", "width": self.width, "dilated_width": self.dilated_width,
                "in_channels": self.in_channels, "dilations": list(self.dilations)}

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        if inp.shape[-1] % 8 or inp.shape[-2] % 8:
            raise ValueError(f"image sides must be multiples of 8, got {tuple(inp.shape[-2:])}")
        c0 = _lrelu(self.conv1(inp))
        c1 = self.rb1(c0)
        c2 = self.rb2(c1)
        c3 = self.rb3(c2)
        d = c3
        for conv in self.dilated:
            d = _lrelu(conv(d))
        p3 = self.rb4(d) + self.lat3(c3)
        p2 = self.rb5(F.interpolate(p3, scale_factor=2, mode="nearest")) + self.lat2(c2)
        p1 = self.rb6(F.interpolate(p2, scale_factor=2, mode="nearest")) + self.lat1(c1)
        h = _lrelu(self.deconv(p1))
        h = _lrelu(self.conv_out1(h))
        return torch.tanh(self.out(h))


def _d_trunk(in_channels: int, ndf: int, size: int) -> tuple[nn.Sequential, int]:
    """Stride-2 4x4 convolutions down to 4x4 (BN after all but the first), then
    the flattened map; returns (trunk, flat features)."""
    layers, c, s, k = [], in_channels, int(size), 0
    while s > 4:
        c_out = ndf * min(2 ** k, 8)
        layers.append(nn.Conv2d(c, c_out, 4, 2, 1, bias=k == 0))
        if k > 0:
            layers.append(nn.BatchNorm2d(c_out))
        layers.append(nn.LeakyReLU(NEG_SLOPE))
        c, s, k = c_out, s // 2, k + 1
    if not layers:
        raise ValueError(f"discriminator input of {size} px is too small (needs > 4)")
    layers.append(nn.Flatten())
    return nn.Sequential(*layers), c * s * s


class FusedDiscriminator(nn.Module):
    """Global + local discriminator fused into one logit (§3.3; Iizuka et al. 2017).

    ``forward(x, c, boxes)``: ``x`` (B, 3, H, W) in [-1, 1], ``c`` (B, 1, H, W) the
    condition channel, ``boxes`` (B, 2) long tensor of the local crops' top-left
    corners (:func:`local_crop_boxes`).  Returns (B,) logits.
    """

    def __init__(self, image_size: int = 64, local_size: int = 48, ndf: int = 64, features: int = 1024):
        super().__init__()
        if not 4 < local_size <= image_size:
            raise ValueError(f"local_size must be in (4, {image_size}], got {local_size}")
        self.image_size, self.local_size, self.ndf, self.features = int(image_size), int(local_size), int(ndf), \
            int(features)
        self.global_trunk, gf = _d_trunk(4, ndf, image_size)
        self.local_trunk, lf = _d_trunk(4, ndf, local_size)
        self.global_fc = nn.Linear(gf, features)
        self.local_fc = nn.Linear(lf, features)
        self.fuse = nn.Linear(2 * features, 1)

    def arch(self) -> dict:
        return {"name": "cgan_seed004_discriminator", "image_size": self.image_size,
                "local_size": self.local_size, "ndf": self.ndf, "features": self.features}

    def forward(self, x: torch.Tensor, c: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        xc = torch.cat([x, c], 1)
        local = crop(xc, boxes, self.local_size)
        g = F.leaky_relu(self.global_fc(self.global_trunk(xc)), NEG_SLOPE)
        l_ = F.leaky_relu(self.local_fc(self.local_trunk(local)), NEG_SLOPE)
        return self.fuse(torch.cat([g, l_], 1)).squeeze(1)


def crop(x: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Per-image ``size`` x ``size`` crops of ``x`` at top-left corners ``boxes`` (B, 2) = (row, col)."""
    return torch.stack([x[i, :, int(r):int(r) + size, int(q):int(q) + size]
                        for i, (r, q) in enumerate(boxes.tolist())])


# ----------------------------------------------------------------------------- condition and crops
def unobserved_mask(op) -> torch.Tensor | None:
    """(H, W) float, 1 where the operator observes nothing of the pixel (a pixel
    mask's zeros: the inpainting hole), or ``None`` when every pixel is observed
    (through the operator)."""
    m = op.pixel_mask()
    if m is None:
        return None
    hole = (m.float() == 0).float()
    return hole if bool(hole.any()) else None


def condition_map(op, batch: int, image_size: int, device=None) -> torch.Tensor:
    """The condition channel (B, 1, H, W): §3.2's binary "1 for pixels to be
    completed and 0 for others" mask.  Inpainting: the hole (the operator's
    pixel mask inverted).  Every other task (colourisation, super-resolution,
    denoising, quantisation, ...): all zeros, a constant channel -- no pixel is
    missing, every one is observed through the operator, and what the network
    must learn is the operator itself, which a per-task model does."""
    hole = unobserved_mask(op)
    if hole is None:
        return torch.zeros(batch, 1, image_size, image_size, device=device)
    return hole.to(device).view(1, 1, *hole.shape).expand(batch, 1, -1, -1).contiguous()


def generator_input(y: torch.Tensor, op, image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inp, c)``: the generator's 4-channel input for observations ``y`` of
    operator ``op`` (``A_input(y)`` clipped to [0, 1], mapped to [-1, 1], the
    unobserved pixels set to 0) and the condition channel ``c``."""
    x0 = op.A_input(y).clamp(0, 1) * 2 - 1
    if x0.shape[-1] != image_size or x0.shape[1] != 3:
        raise ValueError(f"A_input(y) has shape {tuple(x0.shape)}, expected (B, 3, {image_size}, {image_size})")
    c = condition_map(op, x0.shape[0], image_size, x0.device).to(x0.dtype)
    return torch.cat([x0 * (1 - c), c], 1), c


def local_crop_boxes(op, batch: int, image_size: int, local_size: int,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Top-left corners (B, 2) of the local discriminator's crops.

    Where the operator leaves a hole: the ``local_size`` square centred on the
    hole's bounding box, clamped to the image (it contains the hole whenever the
    hole fits in ``local_size``; a larger hole is refused).  Elsewhere: a random
    position per image from ``generator``."""
    hole = unobserved_mask(op)
    if hole is not None:
        rows = torch.nonzero(hole.any(1)).flatten()
        cols = torch.nonzero(hole.any(0)).flatten()
        r0, r1, c0, c1 = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
        if r1 - r0 > local_size or c1 - c0 > local_size:
            raise ValueError(f"the hole ({r1 - r0}x{c1 - c0}) does not fit in the local "
                             f"discriminator's {local_size}px crop")

        def start(a, b):
            return min(max((a + b - local_size) // 2, 0), image_size - local_size)

        box = torch.tensor([start(r0, r1), start(c0, c1)])
        return box.view(1, 2).expand(batch, 2).clone()
    hi = image_size - local_size + 1
    return torch.randint(0, hi, (batch, 2), generator=generator)


def receptive_field(net: nn.Module, image_size: int = 64, in_channels: int = 4,
                    pixel: tuple[int, int] | None = None, seed: int = 0) -> torch.Tensor:
    """(H, W) bool: the input pixels that the output at ``pixel`` (default the centre)
    depends on, from the gradient of that output (summed over channels) with
    respect to a random input.  A dependence whose gradient vanishes exactly at
    that input is missed; with LeakyReLU and random weights none does."""
    was = net.training
    net.eval()
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, in_channels, image_size, image_size, generator=g, requires_grad=True)
    r, q = pixel if pixel is not None else (image_size // 2, image_size // 2)
    net(x)[0, :, r, q].sum().backward()
    net.train(was)
    return (x.grad[0].abs().sum(0) > 0)


__all__ = ["CGANGenerator", "FusedDiscriminator", "ResidualBlock", "condition_map", "generator_input",
           "local_crop_boxes", "unobserved_mask", "crop", "receptive_field"]
